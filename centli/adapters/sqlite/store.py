"""The SQLite store and its unit of work: the embedded default for local runs.

One file in WAL mode. Reads go straight to the database. Writes are buffered
as guarded operations and applied at ``commit()`` in one ``BEGIN IMMEDIATE``
transaction: every guard is a conditional statement whose row count (or
``RETURNING`` row) tells whether it held; the first that fails raises its
domain error and the whole transaction rolls back.

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
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn

from centli.adapters.buffered import BufferedUnitOfWork
from centli.adapters.sqlite.schema import migrate
from centli.domain.audit import AccountLedger, AuditSnapshot, InboxRecord, OutboxRecord
from centli.domain.catalog import Product
from centli.domain.errors import (
    AccountNotFound,
    ConcurrencyConflict,
    CurrencyMismatch,
    DependencyUnavailable,
    DestinationNotFound,
    InsufficientFunds,
    InvalidCursor,
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
    Direction,
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

#: How long a writer waits for the file's write lock before giving up (503), in seconds.
BUSY_TIMEOUT = 10.0
#: Idle connections kept for reuse.
POOL_SIZE = 8

#: Entry columns in the order :func:`_entry` unpacks them (by position: the history's hot path).
_ENTRY = (
    "SELECT seq, entry_id, account_id, user_id, transfer_id, direction, amount_minor, currency, description,"
    " timestamp, balance_after_minor FROM entries"
)
ALL_ENTRIES = f"{_ENTRY} ORDER BY seq"
HISTORY_NEWEST = f"{_ENTRY} WHERE user_id = ? AND account_id = ? ORDER BY seq DESC LIMIT ?"
HISTORY_BEFORE = f"{_ENTRY} WHERE user_id = ? AND account_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?"


def utc_text(moment: datetime) -> str:
    """A timestamp as fixed-width UTC ISO text, so text order is time order."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


class SqliteStore:
    """Every table in one SQLite file, safe for many threads and processes at once."""

    def __init__(
        self,
        path: str | Path,
        faults: FaultPoints | None = None,
        *,
        synchronous: str = "FULL",
        busy_timeout: float = BUSY_TIMEOUT,
    ) -> None:
        """``synchronous="NORMAL"`` trades durability on power loss (not on a crash) for speed."""
        if synchronous not in {"FULL", "NORMAL"}:
            raise ValueError("synchronous must be FULL or NORMAL")
        self._busy_timeout_ms = int(busy_timeout * 1000)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(mode=0o600)  # a new file is the owner's only; SQLite gives -wal and -shm the same mode
        self.faults: FaultPoints = faults or NoFaults()
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
        connection.row_factory = sqlite3.Row
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

    def pending(self, limit: int) -> list[DomainEvent]:
        """Committed events not yet published, oldest first."""
        with self.connection() as connection:
            rows = connection.execute(
                "SELECT * FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        return [_event(row) for row in rows]

    def mark_published(self, event_ids: Sequence[str]) -> None:
        if not event_ids:
            return
        now = utc_text(datetime.now(UTC))
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
        with self.connection() as connection:
            rows = connection.execute(
                "SELECT * FROM outbox WHERE event_id = ? OR correlation_id = ? OR payload LIKE ? ESCAPE '\\'"
                " ORDER BY seq",
                (text, text, like),
            ).fetchall()
        return [OutboxRecord(_event(r), r["published_at"] is not None) for r in rows]

    def handled(self, consumer: str, event_id: str) -> InboxRecord | None:
        with self.connection() as connection:
            row = connection.execute(
                "SELECT * FROM inbox WHERE consumer = ? AND event_id = ?", (consumer, event_id)
            ).fetchone()
        return None if row is None else _inbox_record(row)

    def audit_snapshot(self, progress: ReadProgress | None = None) -> AuditSnapshot:
        """Every table in one read transaction: a consistent snapshot, while writers go on (WAL)."""
        snapshot = AuditSnapshot()

        def rows(name: str, sql: str) -> Iterator[sqlite3.Row]:
            for count, row in enumerate(connection.execute(sql), start=1):
                if progress is not None and count % 1000 == 0:
                    progress(name, count)
                yield row

        with self.connection() as connection:
            connection.execute("BEGIN")
            try:
                entries: dict[tuple[str, str], list[LedgerEntry]] = {}
                for row in rows("entries", ALL_ENTRIES):
                    entry = _entry(row)
                    entries.setdefault((entry.user_id, entry.account_id), []).append(entry)
                for row in rows("accounts", "SELECT * FROM accounts ORDER BY user_id, account_id"):
                    account = _account(row)
                    snapshot.ledgers.append(
                        AccountLedger(account, entries.get((account.user_id, account.account_id), []))
                    )
                snapshot.transfers = [Transfer.from_dict(dict(r)) for r in rows("transfers", "SELECT * FROM transfers")]
                snapshot.idempotency = [
                    _idempotency_record(r) for r in rows("idempotency", "SELECT * FROM idempotency")
                ]
                snapshot.products = [_product(r) for r in rows("products", "SELECT * FROM products")]
                snapshot.orders = [Order.from_dict(dict(r)) for r in rows("orders", "SELECT * FROM orders")]
                snapshot.outbox = [
                    OutboxRecord(_event(r), r["published_at"] is not None)
                    for r in rows("outbox", "SELECT * FROM outbox ORDER BY seq")
                ]
                snapshot.inbox = [_inbox_record(r) for r in rows("inbox", "SELECT * FROM inbox")]
            finally:
                connection.execute("COMMIT")
        return snapshot

    def all_entries(self) -> list[LedgerEntry]:
        """Every ledger entry, oldest first (for invariant checks)."""
        with self.connection() as connection:
            rows = connection.execute(ALL_ENTRIES).fetchall()
        return [_entry(row) for row in rows]


Operation = Callable[[sqlite3.Connection], None]


class SqliteUnitOfWork(BufferedUnitOfWork[Operation]):
    """Holds a pooled connection only while a statement or the commit runs, so none is ever leaked."""

    def __init__(self, store: SqliteStore) -> None:
        super().__init__()
        self._store = store

    # Built on first use: a read touches one repository, and a unit of work is made per call.
    @cached_property
    def accounts(self) -> _Accounts:
        return _Accounts(self)

    @cached_property
    def beneficiaries(self) -> _Beneficiaries:
        return _Beneficiaries(self)

    @cached_property
    def ledger(self) -> _Ledger:
        return _Ledger(self)

    @cached_property
    def limits(self) -> _DailyLimits:
        return _DailyLimits(self)

    @cached_property
    def idempotency(self) -> _Idempotency:
        return _Idempotency(self)

    @cached_property
    def products(self) -> _Products:
        return _Products(self)

    @cached_property
    def orders(self) -> _Orders:
        return _Orders(self)

    @cached_property
    def inbox(self) -> _Inbox:
        return _Inbox(self)

    @cached_property
    def outbox(self) -> _Outbox:
        return _Outbox(self)

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        connection = self._store.acquire()  # as ``with store.connection()``, without a generator per read
        try:
            return connection.execute(sql, params).fetchall()
        finally:
            self._store.release(connection)

    def _fault_points(self) -> FaultPoints:
        return self._store.faults

    def _apply(self, writes: list[Operation]) -> None:
        with self._store.connection() as connection, self._store.writer():
            try:
                connection.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as busy:
                raise DependencyUnavailable() from busy
            try:
                for write in writes:
                    write(connection)
                connection.execute("COMMIT")
            except BaseException as failure:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                if isinstance(failure, sqlite3.OperationalError):
                    raise DependencyUnavailable() from failure
                raise


class _Repo:
    def __init__(self, uow: SqliteUnitOfWork) -> None:
        self._uow = uow


class _Accounts(_Repo):
    def list_for_user(self, user_id: str) -> list[Account]:
        rows = self._uow.read("SELECT * FROM accounts WHERE user_id = ? ORDER BY account_id", (user_id,))
        return [_account(row) for row in rows]

    def get(self, user_id: str, account_id: str) -> Account | None:
        rows = self._uow.read("SELECT * FROM accounts WHERE user_id = ? AND account_id = ?", (user_id, account_id))
        return _account(rows[0]) if rows else None

    def get_many(self, refs: Sequence[AccountRef]) -> list[Account]:
        found = (self.get(ref.user_id, ref.account_id) for ref in refs)
        return [account for account in found if account is not None]

    def open(self, account: NewAccount) -> None:
        def op(db: sqlite3.Connection) -> None:
            opening = account.opening_balance
            created = db.execute(
                "INSERT INTO accounts (user_id, account_id, alias, currency, balance_minor) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (account.user_id, account.account_id, account.alias, opening.currency, opening.minor),
            )
            if created.rowcount == 1:
                _insert_entry(
                    db,
                    LedgerEntry(
                        entry_id=account.opening_entry_id,
                        account_id=account.account_id,
                        user_id=account.user_id,
                        transfer_id=account.opening_entry_id,
                        direction="CREDIT",
                        amount=opening,
                        description=OPENING_DESCRIPTION,
                        timestamp=account.opened_at,
                        balance_after=opening,
                    ),
                )

        self._uow.buffer(op)

    def require(self, user_id: str, account_id: str, minimum: Money) -> None:
        def op(db: sqlite3.Connection) -> None:
            row = db.execute(
                "SELECT currency, balance_minor FROM accounts WHERE user_id = ? AND account_id = ?",
                (user_id, account_id),
            ).fetchone()
            if row is None:
                raise AccountNotFound(field="account_id")
            if row["currency"] != minimum.currency:
                raise CurrencyMismatch()
            if row["balance_minor"] < minimum.minor:
                raise InsufficientFunds()

        self._uow.buffer(op)


class _Beneficiaries(_Repo):
    def list_for_user(self, user_id: str) -> list[Beneficiary]:
        rows = self._uow.read("SELECT * FROM beneficiaries WHERE user_id = ? ORDER BY beneficiary_id", (user_id,))
        return [_beneficiary(row) for row in rows]

    def get(self, user_id: str, beneficiary_id: str) -> Beneficiary | None:
        rows = self._uow.read(
            "SELECT * FROM beneficiaries WHERE user_id = ? AND beneficiary_id = ?", (user_id, beneficiary_id)
        )
        return _beneficiary(rows[0]) if rows else None

    def add(self, beneficiary: Beneficiary) -> None:
        def op(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO beneficiaries (user_id, beneficiary_id, alias, account_id, account_user_id)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    beneficiary.user_id,
                    beneficiary.beneficiary_id,
                    beneficiary.alias,
                    beneficiary.account_id,
                    beneficiary.account_user_id,
                ),
            )

        self._uow.buffer(op)


class _Ledger(_Repo):
    def post(self, transfer: Transfer, *, resolve_destination: bool = False) -> None:
        def op(db: sqlite3.Connection) -> None:
            amount = transfer.amount
            debited = db.execute(
                "UPDATE accounts SET balance_minor = balance_minor - :amount"
                " WHERE user_id = :user AND account_id = :account AND currency = :currency"
                " AND balance_minor >= :amount RETURNING balance_minor",
                {
                    "amount": amount.minor,
                    "user": transfer.user_id,
                    "account": transfer.from_account_id,
                    "currency": amount.currency,
                },
            ).fetchall()
            if not debited:
                _explain_failed_post(db, transfer, resolve_destination)
            credited = db.execute(
                "UPDATE accounts SET balance_minor = balance_minor + ?"
                " WHERE user_id = ? AND account_id = ? AND currency = ? RETURNING balance_minor",
                (amount.minor, transfer.to.user_id, transfer.to.account_id, amount.currency),
            ).fetchall()
            if not credited:
                _explain_failed_post(db, transfer, resolve_destination)
            data = transfer.to_dict()
            data["created_at"] = utc_text(transfer.created_at)
            added = db.execute(
                f"INSERT INTO transfers ({', '.join(data)}) VALUES ({', '.join(':' + k for k in data)})"  # noqa: S608
                " ON CONFLICT DO NOTHING",
                data,
            )
            if added.rowcount != 1:
                raise ConcurrencyConflict("That transfer already exists.")
            sides: tuple[tuple[str, AccountRef, Direction, int], ...] = (
                (
                    transfer.debit_entry_id,
                    AccountRef(transfer.user_id, transfer.from_account_id),
                    "DEBIT",
                    debited[0][0],
                ),
                (transfer.credit_entry_id, transfer.to, "CREDIT", credited[0][0]),
            )
            for entry_id, ref, direction, balance_after in sides:
                _insert_entry(
                    db,
                    LedgerEntry(
                        entry_id=entry_id,
                        account_id=ref.account_id,
                        user_id=ref.user_id,
                        transfer_id=transfer.transfer_id,
                        direction=direction,
                        amount=amount,
                        description=describe_entry(transfer, direction),
                        timestamp=transfer.created_at,
                        balance_after=Money(int(balance_after), amount.currency),  # computed by this transaction
                    ),
                )

        self._uow.buffer(op)

    def get_transfer(self, user_id: str, transfer_id: str) -> Transfer | None:
        rows = self._uow.read("SELECT * FROM transfers WHERE user_id = ? AND transfer_id = ?", (user_id, transfer_id))
        return Transfer.from_dict(dict(rows[0])) if rows else None

    def history(self, user_id: str, account_id: str, limit: int, position: str | None) -> Page[LedgerEntry]:
        if not self._uow.read("SELECT 1 FROM accounts WHERE user_id = ? AND account_id = ?", (user_id, account_id)):
            raise AccountNotFound(field="account_id")
        # The position is the sequence number of the last entry shown: later entries never shift it.
        if position is None:
            rows = self._uow.read(HISTORY_NEWEST, (user_id, account_id, limit + 1))
        else:
            rows = self._uow.read(HISTORY_BEFORE, (user_id, account_id, _sequence(position), limit + 1))
        page = rows[:limit]
        return Page([_entry(row) for row in page], str(page[-1][0]) if len(rows) > limit else None)


class _DailyLimits(_Repo):
    def add(self, user_id: str, day: str, amount: Money, limit: Money) -> None:
        def op(db: sqlite3.Connection) -> None:
            added = db.execute(
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
                raise LimitExceeded(f"This goes over the daily transfer limit of {limit}.")

        self._uow.buffer(op)

    def total(self, user_id: str, day: str, currency: str) -> Money:
        rows = self._uow.read(
            "SELECT total_minor FROM daily_totals WHERE user_id = ? AND day = ? AND currency = ?",
            (user_id, day, currency),
        )
        return Money(int(rows[0][0]) if rows else 0, currency)


class _Idempotency(_Repo):
    def claim(self, record: IdempotencyRecord) -> None:
        def op(db: sqlite3.Connection) -> None:
            # Insert, or take over an expired record; a live one stays and is reported.
            claimed = db.execute(
                "INSERT INTO idempotency (user_id, key, operation, fingerprint, result, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO UPDATE SET operation = excluded.operation, fingerprint = excluded.fingerprint,"
                " result = excluded.result, created_at = excluded.created_at, expires_at = excluded.expires_at"
                " WHERE idempotency.expires_at <= excluded.created_at",
                (
                    record.user_id,
                    record.key,
                    record.operation,
                    record.fingerprint,
                    json.dumps(record.result, separators=(",", ":"), ensure_ascii=False),
                    utc_text(record.created_at),
                    utc_text(record.expires_at),
                ),
            )
            if claimed.rowcount != 1:
                row = db.execute(
                    "SELECT * FROM idempotency WHERE user_id = ? AND key = ?", (record.user_id, record.key)
                ).fetchone()
                raise DuplicateIdempotencyKey(_idempotency_record(row))

        self._uow.buffer(op, first=True)

    def get(self, user_id: str, key: str) -> IdempotencyRecord | None:
        rows = self._uow.read("SELECT * FROM idempotency WHERE user_id = ? AND key = ?", (user_id, key))
        return _idempotency_record(rows[0]) if rows else None


class _Products(_Repo):
    def get(self, product_id: str) -> Product | None:
        rows = self._uow.read("SELECT * FROM products WHERE product_id = ?", (product_id,))
        return _product(rows[0]) if rows else None

    def search(self, query: str | None, category: str | None, limit: int, position: str | None) -> Page[Product]:
        cursor = self._uow.read(
            "SELECT * FROM products WHERE (? IS NULL OR product_id > ?) ORDER BY product_id", (position, position)
        )
        # Matching folds case and accents in Python, exactly as the domain defines it.
        matches: list[Product] = []
        for row in cursor:
            product = _product(row)
            if product.matches(query, category):
                matches.append(product)
                if len(matches) > limit:
                    break
        items = matches[:limit]
        return Page(items, items[-1].product_id if len(matches) > limit else None)

    def add(self, product: Product) -> None:
        def op(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO products (product_id, name, category, price_minor, currency, stock, reserved,"
                " seller_user_id, seller_account_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (
                    product.product_id,
                    product.name,
                    product.category,
                    product.price.minor,
                    product.price.currency,
                    product.stock,
                    product.reserved,
                    product.seller.user_id,
                    product.seller.account_id,
                ),
            )

        self._uow.buffer(op)

    def _change(self, product_id: str, set_sql: str, guard_sql: str, quantity: int, error: Exception) -> None:
        def op(db: sqlite3.Connection) -> None:
            changed = db.execute(
                f"UPDATE products SET {set_sql} WHERE product_id = :id AND {guard_sql}",  # noqa: S608
                {"id": product_id, "q": quantity},
            )
            if changed.rowcount == 1:
                return
            if db.execute("SELECT 1 FROM products WHERE product_id = ?", (product_id,)).fetchone() is None:
                raise ProductNotFound(field="product_id")
            raise error

        self._uow.buffer(op)

    def reserve(self, product_id: str, quantity: int) -> None:
        self._change(product_id, "reserved = reserved + :q", "stock - reserved >= :q", quantity, OutOfStock())

    def release(self, product_id: str, quantity: int) -> None:
        self._change(
            product_id,
            "reserved = reserved - :q",
            "reserved >= :q",
            quantity,
            ConcurrencyConflict("The reservation is no longer held."),
        )

    def commit_reserved(self, product_id: str, quantity: int) -> None:
        self._change(
            product_id,
            "stock = stock - :q, reserved = reserved - :q",
            "reserved >= :q AND stock >= :q",
            quantity,
            ConcurrencyConflict("The reservation is no longer held."),
        )


class _Orders(_Repo):
    def get(self, user_id: str, order_id: str) -> Order | None:
        rows = self._uow.read("SELECT * FROM orders WHERE user_id = ? AND order_id = ?", (user_id, order_id))
        return Order.from_dict(dict(rows[0])) if rows else None

    def list_for_user(self, user_id: str, limit: int, position: str | None) -> Page[Order]:
        rows = self._uow.read(
            "SELECT * FROM orders WHERE user_id = ? AND (? IS NULL OR order_id < ?) ORDER BY order_id DESC LIMIT ?",
            (user_id, position, position, limit + 1),
        )
        items = [Order.from_dict(dict(row)) for row in rows[:limit]]
        return Page(items, items[-1].order_id if len(rows) > limit else None)

    def list_pending_before(self, cutoff: datetime, limit: int) -> list[Order]:
        rows = self._uow.read(
            "SELECT * FROM orders WHERE status = 'PENDING' AND sweep_from < ? ORDER BY sweep_from, order_id LIMIT ?",
            (utc_text(cutoff), limit),
        )
        return [Order.from_dict(dict(row)) for row in rows]

    def add(self, order: Order) -> None:
        def op(db: sqlite3.Connection) -> None:
            data = _order_row(order)
            added = db.execute(
                f"INSERT INTO orders ({', '.join(data)}) VALUES ({', '.join(':' + k for k in data)})"  # noqa: S608
                " ON CONFLICT DO NOTHING",
                data,
            )
            if added.rowcount != 1:
                raise ConcurrencyConflict("That order already exists.")

        self._uow.buffer(op)

    def update(self, order: Order) -> None:
        def op(db: sqlite3.Connection) -> None:
            data = _order_row(order)
            columns = [k for k in data if k not in {"user_id", "order_id"}]
            updated = db.execute(
                f"UPDATE orders SET {', '.join(f'{k} = :{k}' for k in columns)}"  # noqa: S608
                " WHERE user_id = :user_id AND order_id = :order_id AND version = :version - 1",
                data,
            )
            if updated.rowcount != 1:
                raise ConcurrencyConflict()

        self._uow.buffer(op)


class _Inbox(_Repo):
    def mark_processed(
        self, consumer: str, event_id: str, outcome: str = PROCESSED, at: datetime | None = None
    ) -> None:
        def op(db: sqlite3.Connection) -> None:
            marked = db.execute(
                "INSERT INTO inbox (consumer, event_id, processed_at, outcome) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (consumer, event_id, utc_text(at or datetime.now(UTC)), outcome),
            )
            if marked.rowcount != 1:
                raise EventAlreadyProcessed(consumer, event_id)

        self._uow.buffer(op, first=True)


class _Outbox(_Repo):
    def add(self, event: DomainEvent) -> None:
        def op(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO outbox (event_id, type, occurred_at, correlation_id, causation_id, user_id, payload)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (
                    event.event_id,
                    event.type,
                    utc_text(event.occurred_at),
                    event.correlation_id,
                    event.causation_id,
                    event.user_id,
                    json.dumps(event.payload, separators=(",", ":"), ensure_ascii=False),
                ),
            )

        self._uow.buffer(op)


# guards' diagnosis --------------------------------------------------------------------
def _explain_failed_post(db: sqlite3.Connection, transfer: Transfer, resolve_destination: bool) -> NoReturn:
    """Raise the error a failed debit or credit means, in the memory store's order of checks."""
    find = "SELECT currency, balance_minor FROM accounts WHERE user_id = ? AND account_id = ?"
    source = db.execute(find, (transfer.user_id, transfer.from_account_id)).fetchone()
    if source is None:
        raise AccountNotFound(field="from_account_id")
    target = db.execute(find, (transfer.to.user_id, transfer.to.account_id)).fetchone()
    if target is None and resolve_destination:
        saved = db.execute(
            "SELECT * FROM beneficiaries WHERE user_id = ? AND beneficiary_id = ?",
            (transfer.to.user_id, transfer.to.account_id),
        ).fetchone()
        if saved is not None:
            raise DestinationIsBeneficiary(_beneficiary(saved))
        raise DestinationNotFound(field="destination_id")
    if target is None:
        raise AccountNotFound(field="to_account_id")
    if transfer.amount.currency != source["currency"] or transfer.amount.currency != target["currency"]:
        raise CurrencyMismatch()
    raise InsufficientFunds()


def _sequence(position: str) -> int:
    """A history position back to the entry sequence number it names."""
    if not (position.isascii() and position.isdigit() and len(position) <= 18 and int(position) > 0):
        raise InvalidCursor(field="cursor")
    return int(position)


# rows <-> values ------------------------------------------------------------------------
def _insert_entry(db: sqlite3.Connection, entry: LedgerEntry) -> None:
    db.execute(
        "INSERT INTO entries (entry_id, user_id, account_id, transfer_id, direction, amount_minor, currency,"
        " description, timestamp, balance_after_minor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            entry.entry_id,
            entry.user_id,
            entry.account_id,
            entry.transfer_id,
            entry.direction,
            entry.amount.minor,
            entry.amount.currency,
            entry.description,
            utc_text(entry.timestamp),
            entry.balance_after.minor,
        ),
    )


def _account(row: sqlite3.Row) -> Account:
    return Account(row["account_id"], row["user_id"], row["alias"], Money(int(row["balance_minor"]), row["currency"]))


def _beneficiary(row: sqlite3.Row) -> Beneficiary:
    return Beneficiary(row["beneficiary_id"], row["user_id"], row["alias"], row["account_id"], row["account_user_id"])


def _entry(row: sqlite3.Row) -> LedgerEntry:
    _, entry_id, account_id, user_id, transfer_id, direction, amount, currency, description, at, after = row
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


def _idempotency_record(row: sqlite3.Row) -> IdempotencyRecord:
    return IdempotencyRecord(
        user_id=row["user_id"],
        key=row["key"],
        operation=row["operation"],
        fingerprint=row["fingerprint"],
        result=json.loads(row["result"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        expires_at=datetime.fromisoformat(row["expires_at"]),
    )


def _product(row: sqlite3.Row) -> Product:
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


def _inbox_record(row: sqlite3.Row) -> InboxRecord:
    at = row["processed_at"]
    return InboxRecord(
        row["consumer"], row["event_id"], row["outcome"], None if at is None else datetime.fromisoformat(at)
    )


def _event(row: sqlite3.Row) -> DomainEvent:
    return DomainEvent(
        event_id=row["event_id"],
        type=row["type"],
        occurred_at=datetime.fromisoformat(row["occurred_at"]),
        correlation_id=row["correlation_id"],
        causation_id=row["causation_id"],
        user_id=row["user_id"],
        payload=json.loads(row["payload"]),
    )
