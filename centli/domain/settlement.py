"""Merchant settlement (docs/architecture.md): sales land in clearing accounts; the sweeper settles them.

A popular seller would be one hot item if every payment credited its account, so a payment credits one
of the seller's ``CLEARING_ACCOUNTS`` clearing accounts, chosen by a stable hash of the order id. Each is
owned by its own clearing user (``<seller user>~clrNNN``), so it has its own partition key in every
store; ``~`` is refused in every id from input or a load file, so no customer can name, read or move one.
"""

from __future__ import annotations

import zlib
from datetime import datetime

from centli.domain.ledger import AccountRef, NewAccount
from centli.domain.money import Money

#: Clearing accounts per seller account (the ``N`` of docs/architecture.md "How it scales").
CLEARING_ACCOUNTS = 256
CLEARING_MARK = "~clr"
SETTLEMENT_CONCEPT = "Liquidación de ventas"
SETTLEMENT_OPERATION = "settlement"


def bucket(text: str, buckets: int) -> int:
    """A stable bucket in ``range(buckets)`` for ``text`` (the same in every process and run)."""
    return zlib.crc32(text.encode()) % buckets


def clearing_account(seller: AccountRef, index: int) -> AccountRef:
    suffix = f"{CLEARING_MARK}{index:03d}"
    return AccountRef(seller.user_id + suffix, seller.account_id + suffix)


def clearing_accounts(seller: AccountRef) -> list[AccountRef]:
    return [clearing_account(seller, i) for i in range(CLEARING_ACCOUNTS)]


def clearing_for_order(seller: AccountRef, order_id: str) -> AccountRef:
    """Where an order's payment lands: the same clearing account for every retry of that order."""
    return clearing_account(seller, bucket(order_id, CLEARING_ACCOUNTS))


def is_clearing(account_id: str) -> bool:
    return CLEARING_MARK in account_id


def seller_of(account: AccountRef) -> AccountRef | None:
    """The seller account a clearing account settles into, or None for any other account."""
    user, mark, user_index = account.user_id.rpartition(CLEARING_MARK)
    seller_account, mark2, account_index = account.account_id.rpartition(CLEARING_MARK)
    if not (mark and mark2 and user and seller_account and user_index == account_index and user_index.isdigit()):
        return None
    return AccountRef(user, seller_account)


def clearing_openings(seller: AccountRef, currency: str, opened_at: datetime) -> list[NewAccount]:
    """The seller's clearing accounts to open at load, empty, in the seller account's currency."""
    return [
        NewAccount(ref.account_id, ref.user_id, f"Ventas por liquidar {i:03d}", Money(0, currency), opened_at)
        for i, ref in enumerate(clearing_accounts(seller))
    ]


def settlement_key(clearing: AccountRef, now: datetime) -> str:
    """The idempotency key of one clearing account's settlement in the minute of ``now``.

    Two sweeper runs in the same minute settle an account once; ``:`` keeps it
    apart from every customer key (``[A-Za-z0-9_-]``).
    """
    return f"settlement:{clearing.account_id}:{now.strftime('%Y%m%dT%H%M')}"
