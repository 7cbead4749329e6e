"""Contract: the inbox, the outbox, all-or-nothing commits, and idempotent loading."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from centli.domain.errors import ConcurrencyConflict, InsufficientFunds, InvalidInput, LimitExceeded, OutOfStock
from centli.domain.events import EventAlreadyProcessed
from centli.domain.idempotency import DuplicateIdempotencyKey
from centli.domain.loading import parse_bank_document
from centli.domain.money import Money
from centli.domain.settlement import CLEARING_ACCOUNTS
from centli.ports.unit_of_work import UnitOfWork
from tests.backends import Backend
from tests.contract.conftest import (
    ANA,
    DAY,
    LUIS,
    SHOP,
    balance,
    commit,
    event,
    full_history,
    order,
    pending_ids,
    product,
    record,
    seed,
    snapshot,
    transfer,
)

pytestmark = pytest.mark.contract

LIMIT = Money.of("1000.00")


# inbox ------------------------------------------------------------------------------
def test_an_event_is_processed_once_per_consumer(any_backend: Backend) -> None:
    commit(any_backend, lambda uow: uow.inbox.mark_processed("consumer-a", "evt-1"))
    with pytest.raises(EventAlreadyProcessed) as raised, any_backend.uow() as uow:
        uow.inbox.mark_processed("consumer-a", "evt-1")
        uow.commit()
    assert (raised.value.consumer, raised.value.event_id) == ("consumer-a", "evt-1")
    # Another consumer of the same event, or another event, is new.
    commit(any_backend, lambda uow: uow.inbox.mark_processed("consumer-b", "evt-1"))
    commit(any_backend, lambda uow: uow.inbox.mark_processed("consumer-a", "evt-2"))


def test_a_redelivered_event_has_no_second_effect(any_backend: Backend) -> None:
    seed(any_backend)

    def pay(uow: UnitOfWork) -> None:
        uow.inbox.mark_processed("payments", "evt-1")
        uow.ledger.post(transfer("trf-1", "10.00"))

    commit(any_backend, pay)
    with pytest.raises(EventAlreadyProcessed), any_backend.uow() as uow:
        pay(uow)
        uow.commit()
    assert balance(any_backend, ANA, "acc-a1") == Money.of("990.00")
    assert len(full_history(any_backend, ANA, "acc-a1")) == 2


# outbox -------------------------------------------------------------------------------
def test_outbox_events_appear_only_after_commit_and_leave_when_published(any_backend: Backend) -> None:
    outbox = any_backend.outbox
    first, second, third = event("evt-1", minute=0), event("evt-2", minute=1), event("evt-3", "ORDER_CONFIRMED", 2)
    with any_backend.uow() as uow:
        uow.inbox.mark_processed("consumer", "evt-0")
        uow.outbox.add(first)
        uow.outbox.add(second)
        assert outbox.pending(10) == []  # buffered, not written
        uow.commit()
    commit(any_backend, lambda uow: uow.outbox.add(third))
    # The events' unit of work committed (its inbox mark is there) ...
    with pytest.raises(EventAlreadyProcessed), any_backend.uow() as uow:
        uow.inbox.mark_processed("consumer", "evt-0")
        uow.commit()
    assert outbox.pending(10) == [first, second, third]  # oldest first, every field intact
    assert outbox.pending(2) == [first, second]
    outbox.mark_published(["evt-1", "evt-3"])
    assert outbox.pending(10) == [second]
    outbox.mark_published(["evt-2", "evt-2"])  # publishing twice is harmless
    assert outbox.pending(10) == []


def test_leaving_without_commit_writes_nothing(any_backend: Backend) -> None:
    seed(any_backend)
    before = snapshot(any_backend)

    def everything(uow: UnitOfWork) -> None:
        uow.idempotency.claim(record("key-x", result="trf-x"))
        uow.limits.add(ANA, DAY, Money.of("10.00"), LIMIT)
        uow.ledger.post(transfer("trf-x", "10.00"))
        uow.products.reserve("p-1", 1)
        uow.orders.add(order("ord-x"))
        uow.inbox.mark_processed("consumer", "evt-x")
        uow.outbox.add(event("evt-x"))

    with any_backend.uow() as uow:
        everything(uow)
    assert snapshot(any_backend) == before
    with pytest.raises(RuntimeError), any_backend.uow() as uow:
        everything(uow)
        raise RuntimeError("the command failed half way")
    assert snapshot(any_backend) == before
    with any_backend.uow() as uow:
        everything(uow)
        uow.rollback()
        uow.commit()  # nothing left to commit
    assert snapshot(any_backend) == before
    # The same writes, committed, all land.
    commit(any_backend, everything)
    after = snapshot(any_backend)
    assert after["transfer"] is not None and after["idempotency"] is not None
    assert after["limit"] == Money.of("10.00")
    assert [o.order_id for o in after["orders"]] == ["ord-x"]  # type: ignore[attr-defined]
    assert after["outbox"] == ["evt-x"]


# Each failing intent touches items the valid ones do not: a DynamoDB transaction may name an item only once.
FAILING_GUARDS: dict[str, tuple[Callable[[UnitOfWork], None], type[Exception]]] = {
    "insufficient funds": (
        lambda uow: uow.ledger.post(transfer("trf-y", "5000.00", source="acc-a2", to=(SHOP, "acc-s1"))),
        InsufficientFunds,
    ),
    "daily limit": (lambda uow: uow.limits.add(LUIS, DAY, Money.of("1000.01"), LIMIT), LimitExceeded),
    "out of stock": (lambda uow: uow.products.reserve("p-2", 2), OutOfStock),
    "order version": (lambda uow: uow.orders.update(replace(order("ord-gone"), version=2)), ConcurrencyConflict),
    "inbox": (lambda uow: uow.inbox.mark_processed("consumer", "evt-seen"), EventAlreadyProcessed),
    "idempotency": (lambda uow: uow.idempotency.claim(record("key-seen", minute=1)), DuplicateIdempotencyKey),
}  # fmt: skip


def test_one_failing_guard_writes_nothing(any_backend: Backend) -> None:
    seed(any_backend)
    commit(
        any_backend,
        lambda uow: uow.inbox.mark_processed("consumer", "evt-seen"),
        lambda uow: uow.idempotency.claim(record("key-seen")),
        lambda uow: uow.products.add(product("p-2", stock=1)),
    )
    before = snapshot(any_backend)
    for guard, (failing, error) in FAILING_GUARDS.items():
        with pytest.raises(error), any_backend.uow() as uow:
            uow.idempotency.claim(record("key-x", result="trf-x"))
            uow.limits.add(ANA, DAY, Money.of("10.00"), LIMIT)
            uow.ledger.post(transfer("trf-x", "10.00"))
            uow.products.reserve("p-1", 1)
            uow.orders.add(order("ord-x"))
            uow.inbox.mark_processed("consumer", "evt-x")
            uow.outbox.add(event("evt-x"))
            failing(uow)
            uow.commit()
        assert snapshot(any_backend) == before, guard
        with any_backend.uow() as uow:
            untouched = uow.products.get("p-2")
        assert untouched is not None and (untouched.stock, untouched.reserved) == (1, 0), guard
    # The inbox mark was not written either: the event can still be processed.
    commit(any_backend, lambda uow: uow.inbox.mark_processed("consumer", "evt-x"))


# loading -------------------------------------------------------------------------------
BANK = {
    "users": [{"user_id": ANA}, {"user_id": LUIS}],
    "accounts": [
        {"user_id": ANA, "account_id": "acc-a1", "alias": "Nómina", "currency": "MXN", "opening_balance": "250.00"},
        {"user_id": LUIS, "account_id": "acc-l1", "alias": "Principal", "currency": "MXN", "opening_balance": "0.00"},
    ],
    "beneficiaries": [{"user_id": ANA, "beneficiary_id": "ben-luis", "alias": "Luis", "account_id": "acc-l1"}],
    "products": [
        {"product_id": "p-1", "name": "Taza", "category": "home", "price": "35.00", "currency": "MXN", "stock": 4,
         "seller_account_id": "acc-l1"},
    ],
}  # fmt: skip


def test_loading_twice_is_idempotent(any_backend: Backend) -> None:
    data = parse_bank_document(BANK, datetime(2026, 11, 24, tzinfo=UTC))
    report = any_backend.load(data, None)
    assert (report.accounts, report.beneficiaries, report.products) == (2, 1, 1)
    # Money moves and stock is reserved between the two loads; the second load must not undo that.
    commit(any_backend, lambda uow: uow.ledger.post(transfer("trf-1", "50.00")))
    commit(any_backend, lambda uow: uow.products.reserve("p-1", 3))
    progress: list[tuple[int, int]] = []
    any_backend.load(data, lambda done, total: progress.append((done, total)))
    records = 4 + CLEARING_ACCOUNTS  # the file's records and the seller's clearing accounts
    assert progress and progress[-1] == (records, records)
    assert balance(any_backend, ANA, "acc-a1") == Money.of("200.00")
    assert balance(any_backend, LUIS, "acc-l1") == Money.of("50.00")
    assert [e.entry_id for e in full_history(any_backend, ANA, "acc-a1")][-1] == "open-acc-a1"
    assert len(full_history(any_backend, ANA, "acc-a1")) == 2
    with any_backend.uow() as uow:
        product = uow.products.get("p-1")
        assert product is not None and (product.stock, product.reserved) == (4, 3)
        assert [b.beneficiary_id for b in uow.beneficiaries.list_for_user(ANA)] == ["ben-luis"]
        [account] = uow.accounts.list_for_user(ANA)
        assert account.alias == "Nómina"
    assert pending_ids(any_backend) == []  # loading publishes nothing


def test_a_later_load_cannot_give_a_customer_a_beneficiary_with_one_of_their_account_ids(
    any_backend: Backend,
) -> None:
    """One document is checked when parsed; what is already stored is checked by every store's load."""
    any_backend.load(parse_bank_document(BANK, datetime(2026, 11, 24, tzinfo=UTC)), None)
    clash_beneficiary = {
        "users": [{"user_id": ANA}, {"user_id": LUIS}],
        "accounts": [{"user_id": LUIS, "account_id": "acc-l2", "alias": "Otra", "opening_balance": "0.00"}],
        "beneficiaries": [{"user_id": ANA, "beneficiary_id": "acc-a1", "alias": "Luis", "account_id": "acc-l2"}],
    }
    clash_account = {
        "users": [{"user_id": ANA}],
        "accounts": [{"user_id": ANA, "account_id": "ben-luis", "alias": "Nueva", "opening_balance": "0.00"}],
    }
    for document in (clash_beneficiary, clash_account):
        with pytest.raises(InvalidInput, match="has the id of one of u-ana's own accounts"):
            any_backend.load(parse_bank_document(document, datetime(2026, 11, 25, tzinfo=UTC)), None)
    with any_backend.uow() as uow:  # nothing of either document was written
        assert [b.beneficiary_id for b in uow.beneficiaries.list_for_user(ANA)] == ["ben-luis"]
        assert [a.account_id for a in uow.accounts.list_for_user(ANA)] == ["acc-a1"]
        assert uow.accounts.list_for_user(LUIS)[0].account_id == "acc-l1" and len(uow.accounts.list_for_user(LUIS)) == 1
