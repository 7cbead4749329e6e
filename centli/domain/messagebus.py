"""In-process event delivery: a bus of saga handlers and an outbox relay.

Event handlers log and re-raise nothing to their peers: one failing handler
does not stop the others, and the event counts as undelivered so the relay
retries it (consumers dedupe by event_id). After ``max_attempts`` the event
is dead-lettered, as an SQS DLQ does on AWS.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

from centli.domain.events import DomainEvent
from centli.domain.planted import PLANTED
from centli.domain.tracing import correlation
from centli.ports.clock import Clock
from centli.ports.faults import BEFORE_PUBLISH, FaultPoints, NoFaults
from centli.ports.messaging import EventPublisher, OutboxReader

log = logging.getLogger("centli.messagebus")

EventHandler = Callable[[DomainEvent], None]


def saga_step(handler: EventHandler) -> EventHandler:
    """``handler`` run under its event's correlation id: every line the step logs names the saga it serves."""

    def step(event: DomainEvent) -> None:
        with correlation(event.correlation_id):
            handler(event)

    return step


def _keys(event: DomainEvent) -> dict[str, str]:
    """What a log line about an event names (never its payload)."""
    return {"event_type": event.type, "event_id": event.event_id, "correlation_id": event.correlation_id}


class EventBus:
    """Calls every handler subscribed to an event's type, each under the event's correlation id.

    The one place saga steps are dispatched: the in-process relay (through
    :meth:`handle`) and the Lambda saga handler (through :meth:`handlers_for`).
    """

    def __init__(self, handlers: Mapping[str, Sequence[EventHandler]]) -> None:
        self._handlers = {type_: [saga_step(h) for h in hs] for type_, hs in handlers.items()}

    def handlers_for(self, event_type: str) -> list[EventHandler]:
        return list(self._handlers.get(event_type, ()))

    def handle(self, event: DomainEvent) -> bool:
        """True when every handler succeeded."""
        ok = True
        for handler in self._handlers.get(event.type, ()):
            try:
                handler(event)
            except Exception:
                ok = False
                log.exception("event handler failed", extra=_keys(event))
        return ok


class InProcessPublisher:
    """An :class:`EventPublisher` that hands events straight to an :class:`EventBus`."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus

    def publish(self, events: Sequence[DomainEvent]) -> list[DomainEvent]:
        return [event for event in events if not self._bus.handle(event)]


class OutboxRelay:
    """Moves committed outbox events to a publisher, at least once, oldest first."""

    def __init__(
        self,
        outbox: OutboxReader,
        publisher: EventPublisher,
        *,
        batch_size: int = 10,
        max_attempts: int = 5,
        faults: FaultPoints | None = None,
    ) -> None:
        self._outbox = outbox
        self._publisher = publisher
        self._batch_size = batch_size
        self._max_attempts = max_attempts
        self._faults = faults or NoFaults()
        self._attempts: dict[str, int] = {}
        self.dead_letters: list[DomainEvent] = []
        # One relay at a time: request threads and the sweeper all settle through the same relay.
        self._lock = threading.RLock()

    def relay_once(self) -> int:
        """Publish one batch; returns how many events left the outbox."""
        with self._lock:
            return self._relay_batch()

    def _relay_batch(self) -> int:
        batch = self._outbox.pending(self._batch_size)
        if not batch:
            return 0
        self._faults.check(BEFORE_PUBLISH)
        failed_ids = {event.event_id for event in self._publisher.publish(batch)}
        if PLANTED.relay_drops_partial_failures and len(failed_ids) < len(batch):
            failed_ids = set()  # planted bug 3 (centli.domain.planted): "mostly sent" counts as sent
        done: list[str] = []
        for event in batch:
            if event.event_id in failed_ids:
                attempts = self._attempts.get(event.event_id, 0) + 1
                if attempts < self._max_attempts:
                    self._attempts[event.event_id] = attempts
                    continue
                log.error("event dead-lettered", extra=_keys(event))
                self.dead_letters.append(event)
            self._attempts.pop(event.event_id, None)
            done.append(event.event_id)
        self._outbox.mark_published(done)
        return len(done)

    def drain(self, max_rounds: int = 1000) -> int:
        """Relay until the outbox is empty (handlers may add more events); returns events moved."""
        moved = 0
        with self._lock:
            for _ in range(max_rounds):
                if not self._outbox.pending(1):
                    break
                moved += self._relay_batch()
        return moved


class OverdueOutbox:
    """The events of an outbox still unpublished ``grace`` after they occurred.

    On AWS a stream relay publishes each event as it is committed; what it
    could not deliver stays pending, and the scheduled sweeper publishes these
    again (consumers dedupe by event_id, so an event sent twice is harmless).
    """

    def __init__(self, outbox: OutboxReader, clock: Clock, grace: timedelta) -> None:
        self._outbox = outbox
        self._clock = clock
        self._grace = grace

    def pending(self, limit: int) -> list[DomainEvent]:
        cutoff = self._clock.now() - self._grace
        return [event for event in self._outbox.pending(limit) if event.occurred_at < cutoff]

    def mark_published(self, event_ids: Sequence[str]) -> None:
        self._outbox.mark_published(event_ids)
