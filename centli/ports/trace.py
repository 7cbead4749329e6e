"""Read-only lookups for ``centli trace``."""

from __future__ import annotations

from typing import Protocol

from centli.domain.audit import InboxRecord, OutboxRecord


class TraceReader(Protocol):
    def events_naming(self, text: str) -> list[OutboxRecord]:
        """Outbox events that may name ``text`` (as event, correlation, order or transfer id).

        A superset is fine: the caller keeps only exact matches.
        """
        ...

    def handled(self, consumer: str, event_id: str) -> InboxRecord | None:
        """What ``consumer`` did with ``event_id``, or None when it has not (yet)."""
        ...
