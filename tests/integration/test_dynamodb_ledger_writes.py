"""Ledger writes on DynamoDB: commit order under clock skew, conditions on every record, matching SQLite."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from centli.adapters.dynamodb import DynamoStore
from centli.adapters.memory import ManualClock
from centli.domain.application import bootstrap
from centli.domain.banking import CreateTransfer
from centli.domain.errors import ConcurrencyConflict, InsufficientFunds, LimitExceeded
from centli.domain.idempotency import DuplicateIdempotencyKey
from centli.domain.money import Money
from centli.domain.policy import BankPolicy
from tests.backends import Backend, opener
from tests.backends.dynamodb import open_backend
from tests.conftest import CURSOR_SECRET, make_bank
from tests.contract.conftest import (
    ANA,
    DAY,
    LUIS,
    account,
    at,
    balance,
    commit,
    event,
    full_history,
    pending_ids,
    record,
    transfer,
)
from tests.integration.test_dynamodb_calls import RequestCounter

pytestmark = pytest.mark.integration


class OtherIds:
    """Another Lambda's ids: never one the first Lambda's SequentialIds hands out."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-late-{next(self._counter):04d}"


def open_two(backend: Backend, ana: str = "100.00", luis: str = "0.00") -> None:
    commit(backend, lambda uow: uow.accounts.open(account(ANA, "acc-a1", ana)))
    commit(backend, lambda uow: uow.accounts.open(account(LUIS, "acc-l1", luis)))


@pytest.fixture(params=["memory", "sqlite", "dynamodb"])
def store_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Every store: a duplicated transfer id or outbox event id is handled the same way."""
    with opener(request.param)(tmp_path) as backend:
        yield backend


@pytest.fixture
def dynamo(tmp_path: Path) -> Iterator[Backend]:
    with open_backend(tmp_path) as backend:
        yield backend


def test_a_duplicate_transfer_id_is_a_conflict_and_changes_nothing(store_backend: Backend) -> None:
    open_two(store_backend)
    commit(store_backend, lambda uow: uow.ledger.post(transfer("trf-1", "10.00", minute=1)))
    for minute in (1, 5):  # the same stamp (the same entry keys) and a later one
        with pytest.raises(ConcurrencyConflict):
            commit(store_backend, lambda uow, m=minute: uow.ledger.post(transfer("trf-1", "20.00", minute=m)))
    assert balance(store_backend, ANA, "acc-a1").to_decimal_string() == "90.00"
    assert balance(store_backend, LUIS, "acc-l1").to_decimal_string() == "10.00"
    with store_backend.uow() as uow:
        stored = uow.ledger.get_transfer(ANA, "trf-1")
    assert stored is not None and stored.amount.to_decimal_string() == "10.00"
    history = full_history(store_backend, ANA, "acc-a1")
    assert [(e.transfer_id, e.balance_after.to_decimal_string()) for e in history] == [
        ("trf-1", "90.00"),
        ("open-acc-a1", "100.00"),
    ]


def test_an_outbox_event_id_already_stored_is_ignored_and_the_rest_commits(store_backend: Backend) -> None:
    open_two(store_backend)
    commit(store_backend, lambda uow: uow.outbox.add(event("evt-1", minute=0)))
    commit(
        store_backend,
        lambda uow: uow.ledger.post(transfer("trf-1", "10.00")),
        lambda uow: uow.outbox.add(event("evt-1", "TRANSFER_FAILED", minute=3)),
        lambda uow: uow.outbox.add(event("evt-2", minute=3)),
    )
    assert balance(store_backend, ANA, "acc-a1").to_decimal_string() == "90.00"
    assert pending_ids(store_backend) == ["evt-1", "evt-2"]
    assert store_backend.outbox.pending(10)[0].type == "TRANSFER_COMPLETED"  # the first one stays


def test_a_late_commit_costs_one_more_request_and_an_on_time_one_none(dynamo: Backend) -> None:
    open_two(dynamo)
    counter = RequestCounter(dynamo.extras["client"])
    dynamo.clock.advance(timedelta(minutes=9))
    _, sent = counter.during(lambda: commit(dynamo, lambda uow: uow.ledger.post(transfer("trf-b", "10.00", minute=9))))
    assert sent == {"TransactWriteItems": 1}
    dynamo.clock.advance(timedelta(minutes=-8))  # the next commit reads a clock 8 minutes late
    stamp, sent = counter.during(lambda: commit(dynamo, lambda uow: uow.ledger.post(transfer("trf-a", "5.00"))))
    assert sent == {"TransactWriteItems": 2}  # cancelled on the head's last_sk, stamped again, resent
    history = full_history(dynamo, ANA, "acc-a1")
    assert [e.transfer_id for e in history] == ["trf-a", "trf-b", "open-acc-a1"]
    # Changed on purpose (issue 8): the late commit is stamped with the previous entry's time, not its own.
    assert stamp == history[0].timestamp == history[1].timestamp == at(9)


def test_a_lambda_whose_clock_runs_late_answers_the_stamp_it_committed(tmp_path: Path) -> None:
    """Two Lambdas on one table, one clock 8 minutes behind: the late one's transfer shows the previous
    entry's time in the statement, in its answer, in the stored transfer and in its idempotent replay."""
    with open_backend(tmp_path) as backend:
        on_time = make_bank(backend)
        store: DynamoStore = backend.extras["store"]
        late_clock = ManualClock(on_time.clock.now() - timedelta(minutes=8))
        late_store = DynamoStore(store.client, store.tables, clock=late_clock)
        late = bootstrap(late_store.unit_of_work, late_clock, OtherIds(), BankPolicy(), CURSOR_SECRET, late_store)
        counter = RequestCounter(backend.extras["client"])
        on_time.clock.advance(timedelta(minutes=1))
        first = on_time.app.banking.create_transfer(
            CreateTransfer.parse("u-ana", "acc-0001", "10.00", "k1", "acc-0003")
        )
        command = CreateTransfer.parse("u-ana", "acc-0001", "5.00", "k2", "acc-0003")
        second, sent = counter.during(lambda: late.banking.create_transfer(command))
        assert sent == {"TransactWriteItems": 2}  # one cancellation, its ALL_OLD naming the later entry
        assert second.created_at == first.created_at > late_clock.now()
        assert on_time.app.banking.get_transfer("u-ana", second.transfer_id) == second
        replayed, sent = counter.during(lambda: late.banking.send_transfer(command))
        assert (replayed.value, replayed.replayed, sent) == (second, True, {"TransactWriteItems": 1})
        for account_id in ("acc-0001", "acc-0003"):
            history = on_time.app.banking.list_transactions("u-ana", account_id).entries
            assert [e.transfer_id for e in history[:2]] == [second.transfer_id, first.transfer_id]
            assert [e.timestamp for e in history] == sorted((e.timestamp for e in history), reverse=True)


def test_a_late_commit_that_fails_a_guard_names_the_guard_not_the_order(dynamo: Backend) -> None:
    open_two(dynamo)
    dynamo.clock.advance(timedelta(minutes=9))
    commit(dynamo, lambda uow: uow.ledger.post(transfer("trf-b", "10.00", minute=9)))
    dynamo.clock.advance(timedelta(minutes=-8))  # every later commit reads a clock 8 minutes late
    late_and_too_big = transfer("trf-a", "500.00", minute=1)
    with pytest.raises(InsufficientFunds):
        commit(dynamo, lambda uow: uow.ledger.post(late_and_too_big))
    over_limit = transfer("trf-c", "5.00", minute=1)
    with pytest.raises(LimitExceeded):
        commit(
            dynamo,
            lambda uow: uow.ledger.post(over_limit),
            lambda uow: uow.limits.add(ANA, DAY, Money.of("5.00"), Money.of("1.00")),
        )
    # The idempotency guard comes first: a late replay returns the stored record, nothing moves.
    commit(dynamo, lambda uow: uow.idempotency.claim(record("key-1", minute=9)))
    with pytest.raises(DuplicateIdempotencyKey):
        commit(
            dynamo,
            lambda uow: uow.idempotency.claim(record("key-1", minute=9)),
            lambda uow: uow.ledger.post(transfer("trf-d", "5.00", minute=1)),
        )
    assert balance(dynamo, ANA, "acc-a1").to_decimal_string() == "90.00"
    assert [e.transfer_id for e in full_history(dynamo, ANA, "acc-a1")] == ["trf-b", "open-acc-a1"]


def test_a_transfer_within_one_account_also_moves_the_head(dynamo: Backend) -> None:
    open_two(dynamo)
    dynamo.clock.advance(timedelta(minutes=9))
    commit(dynamo, lambda uow: uow.ledger.post(transfer("trf-b", "10.00", minute=9)))
    dynamo.clock.advance(timedelta(minutes=-8))
    own = transfer("trf-own", "30.00", to=(ANA, "acc-a1"), minute=1)
    commit(dynamo, lambda uow: uow.ledger.post(own))
    history = full_history(dynamo, ANA, "acc-a1")
    assert [e.transfer_id for e in history][2:] == ["trf-b", "open-acc-a1"]
    assert {e.entry_id for e in history[:2]} == {own.debit_entry_id, own.credit_entry_id}
    assert history[0].balance_after.to_decimal_string() == "90.00"
    assert history[1].balance_after.minor == 9000 - history[0].signed_minor
    assert all(e.balance_after.minor >= 0 for e in history)
