"""The in-memory store and its unit of work.

Writes are buffered as guarded operations and applied at ``commit()`` under
the store's one lock: every guard is checked against a staged overlay, and only
if all pass is the overlay merged. Thread-safe; nothing is ever half written.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from centli.adapters.buffered import BufferedUnitOfWork
from centli.domain.audit import AccountLedger, AuditSnapshot, InboxRecord, OutboxRecord
from centli.domain.catalog import Product
from centli.domain.errors import (
    AccountNotFound,
    ConcurrencyConflict,
    CurrencyMismatch,
    DestinationNotFound,
    InsufficientFunds,
    LimitExceeded,
    OutOfStock,
    ProductNotFound,
)
from centli.domain.events import PROCESSED, DomainEvent, EventAlreadyProcessed
from centli.domain.idempotency import DuplicateIdempotencyKey, IdempotencyRecord
from centli.domain.ledger import (
    OPENING_DESCRIPTION,
    Account,
    AccountRef,
    Beneficiary,
    DestinationIsBeneficiary,
    LedgerEntry,
    NewAccount,
    Transfer,
    describe_entry,
)
from centli.domain.loading import BankData, LoadReport, Progress, load_through_unit_of_work
from centli.domain.money import Money
from centli.domain.orders import Order
from centli.ports.audit import ReadProgress
from centli.ports.faults import FaultPoints, NoFaults
from centli.ports.repositories import Page

Key = tuple[str, ...]


class InMemoryStore:
    """All tables as dicts of immutable values, guarded by one lock."""

    def __init__(self, faults: FaultPoints | None = None) -> None:
        self.lock = threading.RLock()
        self.faults: FaultPoints = faults or NoFaults()
        self.tables: dict[str, dict[Key, Any]] = {
            name: {}
            for name in (
                "accounts",
                "transfers",
                "beneficiaries",
                "daily",
                "idempotency",
                "products",
                "orders",
                "inbox",
            )
        }
        #: Per account (user_id, account_id): entries oldest first.
        self.entries: dict[Key, list[LedgerEntry]] = {}
        self.outbox: list[DomainEvent] = []
        self.outbox_ids: set[str] = set()  # the ids in ``outbox``, for the duplicate check
        self.published: set[str] = set()
        self.commits = 0

    def unit_of_work(self) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(self)

    def load(self, data: BankData, progress: Progress | None = None) -> LoadReport:
        return load_through_unit_of_work(self.unit_of_work, data, progress)

    # OutboxReader -------------------------------------------------------------
    def pending(self, limit: int) -> list[DomainEvent]:
        with self.lock:
            return [e for e in self.outbox if e.event_id not in self.published][:limit]

    def mark_published(self, event_ids: Sequence[str]) -> None:
        with self.lock:
            self.published.update(event_ids)
            if len(self.published) > 10_000:
                self.outbox = [e for e in self.outbox if e.event_id not in self.published]
                self.outbox_ids = {e.event_id for e in self.outbox}
                self.published.clear()

    # reads used by repositories --------------------------------------------
    def get(self, table: str, key: Key) -> Any:
        with self.lock:
            return self.tables[table].get(key)

    def select(self, table: str, predicate: Callable[[Key, Any], bool]) -> list[tuple[Key, Any]]:
        with self.lock:
            return sorted(((k, v) for k, v in self.tables[table].items() if predicate(k, v)), key=lambda kv: kv[0])

    # TraceReader ------------------------------------------------------------------------
    def events_naming(self, text: str) -> list[OutboxRecord]:
        with self.lock:
            return [OutboxRecord(e, e.event_id in self.published) for e in self.outbox if _names(e, text)]

    def handled(self, consumer: str, event_id: str) -> InboxRecord | None:
        with self.lock:
            found: _Handled | None = self.tables["inbox"].get((consumer, event_id))
        return None if found is None else InboxRecord(consumer, event_id, found.outcome, found.at)

    # AuditReader: one consistent snapshot, taken under the lock -----------------------
    def audit_snapshot(self, progress: ReadProgress | None = None) -> AuditSnapshot:
        with self.lock:
            t = self.tables
            snapshot = AuditSnapshot(
                ledgers=[
                    AccountLedger(account, list(self.entries.get(key, [])))
                    for key, account in sorted(t["accounts"].items())
                ],
                transfers=list(t["transfers"].values()),
                idempotency=list(t["idempotency"].values()),
                products=list(t["products"].values()),
                orders=list(t["orders"].values()),
                outbox=[OutboxRecord(e, e.event_id in self.published) for e in self.outbox],
                inbox=[InboxRecord(c, e, v.outcome, v.at) for (c, e), v in t["inbox"].items()],
            )
        if progress is not None:
            progress("store", sum(len(v) for v in t.values()))
        return snapshot


class _Stage:
    """A copy-on-write overlay of the store used while a commit checks its guards."""

    def __init__(self, store: InMemoryStore) -> None:
        self.store = store
        self.writes: dict[tuple[str, Key], Any] = {}
        self.new_entries: list[LedgerEntry] = []
        self.new_events: list[DomainEvent] = []

    def get(self, table: str, key: Key) -> Any:
        if (table, key) in self.writes:
            return self.writes[(table, key)]
        return self.store.tables[table].get(key)

    def put(self, table: str, key: Key, value: Any) -> None:
        self.writes[(table, key)] = value

    def apply(self) -> None:
        for (table, key), value in self.writes.items():
            self.store.tables[table][key] = value
        for entry in self.new_entries:
            self.store.entries.setdefault((entry.user_id, entry.account_id), []).append(entry)
        self.store.outbox.extend(self.new_events)
        self.store.outbox_ids.update(e.event_id for e in self.new_events)


Operation = Callable[[_Stage], None]


class InMemoryUnitOfWork(BufferedUnitOfWork[Operation]):
    def __init__(self, store: InMemoryStore) -> None:
        super().__init__()
        self._store = store
        self.accounts = _Accounts(self)
        self.beneficiaries = _Beneficiaries(self)
        self.ledger = _Ledger(self)
        self.limits = _DailyLimits(self)
        self.idempotency = _Idempotency(self)
        self.products = _Products(self)
        self.orders = _Orders(self)
        self.inbox = _Inbox(self)
        self.outbox = _Outbox(self)

    @property
    def store(self) -> InMemoryStore:
        return self._store

    def _fault_points(self) -> FaultPoints:
        return self._store.faults

    def _apply(self, writes: list[Operation]) -> None:
        with self._store.lock:
            stage = _Stage(self._store)
            for write in writes:
                write(stage)
            stage.apply()
            self._store.commits += 1


class _Repo:
    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        self._uow = uow
        self._store = uow.store


class _Accounts(_Repo):
    def list_for_user(self, user_id: str) -> list[Account]:
        return [v for _, v in self._store.select("accounts", lambda k, _v: k[0] == user_id)]

    def get(self, user_id: str, account_id: str) -> Account | None:
        account: Account | None = self._store.get("accounts", (user_id, account_id))
        return account

    def get_many(self, refs: Sequence[AccountRef]) -> list[Account]:
        found = (self.get(ref.user_id, ref.account_id) for ref in refs)
        return [account for account in found if account is not None]

    def open(self, account: NewAccount) -> None:
        def op(stage: _Stage) -> None:
            key = (account.user_id, account.account_id)
            if stage.get("accounts", key) is not None:
                return
            stage.put(
                "accounts", key, Account(account.account_id, account.user_id, account.alias, account.opening_balance)
            )
            stage.new_entries.append(
                LedgerEntry(
                    entry_id=account.opening_entry_id,
                    account_id=account.account_id,
                    user_id=account.user_id,
                    transfer_id=account.opening_entry_id,
                    direction="CREDIT",
                    amount=account.opening_balance,
                    description=OPENING_DESCRIPTION,
                    timestamp=account.opened_at,
                    balance_after=account.opening_balance,
                )
            )

        self._uow.buffer(op)

    def require(self, user_id: str, account_id: str, minimum: Money) -> None:
        def op(stage: _Stage) -> None:
            account: Account | None = stage.get("accounts", (user_id, account_id))
            if account is None:
                raise AccountNotFound(field="account_id")
            if account.currency != minimum.currency:
                raise CurrencyMismatch()
            if account.balance < minimum:
                raise InsufficientFunds()

        self._uow.buffer(op)


class _Beneficiaries(_Repo):
    def list_for_user(self, user_id: str) -> list[Beneficiary]:
        return [v for _, v in self._store.select("beneficiaries", lambda k, _v: k[0] == user_id)]

    def get(self, user_id: str, beneficiary_id: str) -> Beneficiary | None:
        found: Beneficiary | None = self._store.get("beneficiaries", (user_id, beneficiary_id))
        return found

    def add(self, beneficiary: Beneficiary) -> None:
        self._uow.buffer(
            lambda s: s.put("beneficiaries", (beneficiary.user_id, beneficiary.beneficiary_id), beneficiary)
        )


class _Ledger(_Repo):
    def post(self, transfer: Transfer, *, resolve_destination: bool = False) -> None:
        def op(stage: _Stage) -> None:
            source_key = (transfer.user_id, transfer.from_account_id)
            target_key = (transfer.to.user_id, transfer.to.account_id)
            source: Account | None = stage.get("accounts", source_key)
            target: Account | None = stage.get("accounts", target_key)
            if source is None:
                raise AccountNotFound(field="from_account_id")
            if target is None and resolve_destination:
                saved: Beneficiary | None = stage.get("beneficiaries", target_key)
                if saved is not None:
                    raise DestinationIsBeneficiary(saved)
                raise DestinationNotFound(field="destination_id")
            if target is None:
                raise AccountNotFound(field="to_account_id")
            if source.currency != transfer.amount.currency or target.currency != transfer.amount.currency:
                raise CurrencyMismatch()
            if source.balance < transfer.amount:
                raise InsufficientFunds()
            if stage.get("transfers", (transfer.user_id, transfer.transfer_id)) is not None:
                raise ConcurrencyConflict("That transfer already exists.")
            source = replace(source, balance=source.balance - transfer.amount)
            stage.put("accounts", source_key, source)
            target = stage.get("accounts", target_key)  # re-read: could be the same row in theory
            target = replace(target, balance=target.balance + transfer.amount)
            stage.put("accounts", target_key, target)
            stage.put("transfers", (transfer.user_id, transfer.transfer_id), transfer)
            for entry_id, account, direction in (
                (transfer.debit_entry_id, source, "DEBIT"),
                (transfer.credit_entry_id, target, "CREDIT"),
            ):
                stage.new_entries.append(
                    LedgerEntry(
                        entry_id=entry_id,
                        account_id=account.account_id,
                        user_id=account.user_id,
                        transfer_id=transfer.transfer_id,
                        direction="DEBIT" if direction == "DEBIT" else "CREDIT",
                        amount=transfer.amount,
                        description=describe_entry(transfer, "DEBIT" if direction == "DEBIT" else "CREDIT"),
                        timestamp=transfer.created_at,
                        balance_after=account.balance,
                    )
                )

        self._uow.buffer(op)

    def get_transfer(self, user_id: str, transfer_id: str) -> Transfer | None:
        found: Transfer | None = self._store.get("transfers", (user_id, transfer_id))
        return found

    def history(self, user_id: str, account_id: str, limit: int, position: str | None) -> Page[LedgerEntry]:
        with self._store.lock:
            if (user_id, account_id) not in self._store.tables["accounts"]:
                raise AccountNotFound(field="account_id")
            entries = list(self._store.entries.get((user_id, account_id), []))
        end = len(entries) if position is None else _int_position(position, len(entries))
        start = max(0, end - limit)
        page = list(reversed(entries[start:end]))
        return Page(page, str(start) if start > 0 else None)


class _DailyLimits(_Repo):
    def add(self, user_id: str, day: str, amount: Money, limit: Money) -> None:
        def op(stage: _Stage) -> None:
            key = (user_id, day, amount.currency)
            total = int(stage.get("daily", key) or 0) + amount.minor
            if total > limit.minor:
                raise LimitExceeded(f"This goes over the daily transfer limit of {limit}.")
            stage.put("daily", key, total)

        self._uow.buffer(op)

    def total(self, user_id: str, day: str, currency: str) -> Money:
        return Money(int(self._store.get("daily", (user_id, day, currency)) or 0), currency)


class _Idempotency(_Repo):
    def claim(self, record: IdempotencyRecord) -> None:
        def op(stage: _Stage) -> None:
            key = (record.user_id, record.key)
            existing: IdempotencyRecord | None = stage.get("idempotency", key)
            if existing is not None and existing.is_live(record.created_at):
                raise DuplicateIdempotencyKey(existing)
            stage.put("idempotency", key, record)

        self._uow.buffer(op, first=True)

    def get(self, user_id: str, key: str) -> IdempotencyRecord | None:
        found: IdempotencyRecord | None = self._store.get("idempotency", (user_id, key))
        return found


class _Products(_Repo):
    def get(self, product_id: str) -> Product | None:
        found: Product | None = self._store.get("products", (product_id,))
        return found

    def search(self, query: str | None, category: str | None, limit: int, position: str | None) -> Page[Product]:
        rows = self._store.select(
            "products", lambda k, v: (position is None or k[0] > position) and v.matches(query, category)
        )
        items = [v for _, v in rows[:limit]]
        return Page(items, items[-1].product_id if len(rows) > limit else None)

    def add(self, product: Product) -> None:
        def op(stage: _Stage) -> None:
            if stage.get("products", (product.product_id,)) is None:
                stage.put("products", (product.product_id,), product)

        self._uow.buffer(op)

    def _change(self, product_id: str, change: Callable[[Product], Product]) -> None:
        def op(stage: _Stage) -> None:
            product: Product | None = stage.get("products", (product_id,))
            if product is None:
                raise ProductNotFound(field="product_id")
            stage.put("products", (product_id,), change(product))

        self._uow.buffer(op)

    def reserve(self, product_id: str, quantity: int) -> None:
        def change(p: Product) -> Product:
            if p.available < quantity:
                raise OutOfStock()
            return replace(p, reserved=p.reserved + quantity)

        self._change(product_id, change)

    def release(self, product_id: str, quantity: int) -> None:
        def change(p: Product) -> Product:
            if p.reserved < quantity:
                raise ConcurrencyConflict("The reservation is no longer held.")
            return replace(p, reserved=p.reserved - quantity)

        self._change(product_id, change)

    def commit_reserved(self, product_id: str, quantity: int) -> None:
        def change(p: Product) -> Product:
            if p.reserved < quantity or p.stock < quantity:
                raise ConcurrencyConflict("The reservation is no longer held.")
            return replace(p, reserved=p.reserved - quantity, stock=p.stock - quantity)

        self._change(product_id, change)


class _Orders(_Repo):
    def get(self, user_id: str, order_id: str) -> Order | None:
        found: Order | None = self._store.get("orders", (user_id, order_id))
        return found

    def list_for_user(self, user_id: str, limit: int, position: str | None) -> Page[Order]:
        rows = self._store.select("orders", lambda k, _v: k[0] == user_id and (position is None or k[1] < position))
        newest_first = [v for _, v in reversed(rows)]
        items = newest_first[:limit]
        return Page(items, items[-1].order_id if len(newest_first) > limit else None)

    def list_pending_before(self, cutoff: datetime, limit: int) -> list[Order]:
        rows = self._store.select("orders", lambda _k, v: v.status == "PENDING" and v.sweep_time < cutoff)
        return sorted((v for _, v in rows), key=lambda o: (o.sweep_time, o.order_id))[:limit]

    def add(self, order: Order) -> None:
        def op(stage: _Stage) -> None:
            key = (order.user_id, order.order_id)
            if stage.get("orders", key) is not None:
                raise ConcurrencyConflict("That order already exists.")
            stage.put("orders", key, order)

        self._uow.buffer(op)

    def update(self, order: Order) -> None:
        def op(stage: _Stage) -> None:
            key = (order.user_id, order.order_id)
            stored: Order | None = stage.get("orders", key)
            if stored is None or stored.version != order.version - 1:
                raise ConcurrencyConflict()
            stage.put("orders", key, order)

        self._uow.buffer(op)


@dataclass(frozen=True, slots=True)
class _Handled:
    outcome: str
    at: datetime | None


class _Inbox(_Repo):
    def mark_processed(
        self, consumer: str, event_id: str, outcome: str = PROCESSED, at: datetime | None = None
    ) -> None:
        def op(stage: _Stage) -> None:
            if stage.get("inbox", (consumer, event_id)) is not None:
                raise EventAlreadyProcessed(consumer, event_id)
            stage.put("inbox", (consumer, event_id), _Handled(outcome, at))

        self._uow.buffer(op, first=True)


class _Outbox(_Repo):
    def add(self, event: DomainEvent) -> None:
        def op(stage: _Stage) -> None:
            # An event id already stored is kept as it was (as the SQLite and DynamoDB stores do).
            if event.event_id in stage.store.outbox_ids or any(e.event_id == event.event_id for e in stage.new_events):
                return
            stage.new_events.append(event)

        self._uow.buffer(op)


def _names(event: DomainEvent, text: str) -> bool:
    return text in (event.event_id, event.correlation_id) or text in event.payload.values()


def _int_position(position: str, size: int) -> int:
    if not position.isdigit() or not 0 < int(position) <= size:
        from centli.domain.errors import InvalidCursor

        raise InvalidCursor(field="cursor")
    return int(position)


def all_entries(store: InMemoryStore) -> Iterable[LedgerEntry]:
    """Every ledger entry (for invariant checks)."""
    with store.lock:
        return [e for entries in store.entries.values() for e in entries]
