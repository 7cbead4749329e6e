"""The ledger on DynamoDB: one partition per account, its head, its entries in commit order.

The partition ``account_key = user_id#account_id`` of the transactions table
holds a *head* (sort key ``~HEAD``, after every entry key) that mirrors the
account's balance and records ``last_sk``, the last entry key written there.
Entries are keyed ``E#<stamp>#<rank>#<entry id>``. A first history page is ONE
strongly consistent Query, newest first: the head, then the entries, each
``balance_after`` computed walking back from the head. A page's position holds
the cut's key and the balance before it (the domain signs it inside the
cursor); older entries never change, so a later page stays exact.

Key order is commit order, and timestamps agree with it: each head update is
conditioned on ``last_sk < :sk``. When a head already holds a later key
(another Lambda's clock runs ahead), only that condition fails; its
``last_sk`` comes back with the cancellation (ALL_OLD) and the posting is
stamped again just after it and resent, a bounded number of times. Every
other refusal is named first and wins over a re-stamp.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from centli.adapters.dynamodb import codecs as c
from centli.adapters.dynamodb.runner import RESEND, Reason, Resend, check, failed, put, seen, update
from centli.domain.errors import (
    AccountNotFound,
    ConcurrencyConflict,
    CurrencyMismatch,
    DestinationNotFound,
    InsufficientFunds,
    InvalidCursor,
)
from centli.domain.ledger import (
    OPENING_DESCRIPTION,
    AccountRef,
    DestinationIsBeneficiary,
    Direction,
    LedgerEntry,
    NewAccount,
    Transfer,
    describe_entry,
)
from centli.ports.repositories import Page

if TYPE_CHECKING:
    from centli.adapters.dynamodb.schema import TableNames
    from centli.adapters.dynamodb.store import DynamoUnitOfWork

#: Times one commit is stamped again after a later entry committed first.
RESTAMP_ATTEMPTS = 5
_TICK = timedelta(microseconds=1)


def opening_items(t: TableNames, account: NewAccount) -> list[tuple[str, c.Item]]:
    """An account's row, its ledger head and its opening entry (keyed before anything stamped later)."""
    balance = account.opening_balance
    entry = LedgerEntry(
        entry_id=account.opening_entry_id,
        account_id=account.account_id,
        user_id=account.user_id,
        transfer_id=account.opening_entry_id,
        direction="CREDIT",
        amount=balance,
        description=OPENING_DESCRIPTION,
        timestamp=account.opened_at,
        balance_after=balance,
    )
    money = c.attrs(currency=balance.currency, balance=balance.minor)
    row = {**c.attrs(user_id=account.user_id, account_id=account.account_id, alias=account.alias), **money}
    # The head's last_sk says "opened at": every later entry is stamped no earlier.
    last = c.attrs(last_sk=c.entry_key(account.opened_at, entry.entry_id, rank=0))
    head = {**c.head_key(AccountRef(account.user_id, account.account_id)), **money, **last}
    opening = c.entry_item(entry, c.entry_key(c.OPENING_KEY_TIME, entry.entry_id, rank=0))
    return [(t.accounts, row), (t.transactions, head), (t.transactions, opening)]


class Posting:
    """One transfer's transaction items, in this order: the accounts (the source's funds, the target's
    currency), their ledger heads, the entries, the transfer record, and (to resolve a destination id)
    a check that the customer has no beneficiary of that id. Rewritten in place when stamped again."""

    def __init__(self, t: TableNames, transfer: Transfer, resolve_destination: bool) -> None:
        self.t, self.transfer, self.restamps = t, transfer, 0
        self.source = AccountRef(transfer.user_id, transfer.from_account_id)
        self.refs = list(dict.fromkeys((self.source, transfer.to)))  # one when both sides are one account
        self.accounts = self._account_items()
        key = c.attrs(user_id=transfer.to.user_id, beneficiary_id=transfer.to.account_id)
        self.guard = [check(t.beneficiaries, key, "attribute_not_exists(user_id)")] if resolve_destination else []
        self.items: list[c.Item] = []
        self.stamp(transfer.created_at)

    def _account_items(self) -> list[c.Item]:
        values = c.values(a=self.transfer.amount.minor, c=self.transfer.amount.currency)
        funded = "attribute_exists(user_id) AND currency = :c AND balance >= :a"
        source, target = (c.attrs(user_id=r.user_id, account_id=r.account_id) for r in (self.source, self.transfer.to))
        if len(self.refs) == 1:  # one item cannot be touched twice in a transaction: the net change is zero
            return [check(self.t.accounts, source, funded, values)]
        return [
            update(self.t.accounts, source, "SET balance = balance - :a", funded, values),
            update(
                self.t.accounts,
                target,
                "SET balance = balance + :a",
                "attribute_exists(user_id) AND currency = :c",
                values,
            ),
        ]

    def _entries(self) -> list[LedgerEntry]:
        transfer, amount = self.transfer, self.transfer.amount
        sides: list[tuple[str, AccountRef, Direction]] = [
            (transfer.debit_entry_id, self.source, "DEBIT"),
            (transfer.credit_entry_id, transfer.to, "CREDIT"),
        ]
        return [
            LedgerEntry(
                entry_id,
                ref.account_id,
                ref.user_id,
                transfer.transfer_id,
                direction,
                amount,
                describe_entry(transfer, direction),
                transfer.created_at,
                amount,  # balance_after: computed when read
            )
            for entry_id, ref, direction in sides
        ]

    def stamp(self, moment: datetime) -> None:
        """(Re)write what carries the stamp: the heads' last keys, the entries and the transfer record."""
        self.transfer = replace(self.transfer, created_at=moment)
        entries, amount = self._entries(), self.transfer.amount.minor
        delta = {self.source: -amount, self.transfer.to: amount} if len(self.refs) == 2 else {self.source: 0}
        # A head's last_sk only grows (a condition): its partition's key order is the commit order.
        later = "attribute_not_exists(last_sk) OR last_sk < :sk"
        keys = {e.entry_id: c.entry_key(moment, e.entry_id) for e in entries}
        heads = [
            update(
                self.t.transactions,
                c.head_key(ref),
                "SET last_sk = :sk ADD balance :d",
                later,
                c.values(d=delta[ref], sk=max(keys[e.entry_id] for e in entries if _of(e) == ref)),
            )
            for ref in self.refs
        ]
        puts = [
            put(self.t.transactions, c.entry_item(e, keys[e.entry_id]), "attribute_not_exists(entry_key)")
            for e in entries
        ]
        record = put(self.t.transfers, c.transfer_item(self.transfer), "attribute_not_exists(transfer_id)")
        self.items[:] = [*self.accounts, *heads, *puts, record, *self.guard]

    def explain(self, reasons: list[Reason]) -> Exception | Resend | None:
        count = len(self.accounts)
        src, tgt = reasons[0], reasons[count - 1]
        saved = reasons[-1] if self.guard else None
        own = reasons[:-1] if self.guard else reasons
        heads, writes = own[count : count + len(self.refs)], own[count + len(self.refs) :]
        if failed(src) and seen(src) is None:
            return AccountNotFound(field="from_account_id")
        if failed(tgt) and seen(tgt) is None:
            if saved is None:
                return AccountNotFound(field="to_account_id")
            stored = seen(saved)
            if failed(saved) and stored is not None:
                return DestinationIsBeneficiary(c.beneficiary_from_item(stored))
            return DestinationNotFound(field="destination_id")
        if saved is not None and failed(saved) and not any(failed(r) for r in own):
            # Both an own account and a beneficiary have this id (data loaded before loading refused
            # that): own accounts come first, so send the posting again without the check.
            self.guard = []
            self.items.pop()
            return RESEND
        src_old = seen(src)
        if (failed(src) and src_old is not None and c.text(src_old, "currency") != self.transfer.amount.currency) or (
            failed(tgt) and tgt is not src
        ):
            return CurrencyMismatch()
        if failed(src):
            return InsufficientFunds()
        if any(failed(r) for r in writes):
            return ConcurrencyConflict("That transfer already exists.")
        late = [seen(r) for r in heads if failed(r)]
        if late and all(old and "last_sk" in old for old in late) and self.restamps < RESTAMP_ATTEMPTS:
            self.restamps += 1
            self.stamp(
                max(self.transfer.created_at, *(c.key_time(c.text(old, "last_sk")) + _TICK for old in late if old))
            )
            return RESEND
        return ConcurrencyConflict()


def _of(entry: LedgerEntry) -> AccountRef:
    return AccountRef(entry.user_id, entry.account_id)


class Ledger:
    def __init__(self, uow: DynamoUnitOfWork) -> None:
        self._uow, self._t = uow, uow.tables

    def post(self, transfer: Transfer, *, resolve_destination: bool = False) -> None:
        posting = Posting(self._t, transfer, resolve_destination)
        self._uow.buffer_items(posting.items, posting.explain)

    def get_transfer(self, user_id: str, transfer_id: str) -> Transfer | None:
        item = self._uow.store.get_item(self._t.transfers, c.attrs(user_id=user_id, transfer_id=transfer_id))
        return None if item is None else c.transfer_from_item(item)

    def history(self, user_id: str, account_id: str, limit: int, position: str | None) -> Page[LedgerEntry]:
        key = c.head_key(AccountRef(user_id, account_id))["account_key"]
        params: dict[str, Any] = {
            "TableName": self._t.transactions,
            "KeyConditionExpression": "account_key = :k",
            "ExpressionAttributeValues": {":k": key},
            "ScanIndexForward": False,
            "ConsistentRead": True,
            "Limit": limit + 2,  # the head, the page, and one more to know whether there is more
        }
        if position is not None:
            cut, balance = _parse_position(position)
            params.update(Limit=limit + 1, ExclusiveStartKey={"account_key": key, **c.attrs(entry_key=cut)})
        items: list[c.Item] = self._uow.store.call("query", **params).get("Items", [])
        if position is None:
            if not items or c.text(items[0], "entry_key") != c.HEAD_KEY:
                raise AccountNotFound(field="account_id")
            balance, items = c.number(items[0], "balance"), items[1:]
        page = c.walk_back(items[:limit], balance)
        after = balance - sum(e.signed_minor for e in page)
        more = len(items) > limit
        return Page(page, json.dumps({"k": c.text(items[limit - 1], "entry_key"), "b": after}) if more else None)


def _parse_position(position: str) -> tuple[str, int]:
    try:
        data = json.loads(position)
    except ValueError:
        raise InvalidCursor(field="cursor") from None
    if not isinstance(data, dict) or not str(data.get("k")).startswith("E#") or type(data.get("b")) is not int:
        raise InvalidCursor(field="cursor")
    return str(data["k"]), int(data["b"])
