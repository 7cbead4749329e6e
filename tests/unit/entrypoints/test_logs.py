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
