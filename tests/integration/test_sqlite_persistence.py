"""What a SQLite file keeps across a restart, and how it is opened (WAL, parent directory, stable cursors)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from centli.adapters.memory import ManualClock, SequentialIds
from centli.adapters.sqlite import SqliteStore
from centli.domain.application import Application, bootstrap
from centli.domain.banking import CreateTransfer
from centli.domain.catalog import Product
from centli.domain.ledger import AccountRef
from centli.domain.loading import parse_bank_document
from centli.domain.marketplace import CreatePurchase
from centli.domain.money import Money
from centli.domain.policy import BankPolicy
from centli.entrypoints.demo import demo_bank
from tests.conftest import CURSOR_SECRET

pytestmark = pytest.mark.integration

ANA = "u-ana"


class Ids(SequentialIds):
    """Sequential ids under a prefix, so two runs on one file never reuse an id."""

    def __init__(self, run: str) -> None:
        super().__init__()
        self._run = run

    def new_id(self, prefix: str) -> str:
        return super().new_id(f"{prefix}-{self._run}")


def app_on(store: SqliteStore, run: str) -> Application:
    return bootstrap(store.unit_of_work, ManualClock(), Ids(run), BankPolicy(), CURSOR_SECRET, store)


def test_everything_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "centli.db"  # the parent directory does not exist yet
    store = SqliteStore(path)
    app = app_on(store, "a")
    store.load(parse_bank_document(demo_bank(), ManualClock().now()))
    transfer = app.banking.create_transfer(
        CreateTransfer.parse(ANA, "acc-0001", "1500.00", "k-1", destination_id="acc-0003")
    )
    order = app.marketplace.create_purchase(CreatePurchase.parse(ANA, "p-100", 2, "acc-0001", "k-2"))
    history = app.banking.list_transactions(ANA, "acc-0001")
    pending = store.pending(100)
    store.close()
    with pytest.raises(RuntimeError):
        store.pending(1)

    reopened = SqliteStore(path)
    try:
        app = app_on(reopened, "b")
        assert app.banking.get_balance(ANA, "acc-0001").balance == Money.of("23500.00")
        assert app.banking.get_balance(ANA, "acc-0003").balance == Money.of("2500.00")
        assert app.banking.get_transfer(ANA, transfer.transfer_id) == transfer
        assert app.banking.list_transactions(ANA, "acc-0001") == history
        assert app.marketplace.get_order(ANA, order.order_id) == order
        assert reopened.pending(100) == pending and len(pending) >= 2
        # The idempotency record survived too: a retry returns the original, and moves nothing.
        retry = CreateTransfer.parse(ANA, "acc-0001", "1500.00", "k-1", destination_id="acc-0003")
        assert app.banking.create_transfer(retry) == transfer
        assert app.banking.get_balance(ANA, "acc-0001").balance == Money.of("23500.00")
        # The saga resumes from the outbox after the restart, and what was published stays published.
        assert app.settle() > 0
        assert app.marketplace.get_order(ANA, order.order_id).status == "CONFIRMED"
        assert reopened.pending(100) == []
    finally:
        reopened.close()
    again = SqliteStore(path)
    try:
        assert again.pending(100) == []
        assert app_on(again, "c").marketplace.get_order(ANA, order.order_id).status == "CONFIRMED"
    finally:
        again.close()


def test_the_file_is_in_wal_mode_and_private_to_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "centli.db"
    store = SqliteStore(path)
    try:
        with store.unit_of_work() as uow:
            uow.products.add(Product("p-1", "Licuadora", "home", Money(100), 1, 0, AccountRef("u", "a")))
            uow.commit()
        for file in (path, path.with_name("centli.db-wal")):
            assert file.stat().st_mode & 0o077 == 0, file
    finally:
        store.close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()


def test_a_history_cursor_stays_put_while_new_entries_arrive(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "centli.db", synchronous="NORMAL")
    try:
        app = app_on(store, "a")
        store.load(parse_bank_document(demo_bank(), ManualClock().now()))

        def send(key: str, amount: str) -> None:
            app.banking.create_transfer(CreateTransfer.parse(ANA, "acc-0001", amount, key, destination_id="acc-0003"))

        for i in range(5):
            send(f"k-{i}", f"{i + 1}.00")
        first = app.banking.list_transactions(ANA, "acc-0001", limit=3)
        assert [e.amount.to_decimal_string() for e in first.entries] == ["5.00", "4.00", "3.00"]
        send("k-new-1", "7.00")
        send("k-new-2", "8.00")
        second = app.banking.list_transactions(ANA, "acc-0001", limit=3, cursor=first.next_cursor)
        assert [e.amount.to_decimal_string() for e in second.entries] == ["2.00", "1.00", "25000.00"]
        assert second.next_cursor is None
        newest = app.banking.list_transactions(ANA, "acc-0001", limit=1)
        assert newest.entries[0].amount == Money.of("8.00")
        assert newest.entries[0].balance_after == Money.of(f"{25000 - 15 - 7 - 8}.00")
    finally:
        store.close()


def test_a_history_position_that_names_no_entry_is_an_invalid_cursor(tmp_path: Path) -> None:
    from centli.domain.errors import AccountNotFound, InvalidCursor

    store = SqliteStore(tmp_path / "centli.db", synchronous="NORMAL")
    try:
        store.load(parse_bank_document(demo_bank(), ManualClock().now()))
        with store.unit_of_work() as uow:
            for position in ("abc", "0", "-1", "²", "9" * 40, ""):
                with pytest.raises(InvalidCursor):
                    uow.ledger.history(ANA, "acc-0001", 5, position)
            with pytest.raises(AccountNotFound):  # ownership is checked before the position
                uow.ledger.history("u-luis", "acc-0001", 5, "abc")
            assert uow.ledger.history(ANA, "acc-0001", 5, "999").items[0].entry_id == "open-acc-0001"
    finally:
        store.close()


def test_a_unit_of_work_outliving_its_store_fails_cleanly(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "centli.db", synchronous="NORMAL")
    store.load(parse_bank_document(demo_bank(), ManualClock().now()))
    with store.unit_of_work() as uow:
        assert uow.accounts.get(ANA, "acc-0001") is not None
        store.close()
        with pytest.raises(RuntimeError, match="closed"):
            uow.accounts.get(ANA, "acc-0001")
    with pytest.raises(RuntimeError), store.unit_of_work() as uow:
        uow.accounts.get(ANA, "acc-0001")
