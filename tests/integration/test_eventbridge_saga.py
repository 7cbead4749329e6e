"""The purchase saga as it runs on AWS, against a real moto server over HTTP.

Stream records are built from the outbox table's unpublished items (see
:class:`OutboxStream` for why not from moto's streams) and handed to
``outbox_relay_handler`` as a Lambda stream batch; the relay puts the events on an EventBridge bus whose rules (one per
saga event type) target an SQS queue (moto delivers to SQS targets); the queue's
messages are handed to ``saga_handler`` as Lambda would get them from EventBridge.
Lambda's own retries, EventBridge's retry policy and the DLQ are not simulated
by moto: the handlers' failure semantics are asserted on what they return or raise.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import boto3
import pytest
from dependency_injector import providers
from pydantic import SecretStr

from centli.adapters.dynamodb import DynamoStore
from centli.adapters.memory import ManualClock, SequentialIds
from centli.domain import events as ev
from centli.domain.application import Application
from centli.domain.banking import CreateTransfer
from centli.domain.events import DomainEvent
from centli.domain.ledger import AccountRef
from centli.domain.loading import parse_bank_document
from centli.domain.marketplace import CreatePurchase
from centli.domain.settlement import SETTLEMENT_CONCEPT, clearing_for_order
from centli.entrypoints import aws_lambda
from centli.entrypoints.settings import Settings
from tests.backends.dynamodb import open_store
from tests.containers import overridden
from tests.integration.moto_server import moto_endpoint
from tests.unit.entrypoints.conftest import bank_document, build_event, decode

pytestmark = pytest.mark.integration

SAGA_RULES = {
    ev.PURCHASE_INITIATED: ev.MARKETPLACE_SOURCE,
    ev.PAYMENT_COMPLETED: ev.CORE_BANKING_SOURCE,
    ev.PAYMENT_FAILED: ev.CORE_BANKING_SOURCE,
}
_counter = itertools.count(1)


@dataclass
class OutboxStream:
    """Stream records of the outbox items not yet published, as Lambda's event source mapping hands them over.

    Built from the table, not read from moto's DynamoDB Streams: moto keeps the
    stream record of an item written by a TransactWriteItems that was then
    cancelled and rolled back, and after such a rollback it stopped recording the
    table's later writes. An unpublished item is handed over again on every read,
    as Lambda retries a record until it succeeds.
    """

    store: DynamoStore
    sequence_numbers: dict[str, str] = field(default_factory=dict)

    def read(self) -> list[dict[str, Any]]:
        table = self.store.tables.outbox
        items = self.store.client.scan(TableName=table, FilterExpression="attribute_exists(pending)")["Items"]
        return [self._record(item) for item in sorted(items, key=lambda item: item["pending_key"]["S"])]

    def _record(self, item: dict[str, Any]) -> dict[str, Any]:
        event_id = item["event_id"]["S"]
        sequence = self.sequence_numbers.setdefault(event_id, str(100000000000 + len(self.sequence_numbers)))
        return {
            "eventID": f"stream-{sequence}",
            "eventName": "INSERT",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "eventSourceARN": f"arn:aws:dynamodb:us-east-1:123456789012:table/{self.store.tables.outbox}/stream/x",
            "dynamodb": {
                "Keys": {"event_id": item["event_id"]},
                "NewImage": item,
                "SequenceNumber": sequence,
                "StreamViewType": "NEW_IMAGE",
            },
        }


@dataclass
class World:
    store: DynamoStore
    clock: ManualClock
    stream: OutboxStream
    sqs: Any
    queue_url: str
    delivered: list[dict[str, Any]] = field(default_factory=list)  # every EventBridge event handed to the saga

    @property
    def app(self) -> Application:
        app: Application = aws_lambda.container.application()
        return app

    def relay(self) -> int:
        """One stream batch through the relay Lambda; returns the INSERTs it saw."""
        records = self.stream.read()
        if records:
            assert aws_lambda.outbox_relay_handler({"Records": records}, None) == {"batchItemFailures": []}
        return sum(r["eventName"] == "INSERT" for r in records)

    def deliver(self) -> int:
        """Bus -> queue -> saga Lambda; returns how many events were handled."""
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            event = json.loads(message["Body"])
            aws_lambda.saga_handler(event, None)
            self.delivered.append(event)
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def run_until_quiet(self) -> None:
        for _ in range(20):
            relayed, delivered = self.relay(), self.deliver()
            if relayed == delivered == 0:
                return
        raise AssertionError("the saga did not settle")

    def balance(self, user_id: str, account_id: str) -> str:
        return self.app.banking.get_balance(user_id, account_id).balance.to_decimal_string()

    def delivered_of(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.delivered if e["detail-type"] == event_type]


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    aws_endpoint = moto_endpoint()
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)  # the container's EventBridge client goes to moto too
    region = os.environ["AWS_DEFAULT_REGION"]
    events = boto3.client("events", endpoint_url=aws_endpoint, region_name=region)
    sqs = boto3.client("sqs", endpoint_url=aws_endpoint, region_name=region)
    name = f"centli-saga-{os.getpid()}-{next(_counter)}"
    events.create_event_bus(Name=name)
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for event_type, source in SAGA_RULES.items():
        rule = f"{name}-{event_type}"
        pattern = {"source": [source], "detail-type": [event_type]}
        events.put_rule(Name=rule, EventBusName=name, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=rule, EventBusName=name, Targets=[{"Id": "saga", "Arn": queue_arn}])
    container = aws_lambda.container
    clock = ManualClock()
    try:
        with open_store() as store:
            store.load(parse_bank_document(bank_document(), clock.now()))
            settings = Settings(
                backend="dynamodb", cursor_secret=SecretStr("integration-cursor-secret-123"), event_bus_name=name
            )
            with overridden(container, settings=settings, store=store, clock=clock, ids=SequentialIds()):
                yield World(store, clock, OutboxStream(store), sqs, queue_url)
    finally:
        for event_type in SAGA_RULES:
            events.remove_targets(Rule=f"{name}-{event_type}", EventBusName=name, Ids=["saga"])
            events.delete_rule(Name=f"{name}-{event_type}", EventBusName=name)
        events.delete_event_bus(Name=name)
        sqs.delete_queue(QueueUrl=queue_url)


def purchase(world: World, account_id: str, key: str, quantity: int = 1) -> str:
    order = world.app.marketplace.create_purchase(
        CreatePurchase.parse("u-ana", "p-100", quantity, account_id, key, correlation_id=f"corr-{key}")
    )
    return order.order_id


def test_a_purchase_is_confirmed_through_the_bus_and_redelivery_changes_nothing(world: World) -> None:
    # Through the marketplace Lambda: on DynamoDB it must not relay in-process.
    event, context = build_event(
        "function",
        "createPurchase",
        {"product_id": "p-100", "quantity": "2", "account_id": "acc-0001"},
        user="u-ana",
        session="s-saga",
        text="compra",
    )
    reply = decode("function", aws_lambda.marketplace_handler(event, context))
    order_id = reply.body["order_id"]
    assert reply.body["status"] == "PENDING"
    assert {e.type for e in world.store.pending(10)} == {ev.INVENTORY_RESERVED, ev.PURCHASE_INITIATED}  # for the stream

    world.run_until_quiet()

    order = world.app.marketplace.get_order("u-ana", order_id)
    assert order.status == "CONFIRMED"
    assert world.balance("u-ana", "acc-0001") == "24002.00"
    assert world.balance("u-shop", "acc-9000") == "0.00"  # in one of the shop's clearing accounts until settled
    product = world.app.marketplace.get_product("p-100")
    assert (product.stock, product.reserved) == (8, 0)
    assert [e["detail-type"] for e in world.delivered] == [ev.PURCHASE_INITIATED, ev.PAYMENT_COMPLETED]
    assert world.store.pending(10) == []  # the relay marked every event published

    # EventBridge delivers at least once: the same events again have no effect and produce no events.
    for again in world.delivered_of(ev.PURCHASE_INITIATED) * 2 + world.delivered_of(ev.PAYMENT_COMPLETED) * 2:
        aws_lambda.saga_handler(again, None)
    assert world.relay() == 0
    assert world.balance("u-ana", "acc-0001") == "24002.00"
    assert world.balance("u-shop", "acc-9000") == "0.00"
    # The scheduled sweeper settles the shop's clearing account into its account: one settlement credit.
    assert aws_lambda.sweeper_handler({}, None) == 0
    assert world.balance("u-shop", "acc-9000") == "998.00"
    seller_history = world.app.banking.list_transactions("u-shop", "acc-9000").entries
    settled = [(e.direction, e.amount.to_decimal_string(), e.description) for e in seller_history[:1]]
    assert settled == [("CREDIT", "998.00", SETTLEMENT_CONCEPT)]
    payment = world.app.banking.get_transfer("u-ana", str(order.payment_transfer_id))
    assert payment.to == clearing_for_order(AccountRef("u-shop", "acc-9000"), order_id)
    product = world.app.marketplace.get_product("p-100")
    assert (product.stock, product.reserved) == (8, 0)


def test_insufficient_funds_at_payment_time_cancels_and_releases_stock(world: World) -> None:
    order_id = purchase(world, "acc-0003", "buy-savings")  # 499.00 of 1000.00: accepted
    assert world.app.marketplace.get_product("p-100").reserved == 1
    world.app.banking.create_transfer(
        CreateTransfer.parse("u-ana", "acc-0003", "600.00", "drain-savings", destination_id="acc-0001")
    )

    world.run_until_quiet()

    order = world.app.marketplace.get_order("u-ana", order_id)
    assert order.status == "CANCELLED"
    assert world.balance("u-ana", "acc-0003") == "400.00"
    assert world.balance("u-shop", "acc-9000") == "0.00"
    product = world.app.marketplace.get_product("p-100")
    assert (product.stock, product.reserved) == (10, 0)
    assert [e["detail-type"] for e in world.delivered] == [ev.PURCHASE_INITIATED, ev.PAYMENT_FAILED]
    assert world.delivered_of(ev.PAYMENT_FAILED)[0]["detail"]["payload"]["reason"] == "INSUFFICIENT_FUNDS"


def test_the_sweeper_cancels_an_order_stuck_past_the_timeout(world: World) -> None:
    order_id = purchase(world, "acc-0001", "stuck")
    world.clock.advance(timedelta(minutes=10))
    assert aws_lambda.sweeper_handler({}, None) == 0  # not stuck yet (the timeout is 15 minutes)
    world.clock.advance(timedelta(minutes=6))
    assert aws_lambda.sweeper_handler({}, None) == 1

    world.run_until_quiet()  # the late PURCHASE_INITIATED and the sweeper's PAYMENT_FAILED, in any order

    assert world.app.marketplace.get_order("u-ana", order_id).status == "CANCELLED"
    assert world.balance("u-ana", "acc-0001") == "25000.00"  # the void fenced the payment off
    assert world.balance("u-shop", "acc-9000") == "0.00"
    product = world.app.marketplace.get_product("p-100")
    assert (product.stock, product.reserved) == (10, 0)
    assert aws_lambda.sweeper_handler({}, None) == 0


def test_events_the_stream_relay_never_delivered_are_published_by_the_sweeper(world: World) -> None:
    # The stream relay is down: nothing is relayed; only the scheduled sweeper runs.
    order_id = purchase(world, "acc-0001", "relay-down")
    assert aws_lambda.sweeper_handler({}, None) == 0
    assert world.deliver() == 0  # too fresh to be overdue: the stream relay still has its chance
    for _ in range(3):  # minute 6: PURCHASE_INITIATED; minute 12: PAYMENT_COMPLETED; then quiet
        world.clock.advance(timedelta(minutes=6))
        assert aws_lambda.sweeper_handler({}, None) == 0  # nothing is stuck past the 15-minute timeout
        world.deliver()
    assert world.app.marketplace.get_order("u-ana", order_id).status == "CONFIRMED"
    assert world.balance("u-ana", "acc-0001") == "24501.00"
    assert world.balance("u-shop", "acc-9000") == "499.00"
    assert world.store.pending(10) == []  # everything published, the pending index is empty


class FailingPublisher:
    """Wraps the real publisher and refuses chosen events (moto never refuses a PutEvents entry)."""

    def __init__(self, inner: Any, refuse: set[str]) -> None:
        self.inner = inner
        self.refuse = refuse

    def publish(self, events: list[DomainEvent]) -> list[DomainEvent]:
        refused = [e for e in events if e.event_id in self.refuse]
        return refused + self.inner.publish([e for e in events if e.event_id not in self.refuse])


def test_the_relay_reports_only_the_records_it_could_not_publish(world: World) -> None:
    first = purchase(world, "acc-0001", "first")
    second = purchase(world, "acc-0001", "second")
    records = world.stream.read()
    published = {**records[0], "eventName": "MODIFY"}  # marked published: not an event to send
    by_order = {
        json.loads(r["dynamodb"]["NewImage"]["detail"]["S"])["payload"]["order_id"]: r
        for r in records
        if r["dynamodb"]["NewImage"]["type"]["S"] == ev.PURCHASE_INITIATED
    }
    refused_id = by_order[first]["dynamodb"]["NewImage"]["event_id"]["S"]
    unreadable = {
        "eventName": "INSERT",
        "dynamodb": {"SequenceNumber": "999", "NewImage": {"event_id": {"S": "evt-broken"}}},
    }
    container = aws_lambda.container
    container.event_publisher.override(providers.Object(FailingPublisher(container.event_publisher(), {refused_id})))

    response = aws_lambda.outbox_relay_handler({"Records": [published, *records, unreadable]}, None)

    assert response == {
        "batchItemFailures": [
            {"itemIdentifier": "999"},
            {"itemIdentifier": by_order[first]["dynamodb"]["SequenceNumber"]},
        ]
    }
    assert [e.event_id for e in world.store.pending(10)] == [refused_id]  # the other one was marked published
    world.deliver()
    assert [e["detail"]["payload"]["order_id"] for e in world.delivered] == [second]


def test_the_saga_handler_ignores_unknown_types_and_raises_on_what_it_cannot_handle(world: World) -> None:
    assert aws_lambda.saga_handler({"detail-type": "X", "detail": {"type": "NOT_OURS"}}, None) == {"handled": 0}
    assert aws_lambda.saga_handler({"detail": _detail(ev.ORDER_CONFIRMED, {"order_id": "o"})}, None) == {"handled": 0}
    with pytest.raises(KeyError):  # malformed: EventBridge retries, then dead-letters it
        aws_lambda.saga_handler({"detail": {"type": ev.PURCHASE_INITIATED}}, None)
    with pytest.raises(KeyError):  # a payment step whose payload lacks the amount fails loudly
        aws_lambda.saga_handler({"detail": _detail(ev.PURCHASE_INITIATED, {"order_id": "o"})}, None)
    with pytest.raises(ValueError, match="detail"):
        aws_lambda.saga_handler({"source": "aws.events"}, None)


def _detail(event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": f"evt-{event_type}",
        "type": event_type,
        "occurred_at": "2026-11-24T18:00:00.000Z",
        "correlation_id": "corr",
        "causation_id": None,
        "user_id": "u-ana",
        "payload": payload,
    }
