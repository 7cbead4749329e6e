"""The event envelope (EventBridge ``Detail``) and the in-process bus."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from centli.adapters.memory import ManualClock, SequentialIds
from centli.domain import events as ev
from centli.domain.events import DomainEvent, EventFactory
from centli.domain.messagebus import EventBus, InProcessPublisher, OutboxRelay
from centli.domain.money import Money

# The test's own copy of the contract's example (tests never read ../shared).
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "eventbridge-PURCHASE_INITIATED.json"


def example() -> dict[str, object]:
    loaded: dict[str, object] = json.loads(EXAMPLE.read_text("utf-8"))
    return loaded


def test_the_example_carries_what_every_saga_step_needs() -> None:
    detail = example()["detail"]
    assert isinstance(detail, dict)
    assert set(detail["payload"]) == {
        "order_id",
        "product_id",
        "quantity",
        "account_id",
        "amount",
        "currency",
        "seller_account_id",
        "seller_user_id",
    }


def test_envelope_round_trips_the_example() -> None:
    envelope = example()
    detail = envelope["detail"]
    assert isinstance(detail, dict)
    event = DomainEvent.from_detail(detail)
    assert event.occurred_at == datetime(2026, 11, 24, 18, 43, 48, 120_000, tzinfo=UTC)
    assert event.causation_id is None
    assert (event.type, event.source) == (envelope["detail-type"], envelope["source"])
    assert event.to_detail() == detail
    assert json.loads(json.dumps(event.to_detail())) == detail


def test_envelope_has_exactly_the_contract_fields() -> None:
    failed = ev.PaymentFailed("ord-1", "p-1", 1, reason="INSUFFICIENT_FUNDS")
    event = EventFactory(SequentialIds(), ManualClock())(failed, "u-ana", "corr", "evt-0")
    detail = event.to_detail()
    assert set(detail) == {"event_id", "type", "occurred_at", "correlation_id", "causation_id", "user_id", "payload"}
    assert detail["occurred_at"] == "2026-11-24T18:00:00.000Z"
    assert event.source == ev.CORE_BANKING_SOURCE
    assert DomainEvent.from_detail(detail) == event


@pytest.mark.parametrize(
    "broken",
    [
        {"type": "NOT_A_TYPE"},
        {"payload": [1, 2]},
        {"occurred_at": "yesterday"},
    ],
)
def test_from_detail_rejects_malformed_envelopes(broken: dict[str, object]) -> None:
    detail = example()["detail"]
    assert isinstance(detail, dict)
    with pytest.raises(ValueError):
        DomainEvent.from_detail({**detail, **broken})


def test_every_event_type_has_a_source() -> None:
    assert {ev.CORE_BANKING_SOURCE, ev.MARKETPLACE_SOURCE} == {
        DomainEvent("e", t, datetime.now(UTC), "c", None, "u").source for t in ev.EVENT_TYPES
    }
    assert len(ev.EVENT_TYPES) == 10


class ListOutbox:
    def __init__(self, events: list[DomainEvent]) -> None:
        self.events = events
        self.published: list[str] = []

    def pending(self, limit: int) -> list[DomainEvent]:
        return [e for e in self.events if e.event_id not in self.published][:limit]

    def mark_published(self, event_ids: Sequence[str]) -> None:
        self.published.extend(event_ids)


def test_one_failing_handler_does_not_stop_the_others_and_the_event_is_retried_then_dead_lettered() -> None:
    make = EventFactory(SequentialIds(), ManualClock())
    seen: list[str] = []

    def works(event: DomainEvent) -> None:
        seen.append(event.event_id)

    def breaks(event: DomainEvent) -> None:
        raise RuntimeError("boom")

    bus = EventBus({ev.ORDER_CONFIRMED: [breaks, works], ev.ORDER_CANCELLED: [works]})
    bad = make(ev.OrderConfirmed("ord-1", "p-1", 1), "u", "c", None)
    good = make(ev.OrderCancelled("ord-2", "p-1", 1, reason="TIMEOUT"), "u", "c", None)
    outbox = ListOutbox([bad, good])
    relay = OutboxRelay(outbox, InProcessPublisher(bus), max_attempts=3)
    relay.drain()
    assert relay.dead_letters == [bad]
    assert seen.count(bad.event_id) == 3  # retried until dead-lettered
    assert seen.count(good.event_id) == 1
    assert outbox.pending(10) == []


def test_the_saga_facts_have_types_and_keep_the_contracts_payload() -> None:
    detail = example()["detail"]
    assert isinstance(detail, dict)
    event = DomainEvent.from_detail(detail)
    initiated = ev.PurchaseInitiated.of(event)
    assert (initiated.quantity, initiated.amount) == (1, Money.of("499.00", "MXN"))
    assert initiated.payload() == detail["payload"]  # same keys, same order, same values
    assert list(initiated.payload()) == list(detail["payload"])
    with pytest.raises(ValueError):
        ev.PaymentFailed.of(event)  # a fact is read only from its own event type
    # A flag is on the wire only when set; a null stays null.
    assert ev.PaymentFailed(*initiated.carried(), reason="TIMEOUT").payload() == {
        "order_id": "ord-01",
        "product_id": "p-100",
        "quantity": 1,
        "reason": "TIMEOUT",
    }
    assert ev.PaymentCompleted("o", "p", 2, transfer_id="t", swept=True).payload()["swept"] is True
    transfer = ev.TransferCompleted("trf-1", "acc-1", "acc-2", None, Money(150))
    assert transfer.payload() == {
        "transfer_id": "trf-1",
        "from_account_id": "acc-1",
        "to_account_id": "acc-2",
        "beneficiary_id": None,
        "amount": "1.50",
        "currency": "MXN",
    }
    stamped = EventFactory(SequentialIds(), ManualClock())(transfer, "u-ana", "corr", None)
    assert ev.TransferCompleted.of(stamped) == transfer
