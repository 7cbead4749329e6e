"""EventBridgePublisher: batching, resending only failed entries, the retry budget and the size limit.

moto accepts every PutEvents entry: it simulates neither per-entry failures
(FailedEntryCount / ErrorCode) nor the 256 KB limit, so these tests use a
fake client and botocore's Stubber (which checks requests against the real API model).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from centli.adapters.eventbridge import EventBridgePublisher
from centli.adapters.eventbridge.publisher import MAX_REQUEST_BYTES, entry_size
from centli.domain import events as ev
from centli.domain.events import DomainEvent

BUS = "centli-event-bus"


def make_event(n: int, type_: str = ev.PURCHASE_INITIATED, note: str = "") -> DomainEvent:
    return DomainEvent(
        event_id=f"evt-{n:03d}",
        type=type_,
        occurred_at=datetime(2026, 11, 24, 18, 0, n % 60, 120000, tzinfo=UTC),
        correlation_id=f"corr-{n}",
        causation_id=None,
        user_id="u-ana",
        payload={"order_id": f"ord-{n}", "note": note},
    )


class FakeEvents:
    """Records every PutEvents request; ``reject`` decides per entry (event_id, attempt) -> error code or None."""

    def __init__(self, reject: Callable[[str, int], str | None] = lambda _id, _n: None) -> None:
        self.requests: list[list[dict[str, Any]]] = []
        self.accepted: list[str] = []
        self._reject = reject
        self._tries: dict[str, int] = {}

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.requests.append(Entries)
        results: list[dict[str, Any]] = []
        for entry in Entries:
            event_id = json.loads(entry["Detail"])["event_id"]
            attempt = self._tries.get(event_id, 0) + 1
            self._tries[event_id] = attempt
            code = self._reject(event_id, attempt)
            if code is None:
                self.accepted.append(event_id)
                results.append({"EventId": f"eb-{event_id}"})
            else:
                results.append({"ErrorCode": code, "ErrorMessage": "try again"})
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}


def ids(requests: list[dict[str, Any]]) -> list[str]:
    return [json.loads(entry["Detail"])["event_id"] for entry in requests]


def publisher(client: Any, sleeps: list[float] | None = None, attempts: int = 4) -> EventBridgePublisher:
    sink = sleeps if sleeps is not None else []
    return EventBridgePublisher(client, BUS, attempts=attempts, sleep=sink.append, rng=lambda: 1.0)


def test_twenty_five_events_go_in_batches_of_ten_ten_and_five() -> None:
    client = FakeEvents()
    events = [make_event(n) for n in range(25)]
    assert publisher(client).publish(events) == []
    assert [len(r) for r in client.requests] == [10, 10, 5]
    assert client.accepted == [e.event_id for e in events]
    first = client.requests[0][0]
    assert first["Source"] == "centli.marketplace" and first["DetailType"] == ev.PURCHASE_INITIATED
    assert first["EventBusName"] == BUS
    assert DomainEvent.from_detail(json.loads(first["Detail"])) == events[0]


def test_only_the_failed_entries_are_resent_with_backoff() -> None:
    flaky = {"evt-003", "evt-007"}
    client = FakeEvents(lambda event_id, attempt: "ThrottlingException" if event_id in flaky and attempt < 3 else None)
    sleeps: list[float] = []
    events = [make_event(n) for n in range(10)]
    assert publisher(client, sleeps).publish(events) == []
    assert [ids(r) for r in client.requests] == [
        [e.event_id for e in events],
        ["evt-003", "evt-007"],
        ["evt-003", "evt-007"],
    ]
    assert sorted(client.accepted) == sorted(e.event_id for e in events)  # each once
    assert len(client.accepted) == 10
    assert sleeps == [0.05, 0.1]  # exponential (rng pinned to its maximum)


def test_after_the_retry_budget_the_still_failed_events_are_returned() -> None:
    client = FakeEvents(lambda event_id, _n: "InternalFailure" if event_id in {"evt-012", "evt-001"} else None)
    events = [make_event(n) for n in range(15)]
    failed = publisher(client, attempts=3).publish(events)
    assert [e.event_id for e in failed] == ["evt-001", "evt-012"]  # in the caller's order
    assert [ids(r) for r in client.requests] == [
        [f"evt-{n:03d}" for n in range(10)],
        ["evt-001"],
        ["evt-001"],
        [f"evt-{n:03d}" for n in range(10, 15)],
        ["evt-012"],
        ["evt-012"],
    ]
    assert len(client.accepted) == 13


def test_a_whole_request_failure_counts_as_every_entry_failed() -> None:
    class Down:
        def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "PutEvents")

    events = [make_event(n) for n in range(3)]
    assert publisher(Down(), attempts=2).publish(events) == events


def test_an_oversized_entry_is_never_sent() -> None:
    client = FakeEvents()
    huge = make_event(1, note="x" * MAX_REQUEST_BYTES)
    small = [make_event(0), make_event(2)]
    failed = publisher(client).publish([small[0], huge, small[1]])
    assert failed == [huge]
    assert ids([e for r in client.requests for e in r]) == ["evt-000", "evt-002"]


def test_batches_also_respect_the_request_size_limit() -> None:
    client = FakeEvents()
    third = MAX_REQUEST_BYTES // 3
    events = [make_event(n, note="y" * (third - 400)) for n in range(5)]
    assert all(entry_size(publisher(client).entry(e)) < third for e in events)
    assert publisher(client).publish(events) == []
    assert [len(r) for r in client.requests] == [3, 2]
    assert all(sum(entry_size(e) for e in r) <= MAX_REQUEST_BYTES for r in client.requests)


def test_the_real_request_shape_with_stubber(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("events", region_name="us-east-1")
    events = [make_event(0), make_event(1, ev.PAYMENT_COMPLETED)]
    pub = publisher(client)
    entries = [pub.entry(e) for e in events]
    with Stubber(client) as stub:
        stub.add_response(
            "put_events",
            {"FailedEntryCount": 1, "Entries": [{"EventId": "a"}, {"ErrorCode": "ThrottlingException"}]},
            {"Entries": entries},
        )
        stub.add_response(
            "put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "b"}]}, {"Entries": entries[1:]}
        )
        assert pub.publish(events) == []
        stub.assert_no_pending_responses()
    assert entries[1]["Source"] == "centli.core-banking"
