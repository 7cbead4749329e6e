"""The in-memory store: a small fake for tests and simulations.

Tables are dicts of immutable values behind one lock. A commit runs its
buffered writes against a staged overlay under that lock, checking each with
the domain's rules (:mod:`centli.domain.rules`), and merges the overlay only
when all pass: nothing is ever half written.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from centli.adapters.buffered import BufferedUnitOfWork, Repositories, StockChanges
from centli.adapters.system import SystemClock
from centli.domain import rules
from centli.domain.audit import AccountLedger, AuditSnapshot, InboxRecord, OutboxRecord
from centli.domain.catalog import Product
from centli.domain.errors import AccountNotFound, InvalidCursor
from centli.domain.events import PROCESSED, DomainEvent
from centli.domain.idempotency import IdempotencyRecord
from centli.domain.ledger import Account, AccountRef, Beneficiary, LedgerEntry, NewAccount, Transfer, commit_stamp
from centli.domain.loading import BankData, LoadReport, Progress, load_through_unit_of_work
from centli.domain.money import Money
from centli.domain.orders import Order
from centli.ports.audit import ReadProgress
from centli.ports.clock import Clock
from centli.ports.faults import FaultPoints, NoFaults
from centli.ports.repositories import Page

Key = tuple[str, ...]
TABLES = ("accounts", "transfers", "beneficiaries", "daily", "idempotency", "products", "orders", "inbox", "outbox")


class InMemoryStore:
    def __init__(self, faults: FaultPoints | None = None, clock: Clock | None = None) -> None:
        self.lock = threading.RLock()
        self.faults: FaultPoints = faults or NoFaults()
        self.clock: Clock = clock or SystemClock()
        self.tables: dict[str, dict[Key, Any]] = {name: {} for name in TABLES}
        self.entries: dict[Key, list[LedgerEntry]] = {}  # per (user_id, account_id), oldest first
        self.published: set[str] = set()

    def unit_of_work(self) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(self)

    def load(self, data: BankData, progress: Progress | None = None) -> LoadReport:
        return load_through_unit_of_work(self.unit_of_work, data, progress)

    def get(self, table: str, key: Key) -> Any:
        with self.lock:
            return self.tables[table].get(key)

    def select(self, table: str, keep: Callable[[Key, Any], bool]) -> list[Any]:
        """The values that ``keep`` accepts, in key order."""
        with self.lock:
            return [v for k, v in sorted(self.tables[table].items(), key=lambda kv: kv[0]) if keep(k, v)]

    # OutboxReader, TraceReader, AuditReader ---------------------------------------------
    def pending(self, limit: int) -> list[DomainEvent]:
        with self.lock:
            return [e for e in self.tables["outbox"].values() if e.event_id not in self.published][:limit]

    def mark_published(self, event_ids: Sequence[str]) -> None:
        with self.lock:
            self.published.update(event_ids)

    def events_naming(self, text: str) -> list[OutboxRecord]:
        return [
            r
            for r in self._outbox_records()
            if text in (r.event.event_id, r.event.correlation_id) or text in r.event.payload.values()
        ]

    def handled(self, consumer: str, event_id: str) -> InboxRecord | None:
        return self.get("inbox", (consumer, event_id))  # type: ignore[no-any-return]

    def audit_snapshot(self, progress: ReadProgress | None = None) -> AuditSnapshot:
        with self.lock:  # one consistent snapshot
            t = self.tables
            ledgers = [AccountLedger(a, list(self.entries.get(k, []))) for k, a in sorted(t["accounts"].items())]
            snapshot = AuditSnapshot(
                ledgers,
                transfers=list(t["transfers"].values()),
                idempotency=list(t["idempotency"].values()),
                products=list(t["products"].values()),
                orders=list(t["orders"].values()),
                outbox=self._outbox_records(),
            )
        if progress is not None:
            progress("store", sum(len(v) for v in t.values()))
        return snapshot

    def _outbox_records(self) -> list[OutboxRecord]:
        with self.lock:
            return [OutboxRecord(e, e.event_id in self.published) for e in self.tables["outbox"].values()]


class _Stage:
    """A copy-on-write overlay of the store: one commit's writes, merged only if every rule passed."""

    def __init__(self, store: InMemoryStore, stamp: datetime, posted: list[Transfer]) -> None:
        self.store, self.stamp, self.posted = store, stamp, posted
        self.writes: dict[tuple[str, Key], Any] = {}
        self.entries: list[LedgerEntry] = []

    def get(self, table: str, key: Key) -> Any:
        return self.writes[(table, key)] if (table, key) in self.writes else self.store.tables[table].get(key)

    def put(self, table: str, key: Key, value: Any) -> None:
        self.writes[(table, key)] = value

    def put_new(self, table: str, key: Key, value: Any) -> bool:
        """Put unless the key holds a value already (then keep it); whether it put."""
        if self.get(table, key) is not None:
            return False
        self.put(table, key, value)
        return True

    def merge(self) -> None:
        for (table, key), value in self.writes.items():
            self.store.tables[table][key] = value
        for entry in self.entries:
            self.store.entries.setdefault((entry.user_id, entry.account_id), []).append(entry)


Write = Callable[[_Stage], object]


class InMemoryUnitOfWork(BufferedUnitOfWork[Write, InMemoryStore]):
    def _apply(self, writes: list[Write], posted: list[Transfer]) -> datetime:
        with self.store.lock:
            heads = [self.store.entries.get((r.user_id, r.account_id)) for t in posted for r in (t.source, t.to)]
            stage = _Stage(self.store, commit_stamp(self.clock.now(), *(h[-1].timestamp for h in heads if h)), posted)
            for write in writes:
                write(stage)
            stage.merge()
            return stage.stamp


class _Repo:
    table = ""  # the table the repository reads by key and by owner

    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        self._uow, self._store = uow, uow.store

    def get(self, *key: str) -> Any:
        return self._store.get(self.table, key)


class _Owned(_Repo):
    def list_for_user(self, user_id: str) -> list[Any]:
        return self._store.select(self.table, lambda k, _: k[0] == user_id)


class _Accounts(_Owned):
    table = "accounts"

    def get_many(self, refs: Sequence[AccountRef]) -> list[Account]:
        return [a for a in (self.get(r.user_id, r.account_id) for r in refs) if a is not None]

    def open(self, account: NewAccount) -> None:
        def write(stage: _Stage) -> None:
            if stage.put_new("accounts", (account.user_id, account.account_id), account.account):
                stage.entries.append(account.opening_entry())

        self._uow.buffer(write)

    def require(self, user_id: str, account_id: str, minimum: Money) -> None:
        self._uow.buffer(lambda s: rules.enforce(rules.refuse_funds(s.get("accounts", (user_id, account_id)), minimum)))


class _Beneficiaries(_Owned):
    table = "beneficiaries"

    def add(self, beneficiary: Beneficiary) -> None:
        key = (beneficiary.user_id, beneficiary.beneficiary_id)
        self._uow.buffer(lambda s: s.put("beneficiaries", key, beneficiary))


class _Ledger(_Repo):
    def post(self, transfer: Transfer, *, resolve_destination: bool = False) -> None:
        def write(stage: _Stage) -> None:
            keys = [(r.user_id, r.account_id) for r in (transfer.source, transfer.to)]
            source, target = (stage.get("accounts", k) for k in keys)
            saved = stage.get("beneficiaries", keys[1]) if resolve_destination else None
            rules.enforce(
                rules.refuse_transfer(transfer, source, target, saved=saved, resolve_destination=resolve_destination)
            )
            stamped = transfer.stamped(stage.stamp)
            key = (transfer.user_id, transfer.transfer_id)
            rules.enforce(rules.refuse_new(stage.get("transfers", key), "transfer"))
            stage.put("transfers", key, stamped)
            after = []
            for key, delta in zip(keys, (-transfer.amount, transfer.amount), strict=True):
                account = stage.get("accounts", key)  # read again: both sides may be one account
                after.append(account.balance + delta)
                stage.put("accounts", key, replace(account, balance=after[-1]))
            stage.entries.extend(stamped.entries(*after))

        self._uow.buffer(write, posts=transfer)

    def get_transfer(self, user_id: str, transfer_id: str) -> Transfer | None:
        return self._store.get("transfers", (user_id, transfer_id))  # type: ignore[no-any-return]

    def history(self, user_id: str, account_id: str, limit: int, position: str | None) -> Page[LedgerEntry]:
        with self._store.lock:
            if (user_id, account_id) not in self._store.tables["accounts"]:
                raise AccountNotFound(field="account_id")
            entries = list(self._store.entries.get((user_id, account_id), []))
        end = len(entries)  # the position is how many entries precede the next page: later ones never shift it
        if position is not None:
            if not (position.isascii() and position.isdigit() and 0 < int(position) <= end):
                raise InvalidCursor(field="cursor")
            end = int(position)
        start = max(0, end - limit)
        return Page(entries[start:end][::-1], str(start) if start > 0 else None)


class _DailyLimits(_Repo):
    def add(self, user_id: str, day: str, amount: Money, limit: Money) -> None:
        def write(stage: _Stage) -> None:
            total: Money | None = stage.get("daily", (user_id, day, amount.currency))
            rules.enforce(rules.refuse_daily_total(total, amount, limit))
            stage.put("daily", (user_id, day, amount.currency), amount if total is None else total + amount)

        self._uow.buffer(write)

    def total(self, user_id: str, day: str, currency: str) -> Money:
        return self._store.get("daily", (user_id, day, currency)) or Money(0, currency)


class _Idempotency(_Repo):
    table = "idempotency"

    def claim(self, record: IdempotencyRecord) -> None:
        def write(stage: _Stage) -> None:
            rules.enforce(rules.refuse_claim(stage.get("idempotency", (record.user_id, record.key)), record))
            stage.put("idempotency", (record.user_id, record.key), rules.answer_at(record, stage.posted, stage.stamp))

        self._uow.buffer(write, first=True)


class _Products(_Repo, StockChanges):
    table = "products"

    def search(self, query: str | None, category: str | None, limit: int, position: str | None) -> Page[Product]:
        rows = self._store.select("products", lambda k, v: k[0] > (position or "") and v.matches(query, category))
        return Page.cut(rows, limit, lambda p: p.product_id)

    def add(self, product: Product) -> None:
        self._uow.buffer(lambda s: s.put_new("products", (product.product_id,), product))

    def _change(self, product_id: str, change: rules.StockChange, quantity: int) -> None:
        def write(stage: _Stage) -> None:
            product: Product | None = stage.get("products", (product_id,))
            rules.enforce(rules.refuse_stock(product, change, quantity))
            stage.put("products", (product_id,), rules.changed_stock(product, change, quantity))  # type: ignore[arg-type]

        self._uow.buffer(write)


class _Orders(_Repo):
    table = "orders"

    def list_for_user(self, user_id: str, limit: int, position: str | None) -> Page[Order]:
        rows = self._store.select("orders", lambda k, _: k[0] == user_id and (position is None or k[1] < position))
        return Page.cut(rows[::-1], limit, lambda o: o.order_id)

    def list_pending_before(self, cutoff: datetime, limit: int) -> list[Order]:
        rows: list[Order] = self._store.select("orders", lambda _, v: v.status == "PENDING" and v.sweep_time < cutoff)
        return sorted(rows, key=lambda o: (o.sweep_time, o.order_id))[:limit]

    def add(self, order: Order) -> None:
        self._put(order, lambda stored: rules.refuse_new(stored, "order"))

    def update(self, order: Order) -> None:
        self._put(order, lambda stored: rules.refuse_version(stored, order))

    def _put(self, order: Order, refuse: Callable[[Order | None], Exception | None]) -> None:
        def write(stage: _Stage) -> None:
            rules.enforce(refuse(stage.get("orders", (order.user_id, order.order_id))))
            stage.put("orders", (order.user_id, order.order_id), order)

        self._uow.buffer(write)


class _Inbox(_Repo):
    def mark_processed(
        self, consumer: str, event_id: str, outcome: str = PROCESSED, at: datetime | None = None
    ) -> None:
        def write(stage: _Stage) -> None:
            handled = stage.get("inbox", (consumer, event_id)) is not None
            rules.enforce(rules.refuse_processed(handled, consumer, event_id))
            stage.put("inbox", (consumer, event_id), InboxRecord(consumer, event_id, outcome, at or stage.stamp))

        self._uow.buffer(write, first=True)


class _Outbox(_Repo):
    def add(self, event: DomainEvent) -> None:
        # An event id already stored is kept as it was (as the SQLite and DynamoDB stores do).
        self._uow.buffer(lambda s: s.put_new("outbox", (event.event_id,), event))


InMemoryUnitOfWork.repositories = Repositories(
    _Accounts, _Beneficiaries, _Ledger, _DailyLimits, _Idempotency, _Products, _Orders, _Inbox, _Outbox
)


def all_entries(store: InMemoryStore) -> Iterable[LedgerEntry]:
    """Every ledger entry (for invariant checks)."""
    with store.lock:
        return [e for entries in store.entries.values() for e in entries]
