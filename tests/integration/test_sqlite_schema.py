"""The SQLite schema is versioned: an older file is migrated in place without losing data."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from centli.adapters.sqlite import MIGRATIONS, SCHEMA_VERSION, SchemaTooNew, SqliteStore, migrate
from centli.domain.events import EventAlreadyProcessed
from centli.domain.money import Money

pytestmark = pytest.mark.integration

OPENED = "2026-11-01T12:00:00.000000+00:00"


def build_version(path: Path, version: int) -> None:
    """A file as code at ``version`` would have left it, holding some data."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        assert migrate(db, target=version) == 0
        db.execute("INSERT INTO accounts VALUES ('u-ana', 'acc-1', 'Nómina', 'MXN', 150000)")
        db.execute(
            "INSERT INTO entries (entry_id, user_id, account_id, transfer_id, direction, amount_minor, currency,"
            " description, timestamp, balance_after_minor)"
            " VALUES ('open-acc-1', 'u-ana', 'acc-1', 'open-acc-1', 'CREDIT', 150000, 'MXN', 'Saldo inicial',"
            " ?, 150000)",
            (OPENED,),
        )
        db.execute(
            "INSERT INTO outbox (event_id, type, occurred_at, correlation_id, causation_id, user_id, payload)"
            " VALUES ('evt-1', 'TRANSFER_COMPLETED', ?, 'c-1', NULL, 'u-ana', '{\"amount\": \"1.00\"}')",
            (OPENED,),
        )
        db.execute("INSERT INTO inbox (consumer, event_id) VALUES ('core-banking.payment', 'evt-0')")
        db.execute(
            "INSERT INTO orders (user_id, order_id, product_id, quantity, total_minor, currency, account_id,"
            " seller_user_id, seller_account_id, status, version, created_at, updated_at, correlation_id)"
            " VALUES ('u-ana', 'ord-1', 'p-1', 1, 100, 'MXN', 'acc-1', 'u-shop', 'acc-9', 'PENDING', 1, ?, ?, 'c-2')",
            (OPENED, OPENED),
        )
    finally:
        db.close()


def index_names(path: Path) -> set[str]:
    db = sqlite3.connect(path)
    try:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        db.close()


def user_version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


def test_there_is_a_previous_version_to_migrate_from() -> None:
    assert SCHEMA_VERSION == len(MIGRATIONS) >= 2


def test_a_file_at_the_first_version_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    build_version(path, 1)  # the first released schema: every later migration runs
    assert user_version(path) == 1
    assert not {"orders_pending", "orders_sweep"} & index_names(path)

    store = SqliteStore(path)
    try:
        assert user_version(path) == SCHEMA_VERSION
        assert {"orders_sweep", "outbox_pending"} <= index_names(path)
        with store.unit_of_work() as uow:
            account = uow.accounts.get("u-ana", "acc-1")
            assert account is not None and account.balance == Money.of("1500.00")
            history = uow.ledger.history("u-ana", "acc-1", 10, None)
            assert [(e.entry_id, e.timestamp) for e in history.items] == [
                ("open-acc-1", datetime(2026, 11, 1, 12, tzinfo=UTC))
            ]
            uow.inbox.mark_processed("core-banking.payment", "evt-0")
            with pytest.raises(EventAlreadyProcessed):
                uow.commit()
            uow.inbox.mark_processed("core-banking.payment", "evt-2", "paid")  # the columns of versions 2 and 3
            uow.commit()
            # A pending order from before version 3 is due by its creation time, as before.
            [stuck] = uow.orders.list_pending_before(datetime(2026, 11, 2, tzinfo=UTC), 10)
            assert (stuck.order_id, stuck.sweep_time, stuck.sweep_attempts) == ("ord-1", stuck.created_at, 0)
            assert uow.orders.list_pending_before(stuck.created_at, 10) == []
        [event] = store.pending(10)
        assert (event.event_id, event.payload) == ("evt-1", {"amount": "1.00"})
    finally:
        store.close()
    db = sqlite3.connect(path)
    try:
        processed = {r[0]: r[1:] for r in db.execute("SELECT event_id, processed_at, outcome FROM inbox")}
    finally:
        db.close()
    assert processed["evt-0"] == (None, None)
    assert processed["evt-2"][0] is not None and processed["evt-2"][1] == "paid"


def test_reopening_a_current_file_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "centli.db"
    SqliteStore(path).close()
    before = index_names(path)
    SqliteStore(path).close()
    assert user_version(path) == SCHEMA_VERSION
    assert index_names(path) == before


def test_a_file_from_newer_code_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    SqliteStore(path).close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(SchemaTooNew):
        SqliteStore(path)
    assert user_version(path) == SCHEMA_VERSION + 1


def test_a_failing_migration_leaves_the_file_at_its_old_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import centli.adapters.sqlite.schema as schema

    path = tmp_path / "old.db"
    build_version(path, SCHEMA_VERSION - 1)
    broken = (*MIGRATIONS[:-1], (*MIGRATIONS[-1], "CREATE TABLE accounts (x)"))  # fails on its last statement
    monkeypatch.setattr(schema, "MIGRATIONS", broken)
    with pytest.raises(sqlite3.OperationalError):
        SqliteStore(path)
    assert user_version(path) == SCHEMA_VERSION - 1
    db = sqlite3.connect(path)
    try:
        inbox_columns = {r[1] for r in db.execute("PRAGMA table_info(inbox)")}
    finally:
        db.close()
    assert "outcome" not in inbox_columns  # what the last migration adds was rolled back with it


def test_concurrent_openers_of_a_new_file_migrate_it_once(tmp_path: Path) -> None:
    for attempt in range(5):  # the race is short: try it a few times
        path = tmp_path / f"new-{attempt}.db"
        errors: list[BaseException] = []
        barrier = threading.Barrier(4)

        def open_and_close(path: Path = path, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                SqliteStore(path).close()
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=open_and_close) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert user_version(path) == SCHEMA_VERSION
        assert "orders_sweep" in index_names(path)
