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

# ../shared beside the repository (developer machines and CI have it; a bank engineer may not).
EXAMPLE = Path(__file__).resolve().parents[3] / "shared" / "examples" / "eventbridge-PURCHASE_INITIATED.json"
SHARED_EXAMPLE: dict[str, object] = {
    "detail-type": "PURCHASE_INITIATED",
    "source": "centli.marketplace",
    "detail": {
        "event_id": "01JDXK7Q3M4Z5Y6X7W8V9T0S1R",
        "type": "PURCHASE_INITIATED",
        "occurred_at": "2026-11-24T18:43:48.120Z",
        "correlation_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "causation_id": None,
        "user_id": "u-ana",
        "payload": {
            "order_id": "ord-01",
            "product_id": "p-100",
            "quantity": 1,
            "account_id": "acc-0001",
            "amount": "499.00",
            "currency": "MXN",
            "seller_account_id": "acc-9000",
        },
    },
}


def example() -> dict[str, object]:
    """The shared example when present (a developer machine), else the copy above."""
    if EXAMPLE.exists():
        loaded: dict[str, object] = json.loads(EXAMPLE.read_text("utf-8"))
        return loaded
    return SHARED_EXAMPLE


def test_the_copy_matches_the_shared_example() -> None:
    if not EXAMPLE.exists():
        pytest.skip("the team's shared examples folder is not on this machine; the copy above stands in")
    shared = json.loads(EXAMPLE.read_text("utf-8"))
    assert {k: shared[k] for k in SHARED_EXAMPLE} == SHARED_EXAMPLE


def test_envelope_round_trips_the_shared_example() -> None:
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
    event = EventFactory(SequentialIds(), ManualClock())(ev.PAYMENT_FAILED, "u-ana", "corr", "evt-0", {"a": "1"})
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
    bad = make(ev.ORDER_CONFIRMED, "u", "c", None, {})
    good = make(ev.ORDER_CANCELLED, "u", "c", None, {})
    outbox = ListOutbox([bad, good])
    relay = OutboxRelay(outbox, InProcessPublisher(bus), max_attempts=3)
    relay.drain()
    assert relay.dead_letters == [bad]
    assert seen.count(bad.event_id) == 3  # retried until dead-lettered
    assert seen.count(good.event_id) == 1
    assert outbox.pending(10) == []
