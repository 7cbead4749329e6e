"""Every log line of a full scenario is JSON with a correlation_id, and carries no customer data."""

from __future__ import annotations

import json
from typing import Any

import pytest
from dependency_injector import providers

from centli.entrypoints import aws_lambda
from tests.unit.entrypoints.conftest import Harness, agentcore_context, assertion, decode, example

FORBIDDEN = [
    # full account ids (only the last 4 may appear)
    "acc-0001",
    "acc-0002",
    "acc-0003",
    "acc-0004",
    "acc-9000",
    # amounts and balances
    "500.00",
    "499.00",
    "25000",
    "24500",
    "24001",
    "1000.00",
    "800.50",
    "7777",
    # names, aliases, concepts, utterances, user ids
    "Ana López",
    "Luis Pérez",
    "Nómina",
    "Mamá",
    "Para el súper",
    "Renta secreta",
    "Mándale 500 pesos",
    "Cómprame los audífonos",
    "u-ana",
    "u-luis",
]


def lines_of(output: str) -> list[dict[str, Any]]:
    parsed = []
    for line in output.splitlines():
        if not line.strip():
            continue
        record = json.loads(line)  # every line is one JSON object
        assert isinstance(record, dict)
        parsed.append(record)
    return parsed


def run_scenario(harness: Harness) -> None:
    aws_lambda.core_banking_handler(example("bedrock-openapi-getBalance.json"), None)
    aws_lambda.core_banking_handler(example("bedrock-openapi-createTransfer.json"), None)
    aws_lambda.marketplace_handler(example("bedrock-function-createPurchase.json"), None)
    harness.call(
        "function",
        "createTransfer",
        {"from_account_id": "acc-0003", "destination_id": "acc-0001", "amount": "7777.00", "concept": "Renta secreta"},
    )
    harness.call("openapi", "getBalance", {"account_id": "acc-0002", "customer_id": "u-luis"})
    harness.call("openapi", "getBalance", {"account_id": "acc-0001"}, user=None)
    harness.call("openapi", "listTransactions", {"account_id": "acc-0001", "cursor": "forged.cursor"})
    aws_lambda.core_banking_handler(
        {"account_id": "acc-0001", "centli_identity": assertion("u-ana", arguments={"account_id": "acc-0001"})},
        agentcore_context("getBalance"),
    )
    aws_lambda.core_banking_handler({"account_id": "acc-0001"}, agentcore_context("getBalance"))
    aws_lambda.marketplace_handler("not an event", None)
    harness.app.settle()


def test_every_line_is_json_with_a_correlation_id_and_no_customer_data(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    run_scenario(harness)
    output = capsys.readouterr().out
    records = lines_of(output)
    assert len(records) >= 12
    assert all(isinstance(r.get("correlation_id"), str) and r["correlation_id"] for r in records)
    leaked = [word for word in FORBIDDEN if word in output]
    assert leaked == []
    outcomes = [r for r in records if r["message"] in ("operation finished", "operation refused")]
    assert {r["code"] for r in outcomes} >= {"OK", "INSUFFICIENT_FUNDS", "FORBIDDEN", "UNAUTHENTICATED"}
    assert all(isinstance(r["duration_ms"], float) and r["operation"] for r in outcomes if r["code"] == "OK")
    security = [r for r in records if r.get("security_event") == "CROSS_USER_PARAMETER"]
    assert len(security) == 1 and security[0]["level"] == "WARNING"
    # The domain's own lines (stdlib centli.* loggers) carry the invocation's correlation id too.
    domain = [r for r in records if r["service"] == "centli"]
    assert domain and all(r["correlation_id"] for r in domain)


def test_an_unexpected_failure_logs_its_trace_but_answers_safely(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    class BrokenStore:
        def unit_of_work(self) -> Any:
            raise RuntimeError("disk on fire at /var/lib/centli")

    aws_lambda.container.store.override(providers.Object(BrokenStore()))
    aws_lambda.container.reset_singletons()
    capsys.readouterr()
    event = example("bedrock-openapi-getBalance.json")
    event["sessionAttributes"]["correlation_id"] = "corr-test-500"
    reply = decode("openapi", aws_lambda.core_banking_handler(event, None))
    assert (reply.status, reply.body["error"]["code"]) == (500, "INTERNAL_ERROR")
    assert "disk on fire" not in json.dumps(reply.raw)
    records = lines_of(capsys.readouterr().out)
    assert all(r["correlation_id"] == "corr-test-500" for r in records)
    traces = [r for r in records if "exception" in r]
    assert traces and "disk on fire" in traces[0]["exception"]


def _saga_lines(output: str, orders: dict[str, str]) -> list[dict[str, Any]]:
    """Every line that names one of ``orders`` (order id -> its correlation id)."""
    return [r for r in lines_of(output) if r.get("order_id") in orders]


def test_saga_steps_drained_in_one_batch_log_their_own_orders_correlation_id(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two customers' purchases, one relay drain run by a third request: each line names its own order's saga."""
    from centli.domain.marketplace import CreatePurchase
    from centli.entrypoints.logs import bind, service_logger, unbind

    market = harness.app.marketplace
    orders = {}
    for user, account, corr in (("u-ana", "acc-0001", "corr-ana-1"), ("u-luis", "acc-0002", "corr-luis-1")):
        order = market.create_purchase(
            CreatePurchase.parse(user, "p-100", 1, account, f"k-{user}", correlation_id=corr)
        )
        orders[order.order_id] = corr
    capsys.readouterr()
    request_logger = service_logger("centli-core-banking")
    bind(request_logger, correlation_id="some-other-request")  # the thread that happens to drain the outbox
    try:
        assert harness.app.settle() >= 8  # both sagas, in the same relay batches
    finally:
        unbind(request_logger)
    lines = _saga_lines(capsys.readouterr().out, orders)
    messages = {r["message"] for r in lines}
    assert {"payment completed"} <= messages
    assert len({r["order_id"] for r in lines if r["message"] == "payment completed"}) == 2
    assert all(r["correlation_id"] == orders[r["order_id"]] for r in lines), lines


def test_the_sweeper_logs_each_stuck_orders_correlation_id(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import timedelta

    from centli.domain.marketplace import CreatePurchase

    market = harness.app.marketplace
    orders = {}
    for user, account, corr in (("u-ana", "acc-0001", "corr-ana-2"), ("u-luis", "acc-0002", "corr-luis-2")):
        order = market.create_purchase(
            CreatePurchase.parse(user, "p-100", 1, account, f"s-{user}", correlation_id=corr)
        )
        orders[order.order_id] = corr
    harness.clock.advance(timedelta(hours=1))
    capsys.readouterr()
    assert harness.app.sweep() == 2
    lines = _saga_lines(capsys.readouterr().out, orders)
    assert [r["message"] for r in lines].count("stuck order voided") == 2
    assert all(r["correlation_id"] == orders[r["order_id"]] for r in lines), lines


def test_the_lambda_saga_handler_logs_the_events_correlation_id(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    from centli.domain.marketplace import CreatePurchase

    order = harness.app.marketplace.create_purchase(
        CreatePurchase.parse("u-ana", "p-100", 1, "acc-0001", "l-1", correlation_id="corr-lambda")
    )
    store = harness.store
    initiated = next(e for e in store.pending(50) if e.type == "PURCHASE_INITIATED")
    capsys.readouterr()
    aws_lambda.saga_handler({"detail": initiated.to_detail()}, None)
    lines = _saga_lines(capsys.readouterr().out, {order.order_id: "corr-lambda"})
    assert lines and all(r["correlation_id"] == "corr-lambda" for r in lines)
