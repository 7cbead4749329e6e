"""The ledger on DynamoDB: one partition per account, its head, its entries in commit order.

An account's partition (``account_key = user_id#account_id``) holds a *head* (sort key ``~HEAD``, after
every entry) mirroring its balance, and entries keyed ``E#<stamp>#<rank>#<entry id>``. A first history
page is ONE consistent Query, newest first: the head, then the entries, each ``balance_after`` computed
walking back from the head; a page's position holds the cut's key and the balance before it (the domain
signs it in the cursor). Older entries never change, so a later page stays exact.

Key order is commit order, and time order: each head update is conditioned on ``last_sk < :sk``. When a
head holds a later key (another Lambda's clock runs ahead), only that condition fails, and its
``last_sk`` comes back (ALL_OLD): the commit is stamped again, no earlier than that entry, its keys ranked
after it, and resent, a bounded number of times. Every other refusal is named first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from centli.adapters.dynamodb import codecs as c
from centli.adapters.dynamodb.runner import Intent, Reason, Restamp, check, failed, put, saw, update
from centli.domain import rules
from centli.domain.errors import AccountNotFound, InvalidCursor
from centli.domain.ledger import AccountRef, LedgerEntry, NewAccount, Transfer, commit_stamp
from centli.ports.repositories import Page

if TYPE_CHECKING:
    from centli.adapters.dynamodb.schema import TableNames
    from centli.adapters.dynamodb.store import DynamoUnitOfWork

#: Times one commit is stamped again after later entries committed first.
RESTAMP_ATTEMPTS = 8


def opening_items(t: TableNames, account: NewAccount) -> list[tuple[str, c.Item]]:
    """An account's row, its ledger head and its opening entry (keyed before anything stamped later)."""
    entry = account.opening_entry()
    # The head's last_sk says "opened at": every later entry is stamped no earlier.
    last = c.attrs(last_sk=c.entry_key(account.opened_at, entry.entry_id, rank="0"))
    money = c.attrs(currency=account.opening_balance.currency, balance=account.opening_balance.minor)
    head = {**c.head_key(AccountRef(account.user_id, account.account_id)), **money, **last}
    opening = c.entry_item(entry, c.entry_key(c.OPENING_KEY_TIME, entry.entry_id, rank="0"))
    return [(t.accounts, c.account_item(account.account)), (t.transactions, head), (t.transactions, opening)]


class Posting:
    """One transfer's transaction items, in this order: the accounts (the source's funds, the target's
    currency), their ledger heads, the entries, the transfer record, and (to resolve a destination id)
    a check that the customer has no beneficiary of that id. ``stamp`` rewrites those that carry the
    commit's stamp."""

    def __init__(self, t: TableNames, transfer: Transfer, resolve_destination: bool) -> None:
        self.t, self.transfer, self.restamps = t, transfer, 0
        self.refs = list(dict.fromkeys((transfer.source, transfer.to)))  # one when both sides are one account
        self.seen_last: dict[AccountRef, str] = {}  # a head's last_sk, as a cancellation returned it
        self.accounts = self._account_items()
        key = c.attrs(user_id=transfer.to.user_id, beneficiary_id=transfer.to.account_id)
        self.guard = [check(t.beneficiaries, key, "attribute_not_exists(user_id)")] if resolve_destination else []
        self.intent = Intent([], self.explain, self.stamp)
        self.stamp(transfer.created_at)

    def _account_items(self) -> list[c.Item]:
        values = c.values(a=self.transfer.amount.minor, c=self.transfer.amount.currency)
        known = "attribute_exists(user_id) AND currency = :c"
        funded = f"{known} AND balance >= :a"
        source, target = (
            c.attrs(user_id=r.user_id, account_id=r.account_id) for r in (self.transfer.source, self.transfer.to)
        )
        if len(self.refs) == 1:  # one item cannot be touched twice in a transaction: the net change is zero
            return [check(self.t.accounts, source, funded, values)]
        debit = update(self.t.accounts, source, "SET balance = balance - :a", funded, values)
        return [debit, update(self.t.accounts, target, "SET balance = balance + :a", known, values)]

    def _key(self, ref: AccountRef, at: datetime, entry_id: str) -> str:
        """An entry's key: stamped ``at``, ranked after the head's last key when that has the same stamp."""
        last = self.seen_last.get(ref)
        return c.entry_key(at, entry_id, c.next_rank(last) if last and c.key_time(last) == at else "1")

    def stamp(self, at: datetime, _: Sequence[Transfer] = ()) -> None:
        """(Re)write what carries the stamp: the heads' last keys, the entries and the transfer record."""
        self.transfer = self.transfer.stamped(at)
        amount = self.transfer.amount
        entries = self.transfer.entries(amount, amount)  # balance_after is not stored: history computes it
        owners = [AccountRef(e.user_id, e.account_id) for e in entries]
        keyed = [(ref, e, self._key(ref, at, e.entry_id)) for ref, e in zip(owners, entries, strict=True)]
        delta = {self.transfer.source: -amount.minor, self.transfer.to: amount.minor} if len(self.refs) == 2 else {}
        # A head's last_sk only grows (its condition): the partition's key order is the commit order.
        heads = [
            update(
                self.t.transactions,
                c.head_key(ref),
                "SET last_sk = :sk ADD balance :d",
                "attribute_not_exists(last_sk) OR last_sk < :sk",
                c.values(d=delta.get(ref, 0), sk=max(key for owner, _, key in keyed if owner == ref)),
            )
            for ref in self.refs
        ]
        puts = [
            put(self.t.transactions, c.entry_item(e, key), "attribute_not_exists(entry_key)") for _, e, key in keyed
        ]
        record = put(self.t.transfers, c.transfer_item(self.transfer), "attribute_not_exists(transfer_id)")
        self.intent.items[:] = [*self.accounts, *heads, *puts, record, *self.guard]

    def explain(self, reasons: list[Reason]) -> Exception | Restamp | None:
        count, saved = len(self.accounts), reasons[-1] if self.guard else None
        own = reasons[:-1] if self.guard else reasons
        heads, writes = own[count : count + len(self.refs)], own[count + len(self.refs) :]
        source, target = saw(own[0], c.account_from_item), saw(own[count - 1], c.account_from_item)
        resolve = saved is not None
        beneficiary = saw(saved, c.beneficiary_from_item) if saved is not None else None
        refused = rules.refuse_transfer(self.transfer, source, target, saved=beneficiary, resolve_destination=resolve)
        for written in writes:
            refused = refused or rules.refuse_new(saw(written, dict) if failed(written) else None, "transfer")
        if refused is not None:
            return refused
        if saved is not None and failed(saved) and not any(map(failed, own)):
            # An own account and a beneficiary have this id (data loaded before loading refused that):
            # own accounts come first, so the posting is sent again without the check (stamped as it was).
            self.guard = []
            return Restamp(self.transfer.created_at)
        olds = {ref: r.get("Item", {}) for ref, r in zip(self.refs, heads, strict=True) if failed(r)}
        late = {ref: c.text(old, "last_sk") for ref, old in olds.items() if "last_sk" in old}
        if late and len(late) == len(olds) and self.restamps < RESTAMP_ATTEMPTS:
            # Later entries committed first (a clock running ahead, a slow commit): stamp the commit again,
            # no earlier than them (rules: commit_stamp), and rank its keys after theirs.
            self.restamps += 1
            self.seen_last.update(late)
            return Restamp(commit_stamp(self.transfer.created_at, *map(c.key_time, late.values())))
        return rules.failed(None)


class Ledger:
    def __init__(self, uow: DynamoUnitOfWork) -> None:
        self._uow, self._t = uow, uow.tables

    def post(self, transfer: Transfer, *, resolve_destination: bool = False) -> None:
        self._uow.buffer(Posting(self._t, transfer, resolve_destination).intent, posts=transfer)

    def get_transfer(self, user_id: str, transfer_id: str) -> Transfer | None:
        item = self._uow.store.get_item(self._t.transfers, c.attrs(user_id=user_id, transfer_id=transfer_id))
        return None if item is None else c.transfer_from_item(item)

    def history(self, user_id: str, account_id: str, limit: int, position: str | None) -> Page[LedgerEntry]:
        key = c.partition(AccountRef(user_id, account_id))
        newest = partial(self._uow.store.query, self._t.transactions, "account_key = :k", c.values(k=key))
        if position is None:
            items = newest(limit + 2)  # the head, the page, and one more to know whether there is more
            if not items or c.text(items[0], "entry_key") != c.HEAD_KEY:
                raise AccountNotFound(field="account_id")
            balance, items = c.number(items[0], "balance"), items[1:]
        else:
            cut, balance = _parse_position(position)
            items = newest(limit + 1, ExclusiveStartKey=c.attrs(account_key=key, entry_key=cut))
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
