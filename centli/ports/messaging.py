"""Publishing events and relaying the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from centli.domain.events import DomainEvent


class EventPublisher(Protocol):
    def publish(self, events: Sequence[DomainEvent]) -> list[DomainEvent]:
        """Deliver events; return the ones that could not be delivered."""
        ...


class OutboxReader(Protocol):
    """What a local relay needs: events committed but not yet published."""

    def pending(self, limit: int) -> list[DomainEvent]:
        """Oldest first."""
        ...

    def mark_published(self, event_ids: Sequence[str]) -> None: ...
