"""``centli trace ID``: the saga's timeline for an order, a transfer or a correlation id.

Everything shown is read from what the writes stored: the outbox events (with
their causation), each consumer's inbox mark (what it did, and when, written
in the same atomic write as its effect), the order, its payment fence and the
transfers. Nothing is inferred from logs.

A duplicate delivery leaves no record by design (its write is rolled back, so
recording it would cost a write per duplicate); the inbox mark shown is what
turns every later delivery of that event into a no-op.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Final

from centli.domain import events as ev
from centli.domain.audit import OutboxRecord, iso_times
from centli.domain.banking import PAYMENT_CONSUMER, order_payment_key
from centli.domain.idempotency import IdempotencyRecord
from centli.domain.marketplace import CANCEL_CONSUMER, CONFIRM_CONSUMER
from centli.domain.money import Money
from centli.domain.orders import Order
from centli.ports.trace import TraceReader
from centli.ports.unit_of_work import UnitOfWorkFactory

#: Who consumes which event (the saga's table in centli.domain.application, by consumer name).
SAGA_CONSUMERS: Final[dict[str, tuple[str, ...]]] = {
    ev.PURCHASE_INITIATED: (PAYMENT_CONSUMER,),
    ev.PAYMENT_COMPLETED: (CONFIRM_CONSUMER,),
    ev.PAYMENT_FAILED: (CANCEL_CONSUMER,),
}
SWEEPER: Final = "sweeper"
CALLER: Final = "the customer's call"
#: What the trace shows of an order and of a transfer: these keys of their to_dict, and the amount as a decimal.
_ORDER_KEYS = {
    "order_id",
    "status",
    "product_id",
    "quantity",
    "currency",
    "version",
    "created_at",
    "updated_at",
    "cancel_reason",
    "payment_transfer_id",
}
_TRANSFER_KEYS = {"transfer_id", "kind", "from_account_id", "to_account_id", "currency", "created_at"}


@dataclass(frozen=True, slots=True)
class ConsumerStep:
    consumer: str
    outcome: str
    at: datetime | None


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    event_id: str
    type: str
    occurred_at: datetime
    caused_by: str
    published: bool
    facts: dict[str, Any]
    consumers: list[ConsumerStep]


@dataclass
class Trace:
    subject: str
    correlation_ids: list[str]
    order: Order | None = None
    payment_fence: IdempotencyRecord | None = None
    transfers: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[TimelineEvent] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return bool(self.timeline) or self.order is not None

    def to_dict(self) -> dict[str, Any]:
        order, fence = self.order, self.payment_fence
        return {
            "subject": self.subject,
            "correlation_ids": self.correlation_ids,
            "order": None if order is None else _shown(order.to_dict(), _ORDER_KEYS, total=order.total),
            "payment_fence": None if fence is None else {**fence.result, "decided_at": fence.created_at.isoformat()},
            "transfers": self.transfers,
            "timeline": [asdict(event, dict_factory=iso_times) for event in self.timeline],
        }


def _shown(data: dict[str, Any], keys: set[str], **amounts: Money) -> dict[str, Any]:
    shown = {key: value for key, value in data.items() if key in keys}
    return shown | {key: amount.to_decimal_string() for key, amount in amounts.items()}


def _names(record: OutboxRecord, subject: str) -> bool:
    event = record.event
    payload = event.payload
    return subject in (event.event_id, event.correlation_id, payload.get("order_id"), payload.get("transfer_id"))


def trace(subject: str, reader: TraceReader, uow: UnitOfWorkFactory) -> Trace:
    """The timeline of everything ``subject`` (an order, transfer, event or correlation id) belongs to."""
    records = {r.event.event_id: r for r in reader.events_naming(subject) if _names(r, subject)}
    correlations = sorted({r.event.correlation_id for r in records.values()})
    for correlation in correlations:
        if correlation != subject:
            records.update(
                (r.event.event_id, r)
                for r in reader.events_naming(correlation)
                if r.event.correlation_id == correlation
            )
    ordered = sorted(records.values(), key=lambda r: (r.event.occurred_at, r.event.event_id))
    result = Trace(subject, correlations)
    types = {r.event.event_id: r.event.type for r in ordered}
    order_refs = {(r.event.user_id, str(r.event.payload["order_id"])) for r in ordered if "order_id" in r.event.payload}
    transfer_refs = {
        (r.event.user_id, str(r.event.payload["transfer_id"])) for r in ordered if r.event.payload.get("transfer_id")
    }
    # One correlation id is one call: one order at most (the subject's own first, if it is one).
    chosen = sorted(order_refs, key=lambda ref: (ref[1] != subject, ref))[:1]
    with uow() as reads:
        for user_id, order_id in chosen:
            result.order = reads.orders.get(user_id, order_id)
            result.payment_fence = reads.idempotency.get(user_id, order_payment_key(order_id))
        for user_id, transfer_id in sorted(transfer_refs):
            transfer = reads.ledger.get_transfer(user_id, transfer_id)
            if transfer is not None:
                result.transfers.append(_shown(transfer.to_dict(), _TRANSFER_KEYS, amount=transfer.amount))
    fence = result.payment_fence
    for record in ordered:
        event = record.event
        if event.payload.get("swept"):
            caused_by = SWEEPER
        elif event.causation_id is None:
            caused_by = CALLER
        else:
            caused_by = f"{types.get(event.causation_id, 'event')} {event.causation_id}"
        steps = [_step(consumer, record, reader, fence) for consumer in SAGA_CONSUMERS.get(event.type, ())]
        facts = {k: v for k, v in event.payload.items() if k in ("order_id", "transfer_id", "reason", "quantity")}
        result.timeline.append(
            TimelineEvent(event.event_id, event.type, event.occurred_at, caused_by, record.published, facts, steps)
        )
    return result


def _step(consumer: str, record: OutboxRecord, reader: TraceReader, fence: IdempotencyRecord | None) -> ConsumerStep:
    event_id = record.event.event_id
    handled = reader.handled(consumer, event_id)
    if handled is not None:
        return ConsumerStep(consumer, handled.outcome or ev.PROCESSED, handled.processed_at)
    if consumer == PAYMENT_CONSUMER and fence is not None and fence.result.get("event_id") != event_id:
        # The fence was claimed first by another event (the sweeper's void, say): this one changed nothing.
        decided = str(fence.result.get("outcome", "")).lower()
        return ConsumerStep(consumer, f"ignored: payment already {decided}", None)
    return ConsumerStep(consumer, "not handled yet" if record.published else "waiting to be published", None)


def render(result: Trace) -> str:
    """The timeline as text for an operator's terminal."""
    lines = [f"trace {result.subject}  (correlation {', '.join(result.correlation_ids) or '-'})"]
    if result.order is not None:
        o = result.order
        lines.append(
            f"  order {o.order_id}: {o.status} v{o.version}, {o.quantity} x {o.product_id}, "
            f"{o.total.to_decimal_string()} {o.total.currency}"
            + (f", cancelled: {o.cancel_reason}" if o.cancel_reason else "")
        )
    if result.payment_fence is not None:
        outcome = result.payment_fence.result
        lines.append(f"  payment fence: {outcome.get('outcome')} at {result.payment_fence.created_at.isoformat()}")
    for t in result.transfers:
        lines.append(
            f"  transfer {t['transfer_id']} ({t['kind']}): {t['amount']} {t['currency']} "
            f"from {t['from_account_id']} to {t['to_account_id']} at {t['created_at']}"
        )
    for step in result.timeline:
        state = "published" if step.published else "PENDING"
        lines.append(f"{step.occurred_at.isoformat()}  {step.type:<20} {step.event_id}  by {step.caused_by}  [{state}]")
        for consumer in step.consumers:
            when = f" at {consumer.at.isoformat()}" if consumer.at else ""
            lines.append(f"    -> {consumer.consumer}: {consumer.outcome}{when}")
    return "\n".join(lines)
