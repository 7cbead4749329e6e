"""The SQLite store and its unit of work: the embedded default for local runs.

One file in WAL mode (:mod:`.connections`). Reads go straight to the database.
Writes are buffered and applied at ``commit()`` in one ``BEGIN IMMEDIATE``
transaction. Each write is the atomic part of a rule only: a statement whose
row count (or ``RETURNING`` row) tells whether its ``WHERE`` held. When one
fails, the write reads the rows it touched, inside the same transaction, and
raises what the domain's rules (:mod:`centli.domain.rules`) make of them; the
whole transaction rolls back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from centli.adapters.buffered import BufferedUnitOfWork, Repositories, StockChanges
from centli.adapters.sqlite import rows as codec
from centli.adapters.sqlite.connections import BUSY_TIMEOUT, ConnectionPool
from centli.adapters.sqlite.rows import Row, utc_text
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

T = TypeVar("T")

HISTORY = "SELECT * FROM entries WHERE user_id = ? AND account_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
LAST_ENTRY_AT = "SELECT timestamp FROM entries WHERE user_id = ? AND account_id = ? ORDER BY seq DESC LIMIT 1"
#: A debit (a negative :delta, :funded = the amount) or a credit (:funded = 0): the posting's one condition per side.
MOVE = (
    "UPDATE accounts SET balance_minor = balance_minor + ? WHERE user_id = ? AND account_id = ? AND currency = ?"
    " AND balance_minor >= ? RETURNING balance_minor"
)
#: Each stock change: what it sets, and the WHERE that lets it.
STOCK: dict[rules.StockChange, tuple[str, str]] = {
    "reserve": ("reserved = reserved + :q", "stock - reserved >= :q"),
    "release": ("reserved = reserved - :q", "reserved >= :q"),
    "commit": ("stock = stock - :q, reserved = reserved - :q", "reserved >= :q AND stock >= :q"),
}


class SqliteStore(ConnectionPool):
    """Every table in one SQLite file, safe for many threads and processes at once."""

    def __init__(
        self,
        path: str | Path,
        faults: FaultPoints | None = None,
        *,
        synchronous: str = "FULL",
        busy_timeout: float = BUSY_TIMEOUT,
        clock: Clock | None = None,
    ) -> None:
        """``synchronous="NORMAL"`` trades durability on power loss (not on a crash) for speed."""
        super().__init__(path, synchronous=synchronous, busy_timeout=busy_timeout)
        self.faults: FaultPoints = faults or NoFaults()
        self.clock: Clock = clock or SystemClock()

    def unit_of_work(self) -> SqliteUnitOfWork:
        return SqliteUnitOfWork(self)

    def load(self, data: BankData, progress: Progress | None = None) -> LoadReport:
        return load_through_unit_of_work(self.unit_of_work, data, progress)

    # OutboxReader, TraceReader, AuditReader ---------------------------------------------
    def pending(self, limit: int) -> list[DomainEvent]:
        """Committed events not yet published, oldest first."""
        rows = self.read("SELECT * FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT ?", (limit,))
        return [codec.value(DomainEvent, row) for row in rows]

    def mark_published(self, event_ids: Sequence[str]) -> None:
        if not event_ids:
            return
        now = utc_text(self.clock.now())
        with self.transaction() as db:
            db.executemany(
                "UPDATE outbox SET published_at = ? WHERE event_id = ? AND published_at IS NULL",
                [(now, event_id) for event_id in event_ids],
            )

    def events_naming(self, text: str) -> list[OutboxRecord]:
        """A scan of the outbox (an operator's lookup, not a hot path); the payload match is textual."""
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self.read(
            "SELECT * FROM outbox WHERE event_id = ? OR correlation_id = ? OR payload LIKE ? ESCAPE '\\' ORDER BY seq",
            (text, text, like),
        )
        return [codec.value(OutboxRecord, row) for row in rows]

    def handled(self, consumer: str, event_id: str) -> InboxRecord | None:
        return codec.get(self.read, InboxRecord, (consumer, event_id))

    def audit_snapshot(self, progress: ReadProgress | None = None) -> AuditSnapshot:
        """Every table in one read transaction: a consistent snapshot, while writers go on (WAL)."""

        def rows(name: str, kind: type[T], order: str = "") -> list[T]:
            found = []
            for count, row in enumerate(connection.execute(f"SELECT * FROM {name} {order}"), start=1):  # noqa: S608
                if progress is not None and count % 1000 == 0:
                    progress(name, count)
                found.append(codec.value(kind, row))
            return found

        with self.connection() as connection:
            connection.execute("BEGIN")
            try:
                entries: dict[tuple[str, str], list[LedgerEntry]] = {}
                for entry in rows("entries", LedgerEntry, "ORDER BY seq"):
                    entries.setdefault((entry.user_id, entry.account_id), []).append(entry)
                accounts = rows("accounts", Account, "ORDER BY user_id, account_id")
                return AuditSnapshot(
                    ledgers=[AccountLedger(a, entries.get((a.user_id, a.account_id), [])) for a in accounts],
                    transfers=rows("transfers", Transfer),
                    idempotency=rows("idempotency", IdempotencyRecord),
                    products=rows("products", Product),
                    orders=rows("orders", Order),
                    outbox=rows("outbox", OutboxRecord, "ORDER BY seq"),
                )
            finally:
                connection.execute("COMMIT")

    def all_entries(self) -> list[LedgerEntry]:
        """Every ledger entry, oldest first (for invariant checks)."""
        return [codec.value(LedgerEntry, row) for row in self.read("SELECT * FROM entries ORDER BY seq")]


@dataclass(frozen=True, slots=True)
class _Tx:
    """One commit's transaction: its connection, its stamp and the transfers it posts."""

    db: sqlite3.Connection
    stamp: datetime
    posted: list[Transfer]

    def rows(self, sql: str, params: Sequence[Any]) -> list[Row]:
        return self.db.execute(sql, params).fetchall()

    def get(self, kind: type[T], key: Sequence[Any]) -> T | None:
        """What a failed condition saw of a row, read inside the transaction (None: missing)."""
        return codec.get(self.rows, kind, key)

    def insert(self, table: str, row: dict[str, Any], *, replace_where: str | None = None) -> bool:
        """Insert ``row``; a row with its key stays as it is (False), or is replaced where ``replace_where`` holds."""
        conflict = "DO NOTHING"
        if replace_where is not None:
            conflict = f"DO UPDATE SET {', '.join(f'{k} = excluded.{k}' for k in row)} WHERE {replace_where}"
        columns, values = ", ".join(row), ", ".join(f":{k}" for k in row)
        sql = f"INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT {conflict}"  # noqa: S608
        return self.db.execute(sql, row).rowcount == 1


Write = Callable[[_Tx], object]


class SqliteUnitOfWork(BufferedUnitOfWork[Write, SqliteStore]):
    """Holds a pooled connection only while a statement or the commit runs, so none is ever leaked."""

    def _apply(self, writes: list[Write], posted: list[Transfer]) -> datetime:
        with self.store.transaction() as db:
            heads = [(r.user_id, r.account_id) for t in posted for r in (t.source, t.to)]
            previous = [db.execute(LAST_ENTRY_AT, head).fetchone() for head in heads]
            tx = _Tx(db, commit_stamp(self.clock.now(), *(datetime.fromisoformat(p[0]) for p in previous if p)), posted)
            for write in writes:
                write(tx)
        return tx.stamp


class _Repo:
    def __init__(self, uow: SqliteUnitOfWork) -> None:
        self._uow = uow
        self._read = uow.store.read

    def _get(self, kind: type[T], *key: str) -> T | None:
        return codec.get(self._read, kind, key)


class _Accounts(_Repo):
    def list_for_user(self, user_id: str) -> list[Account]:
        rows = self._read("SELECT * FROM accounts WHERE user_id = ? ORDER BY account_id", (user_id,))
        return [codec.value(Account, row) for row in rows]

    def get(self, user_id: str, account_id: str) -> Account | None:
        return self._get(Account, user_id, account_id)

    def get_many(self, refs: Sequence[AccountRef]) -> list[Account]:
        return [a for a in (self.get(r.user_id, r.account_id) for r in refs) if a is not None]

    def open(self, account: NewAccount) -> None:
        def write(tx: _Tx) -> None:
            if tx.insert("accounts", codec.row(account.account)):
                tx.insert("entries", codec.row(account.opening_entry()))

        self._uow.buffer(write)

    def require(self, user_id: str, account_id: str, minimum: Money) -> None:
        # A guard with nothing to write: the row, read inside the transaction, is checked.
        self._uow.buffer(lambda tx: rules.enforce(rules.refuse_funds(tx.get(Account, (user_id, account_id)), minimum)))


class _Beneficiaries(_Repo):
    def list_for_user(self, user_id: str) -> list[Beneficiary]:
        rows = self._read("SELECT * FROM beneficiaries WHERE user_id = ? ORDER BY beneficiary_id", (user_id,))
        return [codec.value(Beneficiary, row) for row in rows]

    def get(self, user_id: str, beneficiary_id: str) -> Beneficiary | None:
        return self._get(Beneficiary, user_id, beneficiary_id)

    def add(self, beneficiary: Beneficiary) -> None:
        self._uow.buffer(lambda tx: tx.insert("beneficiaries", codec.row(beneficiary), replace_where="TRUE"))


class _Ledger(_Repo):
    def post(self, transfer: Transfer, *, resolve_destination: bool = False) -> None:
        amount = transfer.amount

        def write(tx: _Tx) -> None:
            after = []
            for ref, delta, funded in ((transfer.source, -amount.minor, amount.minor), (transfer.to, amount.minor, 0)):
                moved = tx.db.execute(MOVE, (delta, ref.user_id, ref.account_id, amount.currency, funded)).fetchone()
                if moved is None:
                    accounts = [tx.get(Account, (r.user_id, r.account_id)) for r in (transfer.source, transfer.to)]
                    to = (transfer.to.user_id, transfer.to.account_id)
                    saved = tx.get(Beneficiary, to) if resolve_destination else None
                    refusal = rules.refuse_transfer(
                        transfer, *accounts, saved=saved, resolve_destination=resolve_destination
                    )
                    raise rules.failed(refusal)
                after.append(Money(int(moved[0]), amount.currency))
            stamped = transfer.stamped(tx.stamp)
            if not tx.insert("transfers", codec.row(stamped)):
                stored = tx.get(Transfer, (transfer.user_id, transfer.transfer_id))
                raise rules.failed(rules.refuse_new(stored, "transfer"))
            for entry in stamped.entries(*after):
                tx.insert("entries", codec.row(entry))

        self._uow.buffer(write, posts=transfer)

    def get_transfer(self, user_id: str, transfer_id: str) -> Transfer | None:
        return self._get(Transfer, user_id, transfer_id)

    def history(self, user_id: str, account_id: str, limit: int, position: str | None) -> Page[LedgerEntry]:
        if self._get(Account, user_id, account_id) is None:
            raise AccountNotFound(field="account_id")
        # The position is the sequence number of the last entry shown: later entries never shift it.
        before = 2**63 - 1 if position is None else _sequence(position)
        page = Page.cut(self._read(HISTORY, (user_id, account_id, before, limit + 1)), limit, lambda r: str(r[0]))
        return Page([codec.value(LedgerEntry, row) for row in page.items], page.next_position)


class _DailyLimits(_Repo):
    def add(self, user_id: str, day: str, amount: Money, limit: Money) -> None:
        def write(tx: _Tx) -> None:
            added = tx.db.execute(
                "INSERT INTO daily_totals (user_id, day, currency, total_minor) SELECT ?1, ?2, ?3, ?4 WHERE ?4 <= ?5"
                " ON CONFLICT DO UPDATE SET total_minor = total_minor + excluded.total_minor"
                " WHERE total_minor + excluded.total_minor <= ?5",
                (user_id, day, amount.currency, amount.minor, limit.minor),
            )
            if added.rowcount != 1:
                total = tx.get(Money, (user_id, day, amount.currency))
                raise rules.failed(rules.refuse_daily_total(total, amount, limit))

        self._uow.buffer(write)

    def total(self, user_id: str, day: str, currency: str) -> Money:
        return self._get(Money, user_id, day, currency) or Money(0, currency)


class _Idempotency(_Repo):
    def claim(self, record: IdempotencyRecord) -> None:
        def write(tx: _Tx) -> None:
            # Insert, or take over an expired record; a live one stays and answers.
            stored = rules.answer_at(record, tx.posted, tx.stamp)
            if not tx.insert("idempotency", codec.row(stored), replace_where="expires_at <= excluded.created_at"):
                existing = tx.get(IdempotencyRecord, (record.user_id, record.key))
                raise rules.failed(rules.refuse_claim(existing, record))

        self._uow.buffer(write, first=True)

    def get(self, user_id: str, key: str) -> IdempotencyRecord | None:
        return self._get(IdempotencyRecord, user_id, key)


class _Products(_Repo, StockChanges):
    def get(self, product_id: str) -> Product | None:
        return self._get(Product, product_id)

    def search(self, query: str | None, category: str | None, limit: int, position: str | None) -> Page[Product]:
        rows = self._read("SELECT * FROM products WHERE product_id > ? ORDER BY product_id", (position or "",))
        # Matching folds case and accents in Python, exactly as the domain defines it.
        matches = [p for p in (codec.value(Product, row) for row in rows) if p.matches(query, category)]
        return Page.cut(matches, limit, lambda p: p.product_id)

    def add(self, product: Product) -> None:
        self._uow.buffer(lambda tx: tx.insert("products", codec.row(product)))

    def _change(self, product_id: str, change: rules.StockChange, quantity: int) -> None:
        def write(tx: _Tx) -> None:
            set_sql, where = STOCK[change]
            sql = f"UPDATE products SET {set_sql} WHERE product_id = :id AND {where}"  # noqa: S608
            if tx.db.execute(sql, {"id": product_id, "q": quantity}).rowcount != 1:
                raise rules.failed(rules.refuse_stock(tx.get(Product, (product_id,)), change, quantity))

        self._uow.buffer(write)


class _Orders(_Repo):
    def get(self, user_id: str, order_id: str) -> Order | None:
        return self._get(Order, user_id, order_id)

    def list_for_user(self, user_id: str, limit: int, position: str | None) -> Page[Order]:
        rows = self._read(
            "SELECT * FROM orders WHERE user_id = ?1 AND (?2 IS NULL OR order_id < ?2) ORDER BY order_id DESC LIMIT ?3",
            (user_id, position, limit + 1),
        )
        return Page.cut([codec.value(Order, row) for row in rows], limit, lambda o: o.order_id)

    def list_pending_before(self, cutoff: datetime, limit: int) -> list[Order]:
        rows = self._read(
            "SELECT * FROM orders WHERE status = 'PENDING' AND sweep_from < ? ORDER BY sweep_from, order_id LIMIT ?",
            (utc_text(cutoff), limit),
        )
        return [codec.value(Order, row) for row in rows]

    def add(self, order: Order) -> None:
        def write(tx: _Tx) -> None:
            if not tx.insert("orders", codec.order_row(order)):
                raise rules.failed(rules.refuse_new(tx.get(Order, (order.user_id, order.order_id)), "order"))

        self._uow.buffer(write)

    def update(self, order: Order) -> None:
        def write(tx: _Tx) -> None:
            row = codec.order_row(order)
            changed = tx.db.execute(
                f"UPDATE orders SET {', '.join(f'{k} = :{k}' for k in row)}"  # noqa: S608
                " WHERE user_id = :user_id AND order_id = :order_id AND version = :version - 1",
                row,
            )
            if changed.rowcount != 1:
                raise rules.failed(rules.refuse_version(tx.get(Order, (order.user_id, order.order_id)), order))

        self._uow.buffer(write)


class _Inbox(_Repo):
    def mark_processed(
        self, consumer: str, event_id: str, outcome: str = PROCESSED, at: datetime | None = None
    ) -> None:
        def write(tx: _Tx) -> None:
            if not tx.insert("inbox", codec.row(InboxRecord(consumer, event_id, outcome, at or tx.stamp))):
                raise rules.failed(rules.refuse_processed(True, consumer, event_id))

        self._uow.buffer(write, first=True)


class _Outbox(_Repo):
    def add(self, event: DomainEvent) -> None:
        # An event id already stored is kept as it was.
        self._uow.buffer(lambda tx: tx.insert("outbox", codec.row(event)))


SqliteUnitOfWork.repositories = Repositories(
    _Accounts, _Beneficiaries, _Ledger, _DailyLimits, _Idempotency, _Products, _Orders, _Inbox, _Outbox
)


def _sequence(position: str) -> int:
    """A history position back to the entry sequence number it names."""
    if not (position.isascii() and position.isdigit() and len(position) <= 18 and int(position) > 0):
        raise InvalidCursor(field="cursor")
    return int(position)
