"""Publishing domain events to an EventBridge bus with PutEvents.

PutEvents takes at most 10 entries and 256 KB per request, and it can fail
per entry (``FailedEntryCount`` and an ``ErrorCode`` per result) while the
request as a whole succeeds. Only the failed entries are resent, with full
jitter backoff, a bounded number of times; what still fails is returned so the
caller (the outbox relay) can retry it later or dead-letter it. An entry over
256 KB can never succeed: it is returned as failed without being sent.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from centli.adapters.aws_clients import make_client
from centli.domain.backoff import jittered
from centli.domain.events import DomainEvent

if TYPE_CHECKING:
    from types_boto3_events.client import EventBridgeClient

log = logging.getLogger("centli.eventbridge")

MAX_ENTRIES_PER_CALL: Final = 10
#: The PutEvents limit, for one entry and for a whole request.
MAX_REQUEST_BYTES: Final = 256 * 1024
#: Attempts per batch, the first included (each on top of botocore's own retries of throttling and 5xx).
PUBLISH_ATTEMPTS: Final = 4
#: The backoff between attempts: full jitter, from 50 ms doubling up to 1 s.
BASE_DELAY: Final = 0.05
MAX_DELAY: Final = 1.0

Entry = dict[str, Any]
_Pending = list[tuple[DomainEvent, Entry]]


def entry_size(entry: Entry) -> int:
    """An entry's size as EventBridge counts it: Source, DetailType, Detail in UTF-8 (ours carry no Time, Resources)."""
    return sum(len(entry[name].encode("utf-8")) for name in ("Source", "DetailType", "Detail"))


def _log_extra(event: DomainEvent, **more: object) -> dict[str, object]:
    return {"event_type": event.type, "event_id": event.event_id, "correlation_id": event.correlation_id, **more}


class EventBridgePublisher:
    """An :class:`~centli.ports.messaging.EventPublisher` for one EventBridge bus."""

    def __init__(
        self,
        client: EventBridgeClient,
        bus_name: str,
        *,
        attempts: int = PUBLISH_ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._client: Any = client
        self._bus_name = bus_name
        self._attempts = attempts
        self._sleep = sleep
        self._rng = rng

    def entry(self, event: DomainEvent) -> Entry:
        return {
            "Source": event.source,
            "DetailType": event.type,
            "Detail": json.dumps(event.to_detail(), separators=(",", ":"), ensure_ascii=False),
            "EventBusName": self._bus_name,
        }

    def publish(self, events: Sequence[DomainEvent]) -> list[DomainEvent]:
        """Put every event on the bus; returns those that could not be, in their original order."""
        failed: set[str] = set()
        batch: _Pending = []
        batch_bytes = 0
        for event in events:
            entry = self.entry(event)
            size = entry_size(entry)
            if size > MAX_REQUEST_BYTES:
                log.error("event too large for EventBridge", extra=_log_extra(event, size_bytes=size))
                failed.add(event.event_id)
                continue
            if len(batch) == MAX_ENTRIES_PER_CALL or batch_bytes + size > MAX_REQUEST_BYTES:
                failed.update(self._send(batch))
                batch, batch_bytes = [], 0
            batch.append((event, entry))
            batch_bytes += size
        if batch:
            failed.update(self._send(batch))
        return [event for event in events if event.event_id in failed]

    def _send(self, batch: _Pending) -> list[str]:
        """One batch, resending only its failed entries; the ids of the events still not accepted."""
        pending = self._put(batch)
        for attempt in range(self._attempts - 1):
            if not pending:
                break
            self._sleep(jittered(attempt, BASE_DELAY, MAX_DELAY, self._rng))
            pending = self._put(pending)
        for event, _ in pending:
            log.error("event not accepted by EventBridge", extra=_log_extra(event))
        return [event.event_id for event, _ in pending]

    def _put(self, pending: _Pending) -> _Pending:
        """One PutEvents request; returns the entries it did not accept."""
        try:
            response = self._client.put_events(Entries=[entry for _, entry in pending])
        except (BotoCoreError, ClientError) as error:
            # botocore already retried throttling and 5xx; the whole request counts as failed.
            code = (
                error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else type(error).__name__
            )
            log.warning("PutEvents failed", extra={"error_code": code, "entries": len(pending)})
            return pending
        if not response.get("FailedEntryCount"):
            return []
        results: list[dict[str, Any]] = response.get("Entries", [])
        if len(results) != len(pending):  # never expected; treat the request as failed rather than guess
            return pending
        failed = [(item, result) for item, result in zip(pending, results, strict=True) if result.get("ErrorCode")]
        for (event, _), result in failed:
            log.warning("event entry failed", extra=_log_extra(event, error_code=result.get("ErrorCode")))
        return [item for item, _ in failed]


def make_events_client(endpoint_url: str | None = None) -> EventBridgeClient:
    """An EventBridge client: standard retries, short timeouts, a region only by default for a local endpoint."""
    client: EventBridgeClient = make_client("events", endpoint_url)
    return client
