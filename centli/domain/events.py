"""The event envelope shared by the outbox, the buses and EventBridge ``Detail``, and the saga's facts.

The envelope (:class:`DomainEvent`) is the contract's wire shape, its payload
plain JSON. Each saga event's payload has a type here (:class:`PurchaseInitiated`,
:class:`PaymentCompleted`, ...): producers build one, consumers read one back
with :meth:`SagaFact.of`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, ClassVar, Final, Self

from centli.domain.money import Money
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

_SOURCES: Final[dict[str, str]] = dict.fromkeys(
    (PURCHASE_INITIATED, INVENTORY_RESERVED, INVENTORY_RELEASED, ORDER_CONFIRMED, ORDER_CANCELLED), MARKETPLACE_SOURCE
) | dict.fromkeys(
    (PAYMENT_COMPLETED, PAYMENT_FAILED, TRANSFER_REQUESTED, TRANSFER_COMPLETED, TRANSFER_FAILED), CORE_BANKING_SOURCE
)
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
            "occurred_at": self.occurred_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
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
        causation = detail.get("causation_id")
        return cls(
            event_id=str(detail["event_id"]),
            type=event_type,
            occurred_at=datetime.fromisoformat(str(detail["occurred_at"])),  # "Z" is read as UTC since Python 3.11
            correlation_id=str(detail["correlation_id"]),
            causation_id=None if causation is None else str(causation),
            user_id=str(detail["user_id"]),
            payload=payload,
        )


class EventAlreadyProcessed(Exception):
    """Raised by a unit of work's commit when a consumer already handled this event_id."""

    def __init__(self, consumer: str, event_id: str) -> None:
        super().__init__(f"{consumer} already processed {event_id}")
        self.consumer = consumer
        self.event_id = event_id


# the saga's facts: one type per payload ----------------------------------------
_FIELD_TYPES: Final[dict[str, type]] = {"str": str, "int": int, "bool": bool}


@dataclass(frozen=True, slots=True)
class SagaFact:
    """A payload with a type. On the wire: its fields in order; ``amount`` a :class:`Money` as the contract's
    ``amount`` (decimal text) plus ``currency``; a flag only when set (``False`` is omitted)."""

    type: ClassVar[str]

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Money):
                data[f.name], data["currency"] = value.to_decimal_string(), value.currency
            elif value is not False:
                data[f.name] = value
        return data

    @classmethod
    def of(cls, event: DomainEvent) -> Self:
        """The fact an event carries (its type must be this fact's)."""
        if event.type != cls.type:
            raise ValueError(f"{event.type} is not {cls.type}")
        p = event.payload
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.type == "Money":
                values[f.name] = Money.of(str(p[f.name]), str(p["currency"]))
            elif f.name in p:  # else the field's default
                value = p[f.name]
                values[f.name] = None if value is None else _FIELD_TYPES.get(str(f.type).split(" ")[0], str)(value)
        return cls(**values)


@dataclass(frozen=True, slots=True)
class OrderFacts(SagaFact):
    """What every step of a purchase carries forward (the seed lost product_id here)."""

    order_id: str
    product_id: str
    quantity: int

    def carried(self) -> tuple[str, str, int]:
        """The facts the next step's event carries forward: ``NextEvent(*facts.carried(), ...)``."""
        return self.order_id, self.product_id, self.quantity


@dataclass(frozen=True, slots=True)
class PurchaseInitiated(OrderFacts):
    """Everything the later steps need (DESIGN, how a purchase runs)."""

    type: ClassVar[str] = PURCHASE_INITIATED
    account_id: str
    amount: Money
    seller_account_id: str
    seller_user_id: str


@dataclass(frozen=True, slots=True)
class InventoryReserved(OrderFacts):
    type: ClassVar[str] = INVENTORY_RESERVED


@dataclass(frozen=True, slots=True)
class PaymentCompleted(OrderFacts):
    type: ClassVar[str] = PAYMENT_COMPLETED
    transfer_id: str
    #: Published again by the sweeper for a stuck order whose payment was already decided.
    swept: bool = False


@dataclass(frozen=True, slots=True)
class PaymentFailed(OrderFacts):
    type: ClassVar[str] = PAYMENT_FAILED
    reason: str
    #: Sent by the sweeper: a void (reason TIMEOUT), or a decline published again.
    swept: bool = False


@dataclass(frozen=True, slots=True)
class InventoryReleased(OrderFacts):
    type: ClassVar[str] = INVENTORY_RELEASED


@dataclass(frozen=True, slots=True)
class OrderConfirmed(OrderFacts):
    type: ClassVar[str] = ORDER_CONFIRMED


@dataclass(frozen=True, slots=True)
class OrderCancelled(OrderFacts):
    type: ClassVar[str] = ORDER_CANCELLED
    reason: str


@dataclass(frozen=True, slots=True)
class TransferCompleted(SagaFact):
    type: ClassVar[str] = TRANSFER_COMPLETED
    transfer_id: str
    from_account_id: str
    to_account_id: str
    beneficiary_id: str | None
    amount: Money


@dataclass(frozen=True, slots=True)
class EventFactory:
    """Stamps new events with an id and the application's clock."""

    ids: IdGenerator
    clock: Clock

    def __call__(self, fact: SagaFact, user_id: str, correlation_id: str, causation_id: str | None) -> DomainEvent:
        return DomainEvent(
            event_id=self.ids.new_id("evt"),
            type=fact.type,
            occurred_at=self.clock.now(),
            correlation_id=correlation_id,
            causation_id=causation_id,
            user_id=user_id,
            payload=fact.payload(),
        )
