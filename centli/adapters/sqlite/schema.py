"""The SQLite schema as an ordered list of migrations, tracked in ``PRAGMA user_version``.

Migration ``n`` (1-based) takes a file from version ``n - 1`` to ``n``. Never
edit a released migration: append a new one, so an existing file upgrades in
place without losing data.
"""

from __future__ import annotations

import sqlite3
from typing import Final

Migration = tuple[str, ...]

MIGRATIONS: Final[tuple[Migration, ...]] = (
    # 1: the tables. Money is INTEGER minor units plus a currency; times are UTC ISO text.
    (
        """CREATE TABLE accounts (
            user_id TEXT NOT NULL,
            account_id TEXT NOT NULL,
            alias TEXT NOT NULL,
            currency TEXT NOT NULL,
            balance_minor INTEGER NOT NULL CHECK (balance_minor >= 0),
            PRIMARY KEY (user_id, account_id)
        ) WITHOUT ROWID""",
        """CREATE TABLE entries (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            entry_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            account_id TEXT NOT NULL,
            transfer_id TEXT NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('CREDIT', 'DEBIT')),
            amount_minor INTEGER NOT NULL CHECK (amount_minor >= 0),
            currency TEXT NOT NULL,
            description TEXT NOT NULL,
            timestamp TEXT NOT NULL,
            balance_after_minor INTEGER NOT NULL,
            FOREIGN KEY (user_id, account_id) REFERENCES accounts (user_id, account_id),
            UNIQUE (user_id, account_id, entry_id)
        )""",
        "CREATE INDEX entries_by_account ON entries (user_id, account_id, seq)",
        """CREATE TABLE transfers (
            user_id TEXT NOT NULL,
            transfer_id TEXT NOT NULL,
            from_account_id TEXT NOT NULL,
            to_user_id TEXT NOT NULL,
            to_account_id TEXT NOT NULL,
            amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
            currency TEXT NOT NULL,
            concept TEXT NOT NULL,
            created_at TEXT NOT NULL,
            kind TEXT NOT NULL,
            beneficiary_id TEXT,
            status TEXT NOT NULL,
            PRIMARY KEY (user_id, transfer_id),
            FOREIGN KEY (user_id, from_account_id) REFERENCES accounts (user_id, account_id)
        ) WITHOUT ROWID""",
        """CREATE TABLE beneficiaries (
            user_id TEXT NOT NULL,
            beneficiary_id TEXT NOT NULL,
            alias TEXT NOT NULL,
            account_id TEXT NOT NULL,
            account_user_id TEXT NOT NULL,
            PRIMARY KEY (user_id, beneficiary_id)
        ) WITHOUT ROWID""",
        """CREATE TABLE daily_totals (
            user_id TEXT NOT NULL,
            day TEXT NOT NULL,
            currency TEXT NOT NULL,
            total_minor INTEGER NOT NULL,
            PRIMARY KEY (user_id, day, currency)
        ) WITHOUT ROWID""",
        """CREATE TABLE idempotency (
            user_id TEXT NOT NULL,
            key TEXT NOT NULL,
            operation TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            result TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            PRIMARY KEY (user_id, key)
        ) WITHOUT ROWID""",
        """CREATE TABLE products (
            product_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            category TEXT NOT NULL,
            price_minor INTEGER NOT NULL,
            currency TEXT NOT NULL,
            stock INTEGER NOT NULL,
            reserved INTEGER NOT NULL,
            seller_user_id TEXT NOT NULL,
            seller_account_id TEXT NOT NULL,
            CHECK (reserved >= 0 AND stock >= reserved)
        ) WITHOUT ROWID""",
        """CREATE TABLE orders (
            user_id TEXT NOT NULL,
            order_id TEXT NOT NULL,
            product_id TEXT NOT NULL,
            quantity INTEGER NOT NULL,
            total_minor INTEGER NOT NULL,
            currency TEXT NOT NULL,
            account_id TEXT NOT NULL,
            seller_user_id TEXT NOT NULL,
            seller_account_id TEXT NOT NULL,
            status TEXT NOT NULL,
            version INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            correlation_id TEXT NOT NULL,
            cancel_reason TEXT,
            payment_transfer_id TEXT,
            PRIMARY KEY (user_id, order_id)
        ) WITHOUT ROWID""",
        """CREATE TABLE inbox (
            consumer TEXT NOT NULL,
            event_id TEXT NOT NULL,
            PRIMARY KEY (consumer, event_id)
        ) WITHOUT ROWID""",
        """CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            occurred_at TEXT NOT NULL,
            correlation_id TEXT NOT NULL,
            causation_id TEXT,
            user_id TEXT NOT NULL,
            payload TEXT NOT NULL,
            published_at TEXT
        )""",
    ),
    # 2: what the sweeper and the relay scan, indexed; when each inbox event was handled.
    (
        "CREATE INDEX orders_pending ON orders (created_at, order_id) WHERE status = 'PENDING'",
        "CREATE INDEX outbox_pending ON outbox (seq) WHERE published_at IS NULL",
        "ALTER TABLE inbox ADD COLUMN processed_at TEXT",
    ),
    # 3: the sweeper backs off an order that keeps failing: it orders by sweep_from, not created_at.
    (
        "ALTER TABLE orders ADD COLUMN sweep_from TEXT",
        "ALTER TABLE orders ADD COLUMN sweep_attempts INTEGER NOT NULL DEFAULT 0",
        "UPDATE orders SET sweep_from = created_at",
        "DROP INDEX orders_pending",
        "CREATE INDEX orders_sweep ON orders (sweep_from, order_id) WHERE status = 'PENDING'",
    ),
    # 4: what each consumer did with an event (centli trace).
    ("ALTER TABLE inbox ADD COLUMN outcome TEXT",),
)

SCHEMA_VERSION: Final = len(MIGRATIONS)


class SchemaTooNew(RuntimeError):
    """The file was written by newer code than this: refuse rather than guess."""


def schema_version(connection: sqlite3.Connection) -> int:
    row = connection.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(connection: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring the file to ``target`` in one transaction; returns the version it was at.

    The connection must be in autocommit mode (``isolation_level=None``).
    ``BEGIN IMMEDIATE`` makes concurrent openers take turns, so each migration
    runs once.
    """
    if not 0 <= target <= SCHEMA_VERSION:
        raise ValueError(f"no schema version {target}")
    connection.execute("BEGIN IMMEDIATE")
    try:
        found = schema_version(connection)
        if found > SCHEMA_VERSION:
            raise SchemaTooNew(f"the database is at schema version {found}; this code knows up to {SCHEMA_VERSION}")
        for migration in MIGRATIONS[found:target]:
            for statement in migration:
                connection.execute(statement)
        if target > found:
            connection.execute(f"PRAGMA user_version = {int(target)}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return found
