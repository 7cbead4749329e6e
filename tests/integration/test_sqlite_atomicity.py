"""A SQLite unit of work commits all of its writes or none: injected faults, failing guards, a busy file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from centli.adapters.memory import ManualClock, SequentialIds
from centli.adapters.sqlite import SqliteStore
from centli.domain.application import Application, bootstrap
from centli.domain.banking import CreateTransfer
from centli.domain.errors import ConcurrencyConflict, DependencyUnavailable, InsufficientFunds, OutOfStock
from centli.domain.events import DomainEvent
from centli.domain.idempotency import DuplicateIdempotencyKey, new_record
from centli.domain.ledger import AccountRef, Transfer
from centli.domain.loading import parse_bank_document
from centli.domain.money import Money
from centli.domain.policy import BankPolicy
from centli.entrypoints.demo import demo_bank
from centli.ports.faults import AFTER_COMMIT, BEFORE_COMMIT
from tests.conftest import CURSOR_SECRET

pytestmark = pytest.mark.integration

ANA = "u-ana"


class InjectedFault(Exception):
    pass


@dataclass
class PlannedFaults:
    """Raises once at each planned point."""

    planned: set[str] = field(default_factory=set)

    def check(self, point: str) -> None:
        if point in self.planned:
            self.planned.discard(point)
            raise InjectedFault(point)


@dataclass
class Setup:
    store: SqliteStore
    app: Application
    faults: PlannedFaults
    clock: ManualClock
    path: Path


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    faults = PlannedFaults()
    path = tmp_path / "bank.db"
    store = SqliteStore(path, faults, synchronous="NORMAL")
    clock = ManualClock()
    app = bootstrap(store.unit_of_work, clock, SequentialIds(), BankPolicy(), CURSOR_SECRET, store)
    store.load(parse_bank_document(demo_bank(), clock.now()))
    try:
        yield Setup(store, app, faults, clock, path)
    finally:
        store.close()


def snapshot(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, read from the file by a separate connection."""
    db = sqlite3.connect(path)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
    finally:
        db.close()


def transfer_command(key: str, amount: str = "100.00") -> CreateTransfer:
    return CreateTransfer.parse(ANA, "acc-0001", amount, key, destination_id="ben-mama")


def balance(app: Application, user: str, account: str) -> int:
    return app.banking.get_balance(user, account).balance.minor


def test_a_fault_before_commit_writes_nothing(setup: Setup) -> None:
    before = snapshot(setup.path)
    setup.faults.planned.add(BEFORE_COMMIT)
    with pytest.raises(InjectedFault):
        setup.app.banking.create_transfer(transfer_command("k-1"))
    assert snapshot(setup.path) == before

    retried = setup.app.banking.create_transfer(transfer_command("k-1"))
    assert balance(setup.app, ANA, "acc-0001") == Money.of("24900.00").minor
    assert setup.app.banking.get_transfer(ANA, retried.transfer_id) == retried


def test_a_fault_after_commit_is_an_ambiguous_timeout_that_a_retry_resolves(setup: Setup) -> None:
    luis_before = balance(setup.app, "u-luis", "acc-0002")
    setup.faults.planned.add(AFTER_COMMIT)
    with pytest.raises(InjectedFault):
        setup.app.banking.create_transfer(transfer_command("k-2", "250.00"))
    # The write is durable although the caller never heard back.
    assert balance(setup.app, ANA, "acc-0001") == Money.of("24750.00").minor

    retried = setup.app.banking.create_transfer(transfer_command("k-2", "250.00"))
    again = setup.app.banking.create_transfer(transfer_command("k-2", "250.00"))
    assert retried == again
    assert balance(setup.app, ANA, "acc-0001") == Money.of("24750.00").minor, "money moved once"
    assert balance(setup.app, "u-luis", "acc-0002") == luis_before + Money.of("250.00").minor
    entries = setup.store.all_entries()
    assert [e.transfer_id for e in entries if not e.entry_id.startswith("open-")] == [retried.transfer_id] * 2
    assert [e.type for e in setup.store.pending(10)] == ["TRANSFER_COMPLETED"]


def test_a_failing_guard_late_in_the_unit_rolls_back_every_earlier_write(setup: Setup) -> None:
    before = snapshot(setup.path)
    now = setup.clock.now()
    transfer = Transfer("trf-big", ANA, "acc-0001", AccountRef("u-luis", "acc-0002"), Money.of("30000.00"), "", now)
    with setup.store.unit_of_work() as uow:
        uow.idempotency.claim(new_record(ANA, "k-3", "createTransfer", "fp", {"x": 1}, now))
        uow.limits.add(ANA, "2026-11-24", Money.of("30000.00"), Money.of("100000.00"))
        uow.products.reserve("p-100", 2)
        uow.beneficiaries.add(setup.app.banking.list_beneficiaries(ANA)[0])
        uow.outbox.add(DomainEvent("evt-x", "TRANSFER_COMPLETED", now, "c", None, ANA, {}))
        uow.ledger.post(transfer)  # 30,000.00 from an account holding 25,000.00
        with pytest.raises(InsufficientFunds):
            uow.commit()
    assert snapshot(setup.path) == before
    with setup.store.unit_of_work() as uow:
        assert uow.idempotency.get(ANA, "k-3") is None
        assert uow.limits.total(ANA, "2026-11-24", "MXN") == Money.zero()
        product = uow.products.get("p-100")
        assert product is not None and product.reserved == 0


def test_a_stock_guard_after_a_successful_debit_rolls_the_debit_back(setup: Setup) -> None:
    before = snapshot(setup.path)
    now = setup.clock.now()
    with setup.store.unit_of_work() as uow:
        uow.ledger.post(Transfer("trf-1", ANA, "acc-0001", AccountRef(ANA, "acc-0003"), Money.of("10.00"), "", now))
        uow.products.reserve("p-200", 4)  # only 3 in stock
        with pytest.raises(OutOfStock):
            uow.commit()
    assert snapshot(setup.path) == before


def test_the_idempotency_guard_is_checked_before_every_other(setup: Setup) -> None:
    now = setup.clock.now()
    record = new_record(ANA, "k-4", "createTransfer", "fp", {"first": True}, now)
    with setup.store.unit_of_work() as uow:
        uow.idempotency.claim(record)
        uow.commit()
    before = snapshot(setup.path)
    with setup.store.unit_of_work() as uow:
        uow.ledger.post(Transfer("trf-2", ANA, "acc-0001", AccountRef(ANA, "acc-0003"), Money.of("1.00"), "", now))
        uow.products.reserve("p-200", 99)  # would fail with OutOfStock
        uow.idempotency.claim(new_record(ANA, "k-4", "createTransfer", "fp2", {}, now + timedelta(hours=1)))
        with pytest.raises(DuplicateIdempotencyKey) as duplicate:
            uow.commit()
    assert duplicate.value.existing == record
    assert snapshot(setup.path) == before

    # After the 24 h window the key may be claimed again.
    later = new_record(ANA, "k-4", "createTransfer", "fp3", {"second": True}, now + timedelta(hours=24))
    with setup.store.unit_of_work() as uow:
        uow.idempotency.claim(later)
        uow.commit()
        assert uow.idempotency.get(ANA, "k-4") == later


def test_an_order_version_conflict_undoes_the_stock_change(setup: Setup) -> None:
    from centli.domain.marketplace import CreatePurchase

    order = setup.app.marketplace.create_purchase(CreatePurchase.parse(ANA, "p-100", 1, "acc-0001", "k-5"))
    before = snapshot(setup.path)
    stale = order.cancel(setup.clock.now(), "TEST")
    with setup.store.unit_of_work() as uow:
        uow.products.release("p-100", 1)
        uow.orders.update(stale)
        uow.orders.update(stale)  # the second write of the same version must fail
        with pytest.raises(ConcurrencyConflict):
            uow.commit()
    assert snapshot(setup.path) == before


def test_a_file_locked_past_the_busy_timeout_is_a_503_and_nothing_is_written(tmp_path: Path) -> None:
    path = tmp_path / "bank.db"
    store = SqliteStore(path, busy_timeout=0.2)
    try:
        store.load(parse_bank_document(demo_bank(), ManualClock().now()))
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        with store.unit_of_work() as uow:
            uow.products.reserve("p-100", 1)
            with pytest.raises(DependencyUnavailable):
                uow.commit()
        holder.execute("ROLLBACK")
        holder.close()
        with store.unit_of_work() as uow:
            product = uow.products.get("p-100")
            assert product is not None and product.reserved == 0
            uow.products.reserve("p-100", 1)
            uow.commit()
            product = uow.products.get("p-100")
            assert product is not None and product.reserved == 1
    finally:
        store.close()
