"""Every operation in every agent format: real-format events in, exact response shapes out."""

from __future__ import annotations

import json
from typing import Any

import pytest
from dependency_injector import providers

from centli.entrypoints import aws_lambda
from centli.entrypoints.operations import BY_ID, OPERATIONS
from tests.containers import overridden
from tests.unit.entrypoints.conftest import FORMATS, Harness, agentcore_context, assertion, decode, example

READS: dict[str, dict[str, Any]] = {
    "listAccounts": {},
    "getBalance": {"account_id": "acc-0001"},
    "listTransactions": {"account_id": "acc-0001", "limit": "2"},
    "listBeneficiaries": {},
    "searchProducts": {"query": "audifonos"},
    "getProduct": {"product_id": "p-100"},
    "listOrders": {"limit": "5"},
}


def params_for(operation: str, seeded: dict[str, str], fmt: str) -> dict[str, Any]:
    if operation in READS:
        return READS[operation]
    if operation == "getTransfer":
        return {"transfer_id": seeded["u-ana:transfer"]}
    if operation == "getOrder":
        return {"order_id": seeded["u-ana:order"]}
    if operation == "createTransfer":
        return {
            "from_account_id": "acc-0001",
            "destination_id": "acc-0003",
            "amount": "12.50",
            "concept": "Ahorro",
            "idempotency_key": f"k-{fmt}",
        }
    assert operation == "createPurchase"
    return {"product_id": "p-200", "quantity": 1, "account_id": "acc-0001", "idempotency_key": f"k-{fmt}"}


def test_the_table_is_the_contract() -> None:
    routes = {(op.action_group, op.operation_id, op.method, op.path) for op in OPERATIONS}
    assert routes == {
        ("core-banking", "listAccounts", "GET", "/accounts"),
        ("core-banking", "getBalance", "GET", "/accounts/{account_id}/balance"),
        ("core-banking", "listTransactions", "GET", "/accounts/{account_id}/transactions"),
        ("core-banking", "listBeneficiaries", "GET", "/beneficiaries"),
        ("core-banking", "createTransfer", "POST", "/transfers"),
        ("core-banking", "getTransfer", "GET", "/transfers/{transfer_id}"),
        ("marketplace", "searchProducts", "GET", "/products"),
        ("marketplace", "getProduct", "GET", "/products/{product_id}"),
        ("marketplace", "createPurchase", "POST", "/purchases"),
        ("marketplace", "getOrder", "GET", "/orders/{order_id}"),
        ("marketplace", "listOrders", "GET", "/orders"),
    }
    assert set(BY_ID["createTransfer"].request.model_fields) == {
        "from_account_id",
        "destination_id",
        "amount",
        "concept",
        "idempotency_key",
    }
    assert set(BY_ID["listTransactions"].request.model_fields) == {"account_id", "limit", "cursor"}
    assert set(BY_ID["searchProducts"].request.model_fields) == {"query", "category", "limit", "cursor"}
    assert set(BY_ID["createPurchase"].request.model_fields) == {
        "product_id",
        "quantity",
        "account_id",
        "idempotency_key",
    }
    assert set(BY_ID["listOrders"].request.model_fields) == {"limit", "cursor"}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("operation", [op.operation_id for op in OPERATIONS])
def test_every_operation_answers_in_every_format(
    harness: Harness, seeded: dict[str, str], operation: str, fmt: str
) -> None:
    reply = harness.call(fmt, operation, params_for(operation, seeded, fmt))
    assert reply.status == 200, reply.body
    assert reply.state is None
    assert set(reply.body) == set(BY_ID[operation].response.model_fields)
    BY_ID[operation].response.model_validate(reply.body)


def test_bodies_carry_the_contract_fields_and_values(harness: Harness, seeded: dict[str, str]) -> None:
    accounts = harness.call("openapi", "listAccounts").body["accounts"]
    assert {a["account_id"]: a["balance"] for a in accounts} == {"acc-0001": "24501.00", "acc-0003": "1000.00"}
    assert all(a["currency"] == "MXN" and a["alias"] for a in accounts)
    history = harness.call("function", "listTransactions", {"account_id": "acc-0001", "limit": "2"}).body
    first = history["transactions"][0]
    assert set(first) == {
        "transaction_id",
        "timestamp",
        "direction",
        "amount",
        "currency",
        "description",
        "balance_after",
    }
    # Newest first: Luis's 10.00 to Ana came last, after Ana's purchase payment.
    assert [(t["direction"], t["amount"], t["balance_after"]) for t in history["transactions"]] == [
        ("CREDIT", "10.00", "24501.00"),
        ("DEBIT", "499.00", "24491.00"),
    ]
    assert history["next_cursor"]
    older = harness.call(
        "agentcore", "listTransactions", {"account_id": "acc-0001", "limit": 50, "cursor": history["next_cursor"]}
    ).body
    assert [(t["direction"], t["amount"]) for t in older["transactions"]] == [
        ("DEBIT", "10.00"),
        ("CREDIT", "25000.00"),
    ]
    assert older["next_cursor"] is None  # the opening balance is the oldest entry
    beneficiaries = harness.call("openapi", "listBeneficiaries").body
    assert beneficiaries == {
        "beneficiaries": [{"beneficiary_id": "ben-mama", "alias": "Mamá", "account_last4": "0002"}],
        "truncated": False,
    }
    transfer = harness.call("openapi", "getTransfer", {"transfer_id": seeded["u-ana:transfer"]}).body
    assert transfer["amount"] == "10.00" and transfer["currency"] == "MXN" and transfer["status"] == "COMPLETED"
    assert transfer["from_account_id"] == "acc-0001" and transfer["to_account_last4"] == "0002"
    order = harness.call("openapi", "getOrder", {"order_id": seeded["u-ana:order"]}).body
    assert order["status"] == "CONFIRMED"  # the saga ran in-process after the write
    assert (order["total"], order["currency"], order["quantity"]) == ("499.00", "MXN", 1)
    product = harness.call("function", "getProduct", {"product_id": "p-100"}).body
    assert product == {
        "product_id": "p-100",
        "name": "Audífonos inalámbricos",
        "category": "electronics",
        "price": "499.00",
        "currency": "MXN",
        "available": 8,
    }


def test_the_openapi_examples_get_exact_envelopes(harness: Harness) -> None:
    event = example("bedrock-openapi-getBalance.json")
    raw = aws_lambda.core_banking_handler(event, None)
    assert raw == {
        "messageVersion": "1.0",
        "response": {
            "actionGroup": "core-banking",
            "apiPath": "/accounts/{account_id}/balance",
            "httpMethod": "GET",
            "httpStatusCode": 200,
            "responseBody": {
                "application/json": {
                    "body": json.dumps(
                        {"account_id": "acc-0001", "alias": "Nómina", "currency": "MXN", "balance": "25000.00"},
                        ensure_ascii=False,
                        separators=(",", ":"),
                    )
                }
            },
        },
        "sessionAttributes": {"user_id": "u-ana"},
        "promptSessionAttributes": {},
    }
    transfer = decode("openapi", aws_lambda.core_banking_handler(example("bedrock-openapi-createTransfer.json"), None))
    assert transfer.status == 200
    assert (transfer.body["amount"], transfer.body["beneficiary_id"]) == ("500.00", "ben-mama")
    assert harness.call("openapi", "getBalance", {"account_id": "acc-0001"}).body["balance"] == "24500.00"


def test_the_function_example_gets_an_exact_envelope(harness: Harness) -> None:
    raw = aws_lambda.marketplace_handler(example("bedrock-function-createPurchase.json"), None)
    response = raw["response"]
    assert response["actionGroup"] == "marketplace" and response["function"] == "createPurchase"
    assert set(response["functionResponse"]) == {"responseBody"}  # success: no responseState
    body = json.loads(response["functionResponse"]["responseBody"]["TEXT"]["body"])
    assert (body["status"], body["total"], body["product_id"]) == ("PENDING", "499.00", "p-100")
    assert raw["sessionAttributes"] == {"user_id": "u-ana"}


def test_a_retried_agent_turn_does_not_pay_twice(harness: Harness) -> None:
    """No idempotency_key: the key derived from session, utterance and parameters dedupes the retry."""
    event = example("bedrock-openapi-createTransfer.json")
    first = decode("openapi", aws_lambda.core_banking_handler(event, None))
    again = decode("openapi", aws_lambda.core_banking_handler(json.loads(json.dumps(event)), None))
    assert (first.body["replayed"], again.body["replayed"]) == (False, True)
    assert {**first.body, "replayed": True} == again.body
    assert harness.call("openapi", "getBalance", {"account_id": "acc-0001"}).body["balance"] == "24500.00"
    event["inputText"] = "Otra vez, mándale 500 a mi mamá"  # a new turn is a new request
    third = decode("openapi", aws_lambda.core_banking_handler(event, None))
    assert third.body["transfer_id"] != first.body["transfer_id"]
    assert harness.call("openapi", "getBalance", {"account_id": "acc-0001"}).body["balance"] == "24000.00"


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_replayed_write_says_so_in_every_format(harness: Harness, fmt: str) -> None:
    writes = {
        "createTransfer": {"from_account_id": "acc-0001", "destination_id": "ben-mama", "amount": "5"},
        "createPurchase": {"product_id": "p-100", "quantity": "1", "account_id": "acc-0001"},
    }
    for operation, base in writes.items():
        params = {**base, "idempotency_key": f"replay-{fmt}-{operation}"}
        first = harness.call(fmt, operation, params)
        again = harness.call(fmt, operation, params)
        assert first.status == again.status == 200, (first.body, again.body)
        assert first.body["replayed"] is False and again.body["replayed"] is True
        assert {**first.body, "replayed": True} == again.body  # the earlier result, marked as such
    assert harness.call(fmt, "getBalance", {"account_id": "acc-0001"}).body["balance"] == "24496.00"  # 5 + 499 once


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("destination", "kind", "last4"), [("acc-0003", "OWN_ACCOUNT", "0003"), ("ben-mama", "BENEFICIARY", "0002")]
)
def test_create_transfer_takes_five_parameters_for_either_destination(
    harness: Harness, fmt: str, destination: str, kind: str, last4: str
) -> None:
    params = {
        "from_account_id": "acc-0001",
        "destination_id": destination,
        "amount": "10.00",
        "concept": "Cinco",
        "idempotency_key": f"five-{fmt}-{kind}",
    }
    assert len(params) == 5
    reply = harness.call(fmt, "createTransfer", params)
    assert reply.status == 200, reply.body
    assert (reply.body["destination_type"], reply.body["to_account_last4"], reply.body["currency"]) == (
        kind,
        last4,
        "MXN",
    )
    assert reply.body["beneficiary_id"] == (destination if kind == "BENEFICIARY" else None)
    unknown = harness.call(fmt, "createTransfer", {**params, "destination_id": "ben-nadie", "idempotency_key": "u1"})
    assert (unknown.status, unknown.body["error"]["code"]) == (404, "DESTINATION_NOT_FOUND")
    assert "listBeneficiaries" in unknown.body["error"]["message"]


def test_an_explicit_key_reused_for_another_request_conflicts(harness: Harness) -> None:
    params = {"from_account_id": "acc-0001", "destination_id": "ben-mama", "amount": "5", "idempotency_key": "k1"}
    assert harness.call("openapi", "createTransfer", params).status == 200
    conflict = harness.call("function", "createTransfer", {**params, "amount": "6"})
    assert conflict.body["error"]["code"] == "IDEMPOTENCY_CONFLICT" and conflict.state is None


@pytest.mark.parametrize(
    ("fmt", "operation", "params", "status", "code", "state"),
    [
        ("openapi", "getBalance", {"account_id": "acc-9999"}, 404, "ACCOUNT_NOT_FOUND", None),
        ("function", "getBalance", {"account_id": "acc-9999"}, 404, "ACCOUNT_NOT_FOUND", "REPROMPT"),
        ("agentcore", "getBalance", {"account_id": "acc-9999"}, 404, "ACCOUNT_NOT_FOUND", None),
        ("openapi", "getBalance", {}, 400, "INVALID_INPUT", None),
        ("function", "getBalance", {"account_id": "a", "color": "red"}, 400, "INVALID_INPUT", "REPROMPT"),
        ("openapi", "listTransactions", {"account_id": "acc-0001", "limit": "51"}, 400, "INVALID_INPUT", None),
        ("openapi", "listTransactions", {"account_id": "acc-0001", "cursor": "x.y"}, 400, "INVALID_CURSOR", None),
        ("function", "getProduct", {"product_id": "p" * 65}, 400, "INVALID_INPUT", "REPROMPT"),
        ("openapi", "getProduct", {"product_id": "p-999"}, 404, "PRODUCT_NOT_FOUND", None),
        ("openapi", "getOrder", {"order_id": "ord-x"}, 404, "ORDER_NOT_FOUND", None),
        ("openapi", "getTransfer", {"transfer_id": "trf-x"}, 404, "TRANSFER_NOT_FOUND", None),
        (
            "function",
            "createTransfer",
            {"from_account_id": "acc-0003", "destination_id": "ben-mama", "amount": "5000.00"},
            422,
            "INSUFFICIENT_FUNDS",
            None,
        ),
        (
            "openapi",
            "createTransfer",
            {"from_account_id": "acc-0001", "destination_id": "ben-mama", "amount": "50000.01"},
            422,
            "LIMIT_EXCEEDED",
            None,
        ),
        (
            "function",
            "createTransfer",
            {"from_account_id": "acc-0001", "destination_id": "ben-mama", "amount": "1e3"},
            400,
            "INVALID_AMOUNT",
            "REPROMPT",
        ),
        (
            "openapi",
            "createTransfer",
            {"from_account_id": "acc-0001", "destination_id": "acc-0002", "amount": "10"},
            404,
            "DESTINATION_NOT_FOUND",
            None,
        ),
        (
            "function",
            "createPurchase",
            {"product_id": "p-200", "quantity": "4", "account_id": "acc-0001"},
            422,
            "OUT_OF_STOCK",
            None,
        ),
        (
            "agentcore",
            "createPurchase",
            {"product_id": "p-100", "quantity": 1, "account_id": "acc-0001"},
            400,
            "INVALID_INPUT",
            None,
        ),
    ],
)
def test_unhappy_paths_map_to_the_contract(
    harness: Harness, fmt: str, operation: str, params: dict[str, Any], status: int, code: str, state: str | None
) -> None:
    before = harness.snapshot()
    reply = harness.call(fmt, operation, params)
    assert (reply.status, reply.body["error"]["code"], reply.state) == (status, code, state)
    assert set(reply.body) == {"error"} and set(reply.body["error"]) == {"code", "message"}
    assert harness.snapshot() == before


def test_amounts_arriving_as_json_numbers_are_exact(harness: Harness) -> None:
    params = {"from_account_id": "acc-0001", "destination_id": "acc-0003", "amount": 0.1, "idempotency_key": "n1"}
    reply = harness.call("agentcore", "createTransfer", params)
    assert reply.body["amount"] == "0.10"
    too_precise = harness.call("agentcore", "createTransfer", {**params, "amount": 0.125, "idempotency_key": "n2"})
    assert too_precise.body["error"]["code"] == "INVALID_AMOUNT"


def test_an_operation_sent_to_the_other_action_group_names_the_group_that_has_it(harness: Harness) -> None:
    event = example("bedrock-openapi-getBalance.json")
    reply = decode("openapi", aws_lambda.marketplace_handler(event, None))
    assert (reply.status, reply.body["error"]["code"]) == (400, "WRONG_ACTION_GROUP")
    assert reply.body["error"]["message"] == (
        "getBalance belongs to the core-banking action group, not marketplace: "
        "send it to the core-banking action group's function."
    )
    function_event = example("bedrock-function-createPurchase.json")
    reply = decode("function", aws_lambda.core_banking_handler(function_event, None))
    assert reply.body["error"]["code"] == "WRONG_ACTION_GROUP"
    assert "belongs to the marketplace action group" in reply.body["error"]["message"]
    assert reply.state is None  # the model cannot fix the agent's wiring by asking again
    tool = decode(
        "agentcore",
        aws_lambda.core_banking_handler(
            {IDENTITY_KEY: assertion("u-ana", tool="listOrders", target="centli-core-banking")},
            agentcore_context("listOrders"),
        ),
    )
    assert (tool.status, tool.body["error"]["code"]) == (400, "WRONG_ACTION_GROUP")
    assert "marketplace" in tool.body["error"]["message"]


def test_unknown_paths_and_methods_are_unknown_operations(harness: Harness) -> None:
    for path, method in (("/accounts", "DELETE"), ("/admin", "GET"), ("/accounts/acc-0001/balance", "GET")):
        event = {**example("bedrock-openapi-getBalance.json"), "apiPath": path, "httpMethod": method}
        reply = decode("openapi", aws_lambda.core_banking_handler(event, None))
        assert (reply.status, reply.body["error"]["code"]) == (400, "UNKNOWN_OPERATION")
        assert reply.raw["response"]["apiPath"] == path  # echoed for the agent


def test_warmup_returns_at_once_and_builds_nothing() -> None:
    container = aws_lambda.container
    built: list[str] = []

    def settings_that_fail() -> None:
        built.append("settings")
        raise RuntimeError("the container was touched")

    with overridden(container, settings=providers.Callable(settings_that_fail)):
        assert aws_lambda.core_banking_handler({"source": "warmup"}, None) == {"warmed": True}
        assert aws_lambda.marketplace_handler({"source": "warmup"}, None) == {"warmed": True}
        assert built == []
        # A real call does build, and a failure there is still a well-formed 500.
        reply = decode("openapi", aws_lambda.core_banking_handler(example("bedrock-openapi-getBalance.json"), None))
        assert (reply.status, reply.body["error"]["code"]) == (500, "INTERNAL_ERROR")
        assert "touched" not in json.dumps(reply.raw)
        assert built == ["settings"]


IDENTITY_KEY = "centli_identity"


def test_the_neutral_call_serves_a_local_caller(harness: Harness) -> None:
    from centli.entrypoints.pipeline import execute, neutral_call

    call = neutral_call("getBalance", {"account_id": "acc-0003"}, "u-ana", correlation_id="local-1")
    outcome = execute(harness.app, call)
    assert (outcome.result.status, outcome.result.body["balance"], outcome.code) == (200, "1000.00", "OK")
    write = neutral_call(
        "createPurchase", {"product_id": "p-200", "quantity": 1, "account_id": "acc-0003"}, "u-ana", correlation_id="l2"
    )
    refused = execute(harness.app, write)  # no agent turn to derive a key from
    assert (refused.result.status, refused.code) == (400, "INVALID_INPUT")


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_broken_configuration_still_answers_in_the_callers_format(fmt: str) -> None:
    container = aws_lambda.container

    def no_settings() -> None:
        raise RuntimeError("CENTLI_BACKEND is wrong")

    with overridden(container, settings=providers.Callable(no_settings)):
        from tests.unit.entrypoints.conftest import build_event

        event, context = build_event(fmt, "getOrder", {"order_id": "o-1"}, user="u-ana", session="s", text="t")
        reply = decode(fmt, aws_lambda.marketplace_handler(event, context))
        assert (reply.status, reply.body["error"]["code"]) == (500, "INTERNAL_ERROR")
        assert "CENTLI_BACKEND" not in json.dumps(reply.raw)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("operation", [op.operation_id for op in OPERATIONS])
def test_every_operation_refuses_unknown_parameters_and_missing_identity(
    harness: Harness, seeded: dict[str, str], operation: str, fmt: str
) -> None:
    before = harness.snapshot()
    params = {**params_for(operation, seeded, fmt), "idempotency_key": "u1"} if BY_ID[operation].write else {}
    params = params or params_for(operation, seeded, fmt)
    extra = harness.call(fmt, operation, {**params, "note": "hola"})
    assert (extra.status, extra.body["error"]["code"]) == (400, "INVALID_INPUT")
    assert extra.state == ("REPROMPT" if fmt == "function" else None)
    anonymous = harness.call(fmt, operation, params, user=None)
    assert (anonymous.status, anonymous.body["error"]["code"]) == (401, "UNAUTHENTICATED")
    assert harness.snapshot() == before
