"""The SQLite store and its unit of work: the embedded default for local runs.

One file in WAL mode. Reads go straight to the database. Writes are buffered
and applied at ``commit()`` in one ``BEGIN IMMEDIATE`` transaction. Each write
is the atomic part of a rule only: a conditional statement whose row count
(or ``RETURNING`` row) tells whether its ``WHERE`` held. When one fails, the
write reads the rows it touched, inside the same transaction, and raises what
the domain's rules (:mod:`centli.domain.rules`) make of them; the whole
transaction rolls back.

Connections come from a small pool: a read or a commit takes one and gives it
back at once, so any number of threads may work at once.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from centli.adapters.buffered import BufferedUnitOfWork, Repositories
from centli.adapters.sqlite.schema import migrate
from centli.adapters.system import SystemClock
from centli.domain import rules
from centli.domain.audit import AccountLedger, AuditSnapshot, InboxRecord, OutboxRecord
from centli.domain.catalog import Product
from centli.domain.errors import AccountNotFound, DependencyUnavailable, InvalidCursor
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
Row = sqlite3.Row

#: How long a writer waits for the file's write lock before giving up (503), in seconds.
BUSY_TIMEOUT = 10.0
#: Idle connections kept for reuse.
POOL_SIZE = 8

#: Entries in the table's column order, which :func:`_entry` unpacks by position (the history's hot path).
_ENTRY = "SELECT * FROM entries"
ALL_ENTRIES = f"{_ENTRY} ORDER BY seq"
HISTORY = f"{_ENTRY} WHERE user_id = ? AND account_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
LAST_ENTRY_AT = "SELECT timestamp FROM entries WHERE user_id = ? AND account_id = ? ORDER BY seq DESC LIMIT 1"
ACCOUNT = "SELECT * FROM accounts WHERE user_id = ? AND account_id = ?"
BENEFICIARY = "SELECT * FROM beneficiaries WHERE user_id = ? AND beneficiary_id = ?"
DAILY_TOTAL = "SELECT total_minor, currency FROM daily_totals WHERE user_id = ? AND day = ? AND currency = ?"
RECORD = "SELECT * FROM idempotency WHERE user_id = ? AND key = ?"
PRODUCT = "SELECT * FROM products WHERE product_id = ?"
ORDER = "SELECT * FROM orders WHERE user_id = ? AND order_id = ?"
TRANSFER = "SELECT * FROM transfers WHERE user_id = ? AND transfer_id = ?"
#: Each stock change: what it sets, and the WHERE that lets it.
STOCK: dict[rules.StockChange, tuple[str, str]] = {
    "reserve": ("reserved = reserved + :q", "stock - reserved >= :q"),
    "release": ("reserved = reserved - :q", "reserved >= :q"),
    "commit": ("stock = stock - :q, reserved = reserved - :q", "reserved >= :q AND stock >= :q"),
}


def utc_text(moment: datetime) -> str:
    """A timestamp as fixed-width UTC ISO text, so text order is time order."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _one(db: sqlite3.Connection, sql: str, params: Sequence[Any], decode: Callable[[Row], T]) -> T | None:
    row = db.execute(sql, params).fetchone()
    return None if row is None else decode(row)


class SqliteStore:
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
        if synchronous not in {"FULL", "NORMAL"}:
            raise ValueError("synchronous must be FULL or NORMAL")
        self._busy_timeout_ms = int(busy_timeout * 1000)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(mode=0o600)  # a new file is the owner's only; SQLite gives -wal and -shm the same mode
        self.faults: FaultPoints = faults or NoFaults()
        self.clock: Clock = clock or SystemClock()
        self._synchronous = synchronous
        self._idle: list[sqlite3.Connection] = []
        self._open: set[sqlite3.Connection] = set()
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closed = False
        with self.connection() as connection:
            self._use_wal(connection)
            migrate(connection)

    # connections ----------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path, timeout=self._busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
        )
        connection.row_factory = Row
        connection.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute(f"PRAGMA synchronous = {self._synchronous}")
        return connection

    def _use_wal(self, connection: sqlite3.Connection) -> None:
        """Switch the file to WAL (persistent, so once per open is enough).

        The switch does not wait in the busy handler, so openers racing on a new file retry here.
        """
        deadline = time.monotonic() + self._busy_timeout_ms / 1000
        while True:
            try:
                mode = str(connection.execute("PRAGMA journal_mode = WAL").fetchone()[0])
                break
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.005)
        if mode.lower() != "wal":
            raise RuntimeError(f"SQLite could not use WAL for {self.path} (journal mode {mode})")

    def acquire(self) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise RuntimeError("the SQLite store is closed")
            if self._idle:
                return self._idle.pop()
        connection = self._connect()
        with self._lock:
            self._open.add(connection)
        return connection

    def release(self, connection: sqlite3.Connection) -> None:
        try:
            if connection.in_transaction:  # only after a crash mid-commit; never reuse it half-open
                connection.execute("ROLLBACK")
        except sqlite3.ProgrammingError:  # close() closed it meanwhile
            return
        with self._lock:
            if not self._closed and len(self._idle) < POOL_SIZE:
                self._idle.append(connection)
                return
            self._open.discard(connection)
        connection.close()

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        connection = self.acquire()
        try:
            yield connection
        finally:
            self.release(connection)

    @contextmanager
    def writer(self) -> Iterator[None]:
        """This process's writers queue here rather than in SQLite's busy handler, which polls with sleeps.

        Other processes still meet at the file's lock, under ``busy_timeout``.
        """
        if not self._write_lock.acquire(timeout=self._busy_timeout_ms / 1000):
            raise DependencyUnavailable()
        try:
            yield
        finally:
            self._write_lock.release()

    def close(self) -> None:
        """Close every connection; units of work still running fail on their next statement."""
        with self._lock:
            self._closed = True
            connections = list(self._open)
            self._open.clear()
            self._idle.clear()
        for connection in connections:
            connection.close()

    # the ports the store serves itself ---------------------------------------------
    def unit_of_work(self) -> SqliteUnitOfWork:
        return SqliteUnitOfWork(self)

    def load(self, data: BankData, progress: Progress | None = None) -> LoadReport:
        return load_through_unit_of_work(self.unit_of_work, data, progress)

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        connection = self.acquire()  # as ``with self.connection()``, without a generator per read
        try:
            return connection.execute(sql, params).fetchall()
        finally:
            self.release(connection)

    def pending(self, limit: int) -> list[DomainEvent]:
        """Committed events not yet published, oldest first."""
        rows = self.read("SELECT * FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT ?", (limit,))
        return [_event(row) for row in rows]

    def mark_published(self, event_ids: Sequence[str]) -> None:
        if not event_ids:
            return
        now = utc_text(self.clock.now())
        with self.connection() as connection, self.writer():
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.executemany(
                    "UPDATE outbox SET published_at = ? WHERE event_id = ? AND published_at IS NULL",
                    [(now, event_id) for event_id in event_ids],
                )
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise

    def events_naming(self, text: str) -> list[OutboxRecord]:
        """A scan of the outbox (an operator's lookup, not a hot path); the payload match is textual."""
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self.read(
            "SELECT * FROM outbox WHERE event_id = ? OR correlation_id = ? OR payload LIKE ? ESCAPE '\\' ORDER BY seq",
            (text, text, like),
        )
        return [OutboxRecord(_event(r), r["published_at"] is not None) for r in rows]

    def handled(self, consumer: str, event_id: str) -> InboxRecord | None:
        rows = self.read("SELECT * FROM inbox WHERE consumer = ? AND event_id = ?", (consumer, event_id))
        return _inbox_record(rows[0]) if rows else None

    def audit_snapshot(self, progress: ReadProgress | None = None) -> AuditSnapshot:
        """Every table in one read transaction: a consistent snapshot, while writers go on (WAL)."""

        def rows(name: str, decode: Callable[[Row], T], order: str = "") -> list[T]:
            found = []
            for count, row in enumerate(connection.execute(f"SELECT * FROM {name} {order}"), start=1):  # noqa: S608
                if progress is not None and count % 1000 == 0:
                    progress(name, count)
                found.append(decode(row))
            return found

        with self.connection() as connection:
            connection.execute("BEGIN")
            try:
                entries: dict[tuple[str, str], list[LedgerEntry]] = {}
                for entry in rows("entries", _entry, "ORDER BY seq"):
                    entries.setdefault((entry.user_id, entry.account_id), []).append(entry)
                return AuditSnapshot(
                    ledgers=[
                        AccountLedger(a, entries.get((a.user_id, a.account_id), []))
                        for a in rows("accounts", _account, "ORDER BY user_id, account_id")
                    ],
                    transfers=rows("transfers", _transfer),
                    idempotency=rows("idempotency", _record),
                    products=rows("products", _product),
                    orders=rows("orders", _order),
                    outbox=rows(
                        "outbox", lambda r: OutboxRecord(_event(r), r["published_at"] is not None), "ORDER BY seq"
                    ),
                    inbox=rows("inbox", _inbox_record),
                )
            finally:
                connection.execute("COMMIT")

    def all_entries(self) -> list[LedgerEntry]:
        """Every ledger entry, oldest first (for invariant checks)."""
        return [_entry(row) for row in self.read(ALL_ENTRIES)]


@dataclass(frozen=True, slots=True)
class _Tx:
    """One commit's transaction: its connection, its stamp and the transfers it posts."""

    db: sqlite3.Connection
    stamp: datetime
    posted: list[Transfer]

    def one(self, sql: str, params: Sequence[Any], decode: Callable[[Row], T]) -> T | None:
        return _one(self.db, sql, params, decode)

    def insert(self, table: str, row: dict[str, Any], *, replace_where: str | None = None) -> bool:
        """Insert ``row``; a row with its key stays as it is (False), or is replaced where ``replace_where`` holds."""
        conflict = "DO NOTHING"
        if replace_where is not None:
            conflict = f"DO UPDATE SET {', '.join(f'{k} = excluded.{k}' for k in row)} WHERE {replace_where}"
        columns, values = ", ".join(row), ", ".join(f":{k}" for k in row)
        sql = f"INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT {conflict}"  # noqa: S608
        return self.db.execute(sql, row).rowcount == 1


Write = Callable[[_Tx], object]


class SqliteUnitOfWork(BufferedUnitOfWork[Write]):
    """Holds a pooled connection only while a statement or the commit runs, so none is ever leaked."""

    def __init__(self, store: SqliteStore) -> None:
        super().__init__(store.clock)
        self.store = store

    def one(self, sql: str, params: Sequence[Any], decode: Callable[[Row], T]) -> T | None:
        rows = self.store.read(sql, params)
        return decode(rows[0]) if rows else None

    def _fault_points(self) -> FaultPoints:
        return self.store.faults

    def _apply(self, writes: list[Write], posted: list[Transfer]) -> datetime:
        with self.store.connection() as db, self.store.writer():
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as busy:
                raise DependencyUnavailable() from busy
            try:
                heads = [(r.user_id, r.account_id) for t in posted for r in (t.source, t.to)]
                previous = (_one(db, LAST_ENTRY_AT, head, lambda r: datetime.fromisoformat(r[0])) for head in heads)
                tx = _Tx(db, commit_stamp(self.clock.now(), *previous), posted)
                for write in writes:
                    write(tx)
                db.execute("COMMIT")
                return tx.stamp
            except BaseException as failure:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                if isinstance(failure, sqlite3.OperationalError):
                    raise DependencyUnavailable() from failure
                raise


class _Repo:
    def __init__(self, uow: SqliteUnitOfWork) -> None:
        self._uow = uow
        self._read = uow.store.read


class _Accounts(_Repo):
    def list_for_user(self, user_id: str) -> list[Account]:
        return [
            _account(r) for r in self._read("SELECT * FROM accounts WHERE user_id = ? ORDER BY account_id", (user_id,))
        ]

    def get(self, user_id: str, account_id: str) -> Account | None:
        return self._uow.one(ACCOUNT, (user_id, account_id), _account)

    def get_many(self, refs: Sequence[AccountRef]) -> list[Account]:
        return [a for a in (self.get(r.user_id, r.account_id) for r in refs) if a is not None]

    def open(self, account: NewAccount) -> None:
        def write(tx: _Tx) -> None:
            if tx.insert("accounts", _account_row(account.account)):
                tx.insert("entries", _entry_row(account.opening_entry()))

        self._uow.buffer(write)

    def require(self, user_id: str, account_id: str, minimum: Money) -> None:
        # A guard with nothing to write: read the row inside the transaction and check it.
        self._uow.buffer(
            lambda tx: rules.enforce(rules.refuse_funds(tx.one(ACCOUNT, (user_id, account_id), _account), minimum))
        )


class _Beneficiaries(_Repo):
    def list_for_user(self, user_id: str) -> list[Beneficiary]:
        rows = self._read("SELECT * FROM beneficiaries WHERE user_id = ? ORDER BY beneficiary_id", (user_id,))
        return [_beneficiary(row) for row in rows]

    def get(self, user_id: str, beneficiary_id: str) -> Beneficiary | None:
        return self._uow.one(BENEFICIARY, (user_id, beneficiary_id), _beneficiary)

    def add(self, beneficiary: Beneficiary) -> None:
        self._uow.buffer(lambda tx: tx.insert("beneficiaries", asdict(beneficiary), replace_where="TRUE"))


class _Ledger(_Repo):
    def post(self, transfer: Transfer, *, resolve_destination: bool = False) -> None:
        amount = transfer.amount

        def write(tx: _Tx) -> None:
            after = []
            for ref, delta, funded in ((transfer.source, -amount.minor, amount.minor), (transfer.to, amount.minor, 0)):
                row = tx.db.execute(
                    "UPDATE accounts SET balance_minor = balance_minor + :delta WHERE user_id = :user"
                    " AND account_id = :account AND currency = :currency AND balance_minor >= :funded"
                    " RETURNING balance_minor",
                    {
                        "delta": delta,
                        "user": ref.user_id,
                        "account": ref.account_id,
                        "currency": amount.currency,
                        "funded": funded,
                    },
                ).fetchone()
                if row is None:
                    raise rules.failed(self._refusal(tx, transfer, resolve_destination))
                after.append(Money(int(row[0]), amount.currency))
            stamped = transfer.stamped(tx.stamp)
            if not tx.insert("transfers", _transfer_row(stamped)):
                raise rules.failed(
                    rules.refuse_new(tx.one(TRANSFER, (transfer.user_id, transfer.transfer_id), _transfer), "transfer")
                )
            for entry in stamped.entries(*after):
                tx.insert("entries", _entry_row(entry))

        self._uow.buffer(write, posts=transfer)

    @staticmethod
    def _refusal(tx: _Tx, transfer: Transfer, resolve_destination: bool) -> Exception | None:
        source, target = (tx.one(ACCOUNT, (r.user_id, r.account_id), _account) for r in (transfer.source, transfer.to))
        saved = (
            tx.one(BENEFICIARY, (transfer.to.user_id, transfer.to.account_id), _beneficiary)
            if resolve_destination
            else None
        )
        return rules.refuse_transfer(transfer, source, target, saved=saved, resolve_destination=resolve_destination)

    def get_transfer(self, user_id: str, transfer_id: str) -> Transfer | None:
        return self._uow.one(TRANSFER, (user_id, transfer_id), _transfer)

    def history(self, user_id: str, account_id: str, limit: int, position: str | None) -> Page[LedgerEntry]:
        if self._uow.one(ACCOUNT, (user_id, account_id), _account) is None:
            raise AccountNotFound(field="account_id")
        # The position is the sequence number of the last entry shown: later entries never shift it.
        before = 2**63 - 1 if position is None else _sequence(position)
        page = Page.cut(self._read(HISTORY, (user_id, account_id, before, limit + 1)), limit, lambda r: str(r[0]))
        return Page([_entry(row) for row in page.items], page.next_position)


class _DailyLimits(_Repo):
    def add(self, user_id: str, day: str, amount: Money, limit: Money) -> None:
        def write(tx: _Tx) -> None:
            added = tx.db.execute(
                "INSERT INTO daily_totals (user_id, day, currency, total_minor)"
                " SELECT :user, :day, :currency, :amount WHERE :amount <= :limit"
                " ON CONFLICT DO UPDATE SET total_minor = total_minor + excluded.total_minor"
                " WHERE total_minor + excluded.total_minor <= :limit",
                {
                    "user": user_id,
                    "day": day,
                    "currency": amount.currency,
                    "amount": amount.minor,
                    "limit": limit.minor,
                },
            )
            if added.rowcount != 1:
                total = tx.one(DAILY_TOTAL, (user_id, day, amount.currency), _money)
                raise rules.failed(rules.refuse_daily_total(total, amount, limit))

        self._uow.buffer(write)

    def total(self, user_id: str, day: str, currency: str) -> Money:
        return self._uow.one(DAILY_TOTAL, (user_id, day, currency), _money) or Money(0, currency)


class _Idempotency(_Repo):
    def claim(self, record: IdempotencyRecord) -> None:
        def write(tx: _Tx) -> None:
            # Insert, or take over an expired record; a live one stays and answers.
            stored = rules.answer_at(record, tx.posted, tx.stamp)
            if not tx.insert("idempotency", _record_row(stored), replace_where="expires_at <= excluded.created_at"):
                raise rules.failed(rules.refuse_claim(tx.one(RECORD, (record.user_id, record.key), _record), record))

        self._uow.buffer(write, first=True)

    def get(self, user_id: str, key: str) -> IdempotencyRecord | None:
        return self._uow.one(RECORD, (user_id, key), _record)


class _Products(_Repo):
    def get(self, product_id: str) -> Product | None:
        return self._uow.one(PRODUCT, (product_id,), _product)

    def search(self, query: str | None, category: str | None, limit: int, position: str | None) -> Page[Product]:
        rows = self._read("SELECT * FROM products WHERE product_id > ? ORDER BY product_id", (position or "",))
        # Matching folds case and accents in Python, exactly as the domain defines it.
        matches = [p for p in map(_product, rows) if p.matches(query, category)]
        return Page.cut(matches, limit, lambda p: p.product_id)

    def add(self, product: Product) -> None:
        self._uow.buffer(lambda tx: tx.insert("products", _product_row(product)))

    def _change(self, product_id: str, change: rules.StockChange, quantity: int) -> None:
        def write(tx: _Tx) -> None:
            set_sql, where = STOCK[change]
            sql = f"UPDATE products SET {set_sql} WHERE product_id = :id AND {where}"  # noqa: S608
            if tx.db.execute(sql, {"id": product_id, "q": quantity}).rowcount != 1:
                raise rules.failed(rules.refuse_stock(tx.one(PRODUCT, (product_id,), _product), change, quantity))

        self._uow.buffer(write)

    def reserve(self, product_id: str, quantity: int) -> None:
        self._change(product_id, "reserve", quantity)

    def release(self, product_id: str, quantity: int) -> None:
        self._change(product_id, "release", quantity)

    def commit_reserved(self, product_id: str, quantity: int) -> None:
        self._change(product_id, "commit", quantity)


class _Orders(_Repo):
    def get(self, user_id: str, order_id: str) -> Order | None:
        return self._uow.one(ORDER, (user_id, order_id), _order)

    def list_for_user(self, user_id: str, limit: int, position: str | None) -> Page[Order]:
        rows = self._read(
            "SELECT * FROM orders WHERE user_id = ? AND (? IS NULL OR order_id < ?) ORDER BY order_id DESC LIMIT ?",
            (user_id, position, position, limit + 1),
        )
        return Page.cut([_order(row) for row in rows], limit, lambda o: o.order_id)

    def list_pending_before(self, cutoff: datetime, limit: int) -> list[Order]:
        rows = self._read(
            "SELECT * FROM orders WHERE status = 'PENDING' AND sweep_from < ? ORDER BY sweep_from, order_id LIMIT ?",
            (utc_text(cutoff), limit),
        )
        return [_order(row) for row in rows]

    def add(self, order: Order) -> None:
        def write(tx: _Tx) -> None:
            if not tx.insert("orders", _order_row(order)):
                raise rules.failed(rules.refuse_new(tx.one(ORDER, (order.user_id, order.order_id), _order), "order"))

        self._uow.buffer(write)

    def update(self, order: Order) -> None:
        def write(tx: _Tx) -> None:
            data = _order_row(order)
            changed = tx.db.execute(
                f"UPDATE orders SET {', '.join(f'{k} = :{k}' for k in data)}"  # noqa: S608
                " WHERE user_id = :user_id AND order_id = :order_id AND version = :version - 1",
                data,
            )
            if changed.rowcount != 1:
                raise rules.failed(rules.refuse_version(tx.one(ORDER, (order.user_id, order.order_id), _order), order))

        self._uow.buffer(write)


class _Inbox(_Repo):
    def mark_processed(
        self, consumer: str, event_id: str, outcome: str = PROCESSED, at: datetime | None = None
    ) -> None:
        def write(tx: _Tx) -> None:
            row = {
                "consumer": consumer,
                "event_id": event_id,
                "processed_at": utc_text(at or tx.stamp),
                "outcome": outcome,
            }
            if not tx.insert("inbox", row):
                raise rules.failed(rules.refuse_processed(True, consumer, event_id))

        self._uow.buffer(write, first=True)


class _Outbox(_Repo):
    def add(self, event: DomainEvent) -> None:
        self._uow.buffer(lambda tx: tx.insert("outbox", _event_row(event)))


SqliteUnitOfWork.repositories = Repositories(
    _Accounts, _Beneficiaries, _Ledger, _DailyLimits, _Idempotency, _Products, _Orders, _Inbox, _Outbox
)


def _sequence(position: str) -> int:
    """A history position back to the entry sequence number it names."""
    if not (position.isascii() and position.isdigit() and len(position) <= 18 and int(position) > 0):
        raise InvalidCursor(field="cursor")
    return int(position)


# rows <-> values ------------------------------------------------------------------------
def _money(row: Row) -> Money:
    return Money(int(row[0]), row[1])


def _account_row(account: Account) -> dict[str, Any]:
    row = {"user_id": account.user_id, "account_id": account.account_id, "alias": account.alias}
    return {**row, "currency": account.currency, "balance_minor": account.balance.minor}


def _account(row: Row) -> Account:
    return Account(row["account_id"], row["user_id"], row["alias"], Money(int(row["balance_minor"]), row["currency"]))


def _beneficiary(row: Row) -> Beneficiary:
    return Beneficiary(**dict(row))


def _transfer_row(transfer: Transfer) -> dict[str, Any]:
    return {**transfer.to_dict(), "created_at": utc_text(transfer.created_at)}


def _transfer(row: Row) -> Transfer:
    return Transfer.from_dict(dict(row))


def _entry_row(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "entry_id": entry.entry_id,
        "user_id": entry.user_id,
        "account_id": entry.account_id,
        "transfer_id": entry.transfer_id,
        "direction": entry.direction,
        "amount_minor": entry.amount.minor,
        "currency": entry.amount.currency,
        "description": entry.description,
        "timestamp": utc_text(entry.timestamp),
        "balance_after_minor": entry.balance_after.minor,
    }


def _entry(row: Row) -> LedgerEntry:
    _, entry_id, user_id, account_id, transfer_id, direction, amount, currency, description, at, after = row
    return LedgerEntry(
        entry_id=entry_id,
        account_id=account_id,
        user_id=user_id,
        transfer_id=transfer_id,
        direction="DEBIT" if direction == "DEBIT" else "CREDIT",
        amount=Money(int(amount), currency),
        description=description,
        timestamp=datetime.fromisoformat(at),
        balance_after=Money(int(after), currency),
    )


def _record_row(record: IdempotencyRecord) -> dict[str, Any]:
    return {
        **asdict(record),
        "result": json.dumps(record.result, separators=(",", ":"), ensure_ascii=False),
        "created_at": utc_text(record.created_at),
        "expires_at": utc_text(record.expires_at),
    }


def _record(row: Row) -> IdempotencyRecord:
    data = dict(row)
    times = {k: datetime.fromisoformat(data[k]) for k in ("created_at", "expires_at")}
    return IdempotencyRecord(**{**data, **times, "result": json.loads(data["result"])})


def _product_row(product: Product) -> dict[str, Any]:
    return {
        "product_id": product.product_id,
        "name": product.name,
        "category": product.category,
        "price_minor": product.price.minor,
        "currency": product.price.currency,
        "stock": product.stock,
        "reserved": product.reserved,
        "seller_user_id": product.seller.user_id,
        "seller_account_id": product.seller.account_id,
    }


def _product(row: Row) -> Product:
    return Product(
        product_id=row["product_id"],
        name=row["name"],
        category=row["category"],
        price=Money(int(row["price_minor"]), row["currency"]),
        stock=int(row["stock"]),
        reserved=int(row["reserved"]),
        seller=AccountRef(row["seller_user_id"], row["seller_account_id"]),
    )


def _order_row(order: Order) -> dict[str, Any]:
    data = order.to_dict()
    data["created_at"] = utc_text(order.created_at)
    data["updated_at"] = utc_text(order.updated_at)
    data["sweep_from"] = utc_text(order.sweep_time)  # always set: the sweeper's index orders by it
    return data


def _order(row: Row) -> Order:
    return Order.from_dict(dict(row))


def _inbox_record(row: Row) -> InboxRecord:
    at = row["processed_at"]
    return InboxRecord(
        row["consumer"], row["event_id"], row["outcome"], None if at is None else datetime.fromisoformat(at)
    )


def _event_row(event: DomainEvent) -> dict[str, Any]:
    return {
        **asdict(event),
        "occurred_at": utc_text(event.occurred_at),
        "payload": json.dumps(event.payload, separators=(",", ":"), ensure_ascii=False),
    }


def _event(row: Row) -> DomainEvent:
    return DomainEvent(
        event_id=row["event_id"],
        type=row["type"],
        occurred_at=datetime.fromisoformat(row["occurred_at"]),
        correlation_id=row["correlation_id"],
        causation_id=row["causation_id"],
        user_id=row["user_id"],
        payload=json.loads(row["payload"]),
    )
