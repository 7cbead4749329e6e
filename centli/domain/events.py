"""The event envelope shared by the outbox, the buses and EventBridge ``Detail``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from centli.ports.clock import Clock, IdGenerator

EVENT_BUS_NAME: Final = "centli-event-bus"
CORE_BANKING_SOURCE: Final = "centli.core-banking"
MARKETPLACE_SOURCE: Final = "centli.marketplace"

PURCHASE_INITIATED: Final = "PURCHASE_INITIATED"
INVENTORY_RESERVED: Final = "INVENTORY_RESERVED"
PAYMENT_COMPLETED: Final = "PAYMENT_COMPLETED"
PAYMENT_FAILED: Final = "PAYMENT_FAILED"
INVENTORY_RELEASED: Final = "INVENTORY_RELEASED"
ORDER_CONFIRMED: Final = "ORDER_CONFIRMED"
ORDER_CANCELLED: Final = "ORDER_CANCELLED"
TRANSFER_REQUESTED: Final = "TRANSFER_REQUESTED"
TRANSFER_COMPLETED: Final = "TRANSFER_COMPLETED"
TRANSFER_FAILED: Final = "TRANSFER_FAILED"

_SOURCES: Final[dict[str, str]] = {
    PURCHASE_INITIATED: MARKETPLACE_SOURCE,
    INVENTORY_RESERVED: MARKETPLACE_SOURCE,
    INVENTORY_RELEASED: MARKETPLACE_SOURCE,
    ORDER_CONFIRMED: MARKETPLACE_SOURCE,
    ORDER_CANCELLED: MARKETPLACE_SOURCE,
    PAYMENT_COMPLETED: CORE_BANKING_SOURCE,
    PAYMENT_FAILED: CORE_BANKING_SOURCE,
    TRANSFER_REQUESTED: CORE_BANKING_SOURCE,
    TRANSFER_COMPLETED: CORE_BANKING_SOURCE,
    TRANSFER_FAILED: CORE_BANKING_SOURCE,
}
EVENT_TYPES: Final = frozenset(_SOURCES)

#: What a consumer did with an event, recorded with its inbox mark (in the same atomic write).
PROCESSED: Final = "processed"
PAID: Final = "paid"
DECLINED: Final = "declined"
CONFIRMED: Final = "confirmed"
RELEASED: Final = "released"
ALREADY_SETTLED: Final = "already-settled"


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """An immutable fact. ``payload`` holds JSON values only (amounts as decimal strings)."""

    event_id: str
    type: str
    occurred_at: datetime
    correlation_id: str
    causation_id: str | None
    user_id: str
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return _SOURCES[self.type]

    def to_detail(self) -> dict[str, Any]:
        """The envelope as JSON-ready data (EventBridge ``Detail``)."""
        return {
            "event_id": self.event_id,
            "type": self.type,
            "occurred_at": _iso_millis(self.occurred_at),
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "user_id": self.user_id,
            "payload": dict(self.payload),
        }

    @classmethod
    def from_detail(cls, detail: dict[str, Any]) -> DomainEvent:
        event_type = str(detail["type"])
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {event_type!r}")
        payload = detail.get("payload") or {}
        if not isinstance(payload, dict):
            raise ValueError("payload must be an object")
        occurred = str(detail["occurred_at"]).replace("Z", "+00:00")
        causation = detail.get("causation_id")
        return cls(
            event_id=str(detail["event_id"]),
            type=event_type,
            occurred_at=datetime.fromisoformat(occurred),
            correlation_id=str(detail["correlation_id"]),
            causation_id=None if causation is None else str(causation),
            user_id=str(detail["user_id"]),
            payload=payload,
        )


def _iso_millis(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventAlreadyProcessed(Exception):
    """Raised by a unit of work's commit when a consumer already handled this event_id."""

    def __init__(self, consumer: str, event_id: str) -> None:
        super().__init__(f"{consumer} already processed {event_id}")
        self.consumer = consumer
        self.event_id = event_id


class EventFactory:
    """Stamps new events with an id and the application's clock."""

    def __init__(self, ids: IdGenerator, clock: Clock) -> None:
        self._ids = ids
        self._clock = clock

    def __call__(
        self, type_: str, user_id: str, correlation_id: str, causation_id: str | None, payload: dict[str, Any]
    ) -> DomainEvent:
        return DomainEvent(
            event_id=self._ids.new_id("evt"),
            type=type_,
            occurred_at=self._clock.now(),
            correlation_id=correlation_id,
            causation_id=causation_id,
            user_id=user_id,
            payload=payload,
        )
