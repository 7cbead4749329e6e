"""Ledger writes on DynamoDB: commit order under clock skew, conditions on every record, matching SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from centli.domain.errors import ConcurrencyConflict, InsufficientFunds, LimitExceeded
from centli.domain.idempotency import DuplicateIdempotencyKey
from centli.domain.money import Money
from tests.backends import Backend, opener
from tests.backends.dynamodb import open_backend
from tests.contract.conftest import (
    ANA,
    DAY,
    LUIS,
    account,
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
    _, sent = counter.during(lambda: commit(dynamo, lambda uow: uow.ledger.post(transfer("trf-b", "10.00", minute=9))))
    assert sent == {"TransactWriteItems": 1}
    _, sent = counter.during(lambda: commit(dynamo, lambda uow: uow.ledger.post(transfer("trf-a", "5.00", minute=1))))
    assert sent == {"TransactWriteItems": 2}  # cancelled on the head's last_sk, re-keyed, resent
    assert [e.transfer_id for e in full_history(dynamo, ANA, "acc-a1")] == ["trf-a", "trf-b", "open-acc-a1"]


def test_a_late_commit_that_fails_a_guard_names_the_guard_not_the_order(dynamo: Backend) -> None:
    open_two(dynamo)
    commit(dynamo, lambda uow: uow.ledger.post(transfer("trf-b", "10.00", minute=9)))
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
    commit(dynamo, lambda uow: uow.ledger.post(transfer("trf-b", "10.00", minute=9)))
    own = transfer("trf-own", "30.00", to=(ANA, "acc-a1"), minute=1)
    commit(dynamo, lambda uow: uow.ledger.post(own))
    history = full_history(dynamo, ANA, "acc-a1")
    assert [e.transfer_id for e in history][2:] == ["trf-b", "open-acc-a1"]
    assert {e.entry_id for e in history[:2]} == {own.debit_entry_id, own.credit_entry_id}
    assert history[0].balance_after.to_decimal_string() == "90.00"
    assert history[1].balance_after.minor == 9000 - history[0].signed_minor
    assert all(e.balance_after.minor >= 0 for e in history)
