"""Contract: daily limit counters and idempotency records."""

from __future__ import annotations

import pytest

from centli.domain.errors import InsufficientFunds, LimitExceeded
from centli.domain.idempotency import IDEMPOTENCY_WINDOW, DuplicateIdempotencyKey
from centli.domain.money import Money
from tests.backends import Backend
from tests.contract.conftest import ANA, DAY, LUIS, balance, commit, record, seed, snapshot, transfer

pytestmark = pytest.mark.contract

LIMIT = Money.of("1000.00")


# daily limits -----------------------------------------------------------------------
def test_limit_totals_add_up_per_user_day_and_currency(any_backend: Backend) -> None:
    commit(any_backend, lambda uow: uow.limits.add(ANA, DAY, Money.of("100.00"), LIMIT))
    commit(any_backend, lambda uow: uow.limits.add(ANA, DAY, Money.of("250.50"), LIMIT))
    commit(any_backend, lambda uow: uow.limits.add(ANA, "2026-11-25", Money.of("5.00"), LIMIT))
    commit(any_backend, lambda uow: uow.limits.add(LUIS, DAY, Money.of("7.00"), LIMIT))
    commit(any_backend, lambda uow: uow.limits.add(ANA, DAY, Money.of("3.00", "USD"), Money.of("10.00", "USD")))
    with any_backend.uow() as uow:
        assert uow.limits.total(ANA, DAY, "MXN") == Money.of("350.50")
        assert uow.limits.total(ANA, "2026-11-25", "MXN") == Money.of("5.00")
        assert uow.limits.total(LUIS, DAY, "MXN") == Money.of("7.00")
        assert uow.limits.total(ANA, DAY, "USD") == Money.of("3.00", "USD")
        assert uow.limits.total(ANA, "2026-11-26", "MXN") == Money.zero("MXN")
        assert uow.limits.total("u-nobody", DAY, "USD") == Money.zero("USD")


def test_limit_may_be_reached_exactly_but_not_passed(any_backend: Backend) -> None:
    commit(any_backend, lambda uow: uow.limits.add(ANA, DAY, Money.of("999.99"), LIMIT))
    with pytest.raises(LimitExceeded) as raised, any_backend.uow() as uow:
        uow.limits.add(ANA, DAY, Money(2), LIMIT)
        uow.commit()
    assert raised.value.status == 422
    commit(any_backend, lambda uow: uow.limits.add(ANA, DAY, Money(1), LIMIT))
    with any_backend.uow() as uow:
        assert uow.limits.total(ANA, DAY, "MXN") == LIMIT


def test_a_single_amount_over_the_limit_leaves_no_counter(any_backend: Backend) -> None:
    with pytest.raises(LimitExceeded), any_backend.uow() as uow:
        uow.limits.add(ANA, DAY, Money.of("1000.01"), LIMIT)
        uow.commit()
    with any_backend.uow() as uow:
        assert uow.limits.total(ANA, DAY, "MXN") == Money.zero()


# idempotency ------------------------------------------------------------------------
def test_claim_then_get(any_backend: Backend) -> None:
    claimed = record("key-1")
    commit(any_backend, lambda uow: uow.idempotency.claim(claimed))
    with any_backend.uow() as uow:
        assert uow.idempotency.get(ANA, "key-1") == claimed
        assert uow.idempotency.get(LUIS, "key-1") is None  # keys are scoped per customer
        assert uow.idempotency.get(ANA, "key-2") is None


def test_a_live_key_cannot_be_claimed_again(any_backend: Backend) -> None:
    original = record("key-1", result="trf-1")
    commit(any_backend, lambda uow: uow.idempotency.claim(original))
    last_live_minute = int(IDEMPOTENCY_WINDOW.total_seconds() // 60) - 1
    for minute in (0, 1, last_live_minute):
        with pytest.raises(DuplicateIdempotencyKey) as raised, any_backend.uow() as uow:
            uow.idempotency.claim(record("key-1", minute=minute, result="trf-2"))
            uow.commit()
        assert raised.value.existing == original
    with any_backend.uow() as uow:
        assert uow.idempotency.get(ANA, "key-1") == original


def test_the_same_key_is_free_for_another_customer(any_backend: Backend) -> None:
    commit(any_backend, lambda uow: uow.idempotency.claim(record("key-1", result="trf-1")))
    commit(any_backend, lambda uow: uow.idempotency.claim(record("key-1", user=LUIS, result="trf-2")))
    with any_backend.uow() as uow:
        found = uow.idempotency.get(LUIS, "key-1")
        assert found is not None and found.result == {"transfer_id": "trf-2"}


def test_an_expired_key_can_be_claimed_again(any_backend: Backend) -> None:
    commit(any_backend, lambda uow: uow.idempotency.claim(record("key-1", result="trf-1")))
    # Expiry is checked in code: the record is dead from expires_at on, whether or not a TTL deleted it.
    expired_at = int(IDEMPOTENCY_WINDOW.total_seconds() // 60)
    fresh = record("key-1", minute=expired_at, result="trf-2")
    commit(any_backend, lambda uow: uow.idempotency.claim(fresh))
    with any_backend.uow() as uow:
        assert uow.idempotency.get(ANA, "key-1") == fresh


def test_duplicate_key_is_reported_before_any_other_guard(any_backend: Backend) -> None:
    seed(any_backend)
    commit(any_backend, lambda uow: uow.idempotency.claim(record("key-x", result="trf-1")))
    before = snapshot(any_backend)
    # The retry's other guard would fail too (insufficient funds now), yet the duplicate is what the caller learns,
    # whatever order the intents were buffered in.
    for claim_first in (True, False):
        with pytest.raises(DuplicateIdempotencyKey) as raised, any_backend.uow() as uow:
            if claim_first:
                uow.idempotency.claim(record("key-x", minute=1, result="trf-x"))
            uow.ledger.post(transfer("trf-x", "5000.00"))
            uow.limits.add(ANA, DAY, Money.of("5000.00"), LIMIT)
            if not claim_first:
                uow.idempotency.claim(record("key-x", minute=1, result="trf-x"))
            uow.commit()
        assert raised.value.existing.result == {"transfer_id": "trf-1"}
    assert snapshot(any_backend) == before


def test_a_failed_guard_does_not_store_the_key(any_backend: Backend) -> None:
    seed(any_backend)
    with pytest.raises(InsufficientFunds), any_backend.uow() as uow:
        uow.idempotency.claim(record("key-x", result="trf-x"))
        uow.ledger.post(transfer("trf-x", "5000.00"))
        uow.commit()
    with any_backend.uow() as uow:
        assert uow.idempotency.get(ANA, "key-x") is None
    # The key is still free: the corrected request goes through.
    commit(
        any_backend,
        lambda uow: uow.idempotency.claim(record("key-x", result="trf-x")),
        lambda uow: uow.ledger.post(transfer("trf-x", "50.00")),
    )
    assert balance(any_backend, ANA, "acc-a1") == Money.of("950.00")
