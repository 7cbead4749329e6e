"""The local runtime over real HTTP with real clients: `centli serve` in its own process on a free port.

boto3's lambda client through the Invoke API, the REST mirror with an HTTP
client, the purchase saga (CONFIRMED, and CANCELLED through `centli sweep`),
and a restart that keeps every balance and order.
"""

from __future__ import annotations

import base64
import copy
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from centli.adapters.bedrock.identity import issue_assertion
from centli.entrypoints.lambda_functions import FUNCTIONS
from centli.entrypoints.operations import OPERATIONS
from tests.integration.local_runtime import ANA, REPO, LocalServer, centli, sqlite_env

pytestmark = pytest.mark.integration
EVENTS = REPO / "events"
IDENTITY_SECRET = "local-runtime-test-identity-secret"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    db = tmp_path_factory.mktemp("local-runtime") / "centli.db"
    running = LocalServer(db, extra_env={"CENTLI_AGENTCORE_IDENTITY_SECRET": IDENTITY_SECRET})
    try:
        yield running
    finally:
        assert running.stop() == 0


def lambda_client(server: LocalServer) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=server.base,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )


def event_file(fmt: str, operation_id: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / fmt / f"{operation_id}.json").read_text("utf-8"))
    return loaded


def with_ids(event: dict[str, Any], ids: dict[str, str], session: str) -> dict[str, Any]:
    """The example event with real ids in place of the placeholders, in its own agent session."""
    event = copy.deepcopy(event)
    event["sessionId"] = session
    lists = [event.get("parameters", [])]
    lists.append(event.get("requestBody", {}).get("content", {}).get("application/json", {}).get("properties", []))
    for parameters in lists:
        for parameter in parameters:
            if parameter["name"] in ids:
                parameter["value"] = ids[parameter["name"]]
    return event


def answer_of(fmt: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = payload["response"]
    if fmt == "bedrock-openapi":
        return response["httpStatusCode"], json.loads(response["responseBody"]["application/json"]["body"])
    body = json.loads(response["functionResponse"]["responseBody"]["TEXT"]["body"])
    return (200 if "responseState" not in response["functionResponse"] else 400), body


# Writes first, so the reads of a transfer and an order have real ids.
ORDER = sorted(OPERATIONS, key=lambda op: (not op.write, op.operation_id))


@pytest.mark.parametrize("fmt", ["bedrock-function", "bedrock-openapi"])
def test_boto3_invokes_every_operation_through_the_invoke_api(server: LocalServer, fmt: str) -> None:
    client = lambda_client(server)
    ids: dict[str, str] = {}
    for op in ORDER:
        event = with_ids(event_file(fmt, op.operation_id), ids, session=f"sess-{fmt}")
        response = client.invoke(FunctionName=f"centli-{op.action_group}", Payload=json.dumps(event).encode())
        assert response["StatusCode"] == 200
        assert "FunctionError" not in response
        status, body = answer_of(fmt, json.loads(response["Payload"].read()))
        assert status == 200, (op.operation_id, body)
        assert set(op.response.model_fields) - {"truncated"} <= set(body), op.operation_id
        if op.operation_id == "createTransfer":
            ids["transfer_id"] = body["transfer_id"]
        if op.operation_id == "createPurchase":
            ids["order_id"] = body["order_id"]
    assert set(ids) == {"transfer_id", "order_id"}


def test_agentcore_calls_go_through_the_invoke_api_with_a_client_context(server: LocalServer) -> None:
    client = lambda_client(server)
    example = event_file("agentcore", "getBalance")
    arguments = {
        **example["event"],
        # what the gateway's interceptor adds: bound to this tool, these arguments and this request
        "centli_identity": issue_assertion(
            IDENTITY_SECRET.encode(),
            "u-ana",
            int(time.time()),
            tool=example["context_client_context_custom"]["bedrockAgentCoreToolName"],
            arguments=example["event"],
            message_id=example["context_client_context_custom"]["bedrockAgentCoreMcpMessageId"],
            request_id=example["context_client_context_custom"]["bedrockAgentCoreAwsRequestId"],
        ),
    }
    context = base64.b64encode(json.dumps({"custom": example["context_client_context_custom"]}).encode()).decode()
    response = client.invoke(FunctionName="centli-core-banking", Payload=json.dumps(arguments), ClientContext=context)
    body = json.loads(response["Payload"].read())
    assert (body["account_id"], body["currency"]) == ("acc-0001", "MXN")
    # the example as committed carries no identity: refused, as the gateway without its interceptor would be
    refused = client.invoke(
        FunctionName="centli-core-banking", Payload=json.dumps(example["event"]), ClientContext=context
    )
    assert json.loads(refused["Payload"].read())["error"]["status"] == 401


def test_functions_are_found_by_name_logical_id_and_arn_with_a_qualifier(server: LocalServer) -> None:
    client = lambda_client(server)
    event = json.dumps(event_file("bedrock-function", "listAccounts")).encode()
    names = [
        "centli-core-banking",
        "CoreBankingFunction",
        "arn:aws:lambda:us-east-1:123456789012:function:centli-core-banking",  # boto3 sends ':' as %3A
        "arn:aws:lambda:eu-west-1:210987654321:function:centli-core-banking:live",
        "123456789012:function:centli-core-banking:$LATEST",
    ]
    for name in names:
        response = client.invoke(FunctionName=name, Payload=event)
        assert answer_of("bedrock-function", json.loads(response["Payload"].read()))[0] == 200, name
    qualified = client.invoke(FunctionName="centli-core-banking", Qualifier="7", Payload=event)
    assert qualified["StatusCode"] == 200
    with pytest.raises(client.exceptions.ResourceNotFoundException, match="Function not found"):
        client.invoke(FunctionName="centli-nope", Payload=event)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="arn:aws:lambda:us-east-1:123456789012:function:centli-nope:1", Payload=event)
    # the sweeper runs once and answers how many stuck orders it voided
    swept = client.invoke(FunctionName="SweeperFunction", Payload=b"{}")
    assert json.loads(swept["Payload"].read()) == 0


def test_invocation_types_event_and_dry_run(server: LocalServer) -> None:
    client = lambda_client(server)
    before = server.balance("acc-0002", "u-luis")  # the example pays Ana's beneficiary: Luis
    event = with_ids(event_file("bedrock-function", "createTransfer"), {}, session="sess-invocation-types")
    for parameter in event["parameters"]:
        if parameter["name"] == "amount":
            parameter["value"] = "7.00"
    dry = client.invoke(FunctionName="centli-core-banking", InvocationType="DryRun", Payload=json.dumps(event))
    assert dry["StatusCode"] == 204
    time.sleep(0.5)
    assert server.balance("acc-0002", "u-luis") == before  # a dry run runs nothing
    queued = client.invoke(FunctionName="centli-core-banking", InvocationType="Event", Payload=json.dumps(event))
    assert queued["StatusCode"] == 202
    deadline = time.monotonic() + 10
    while server.balance("acc-0002", "u-luis") == before:  # the Event invocation runs after the 202
        assert time.monotonic() < deadline, "the Event invocation never ran"
        time.sleep(0.1)
    from decimal import Decimal

    assert Decimal(server.balance("acc-0002", "u-luis")) == Decimal(before) + 7


def test_the_invoke_api_answers_like_lambda(server: LocalServer) -> None:
    path = "/2015-03-31/functions/centli-core-banking/invocations"
    # no Authorization: boto3 and the AWS CLI always sign, a web page cannot without a preflight
    status, headers, raw = server.request("POST", path, b"{}", {"Content-Type": "application/json"})
    assert (status, headers["x-amzn-errortype"]) == (403, "MissingAuthenticationTokenException")
    assert json.loads(raw)["error"]["code"] == "MissingAuthenticationTokenException"
    signed = {"Authorization": "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/lambda/aws4_request"}
    # boto3 sends no Content-Type; a body that is not JSON is Lambda's InvalidRequestContentException
    status, headers, raw = server.request("POST", path, b"{not json", signed)
    assert (status, headers["x-amzn-errortype"]) == (400, "InvalidRequestContentException")
    status, headers, _ = server.request("POST", path, b"{}", {**signed, "X-Amz-Invocation-Type": "Sometimes"})
    assert (status, headers["x-amzn-errortype"]) == (400, "InvalidParameterValueException")
    status, headers, raw = server.request("POST", "/2015-03-31/functions/nope/invocations", b"{}", signed)
    assert (status, headers["x-amzn-errortype"]) == (404, "ResourceNotFoundException")
    assert json.loads(raw)["message"].startswith("Function not found: arn:aws:lambda:")
    # a warm-up reaches the handler and touches nothing
    status, headers, raw = server.request("POST", path, b'{"source": "warmup"}', signed)
    assert (status, json.loads(raw), headers["x-amz-executed-version"]) == (200, {"warmed": True}, "$LATEST")


def test_the_functions_table_names_every_invokable_function() -> None:
    assert {f.name for f in FUNCTIONS} == {"centli-core-banking", "centli-marketplace", "centli-sweeper"}


# the REST mirror ---------------------------------------------------------------------------
def test_rest_mirror_of_every_operation(server: LocalServer) -> None:
    write = {**ANA, "Content-Type": "application/json"}
    assert server.call("GET", "/health") == (200, {"status": "ok"})
    status, accounts = server.call("GET", "/accounts", headers=ANA)
    assert status == 200
    assert {a["account_id"] for a in accounts["accounts"]} == {"acc-0001", "acc-0003"}
    status, body = server.call("GET", "/accounts/acc-0001/balance", headers=ANA)
    assert (status, body["currency"]) == (200, "MXN")
    before = body["balance"]
    status, body = server.call("GET", "/beneficiaries", headers=ANA)
    assert [b["beneficiary_id"] for b in body["beneficiaries"]] == ["ben-mama"]
    # a JSON number with decimals stays exact (never a float on the way in)
    payload = b'{"from_account_id": "acc-0001", "destination_id": "ben-mama", "amount": 100.10, "concept": "Renta"}'
    status, transfer = server.call("POST", "/transfers", payload, {**write, "Idempotency-Key": "rest-1"})
    assert (status, transfer["amount"], transfer["status"]) == (200, "100.10", "COMPLETED")
    again = server.call("POST", "/transfers", payload, {**write, "Idempotency-Key": "rest-1"})
    assert (again[0], again[1]["transfer_id"]) == (200, transfer["transfer_id"])
    assert (transfer["replayed"], again[1]["replayed"]) == (False, True)
    conflict = server.call(
        "POST", "/transfers", payload.replace(b"100.10", b"20"), {**write, "Idempotency-Key": "rest-1"}
    )
    assert (conflict[0], conflict[1]["error"]["code"]) == (409, "IDEMPOTENCY_CONFLICT")
    assert server.call("GET", f"/transfers/{transfer['transfer_id']}", headers=ANA)[1]["amount"] == "100.10"
    status, history = server.call("GET", "/accounts/acc-0001/transactions?limit=1", headers=ANA)
    assert (status, history["transactions"][0]["amount"], history["next_cursor"] is not None) == (200, "100.10", True)
    status, products = server.call("GET", "/products?category=electronics", headers=ANA)
    assert [p["product_id"] for p in products["products"]] == ["p-100"]
    assert server.call("GET", "/products/p-200", headers=ANA)[1]["price"] == "1299.90"
    status, order = server.call(
        "POST",
        "/purchases",
        {"product_id": "p-200", "quantity": 1, "account_id": "acc-0001"},
        {**write, "Idempotency-Key": "rest-buy"},
    )
    assert (status, order["total"]) == (200, "1299.90")
    assert server.call("GET", f"/orders/{order['order_id']}", headers=ANA)[1]["status"] == "CONFIRMED"
    assert order["order_id"] in [o["order_id"] for o in server.call("GET", "/orders", headers=ANA)[1]["orders"]]
    from decimal import Decimal

    assert Decimal(server.balance("acc-0001")) == Decimal(before) - Decimal("100.10") - Decimal("1299.90")


def test_rest_identity_and_errors(server: LocalServer) -> None:
    status, body = server.call("GET", "/accounts")
    assert (status, body["error"]["code"]) == (401, "UNAUTHENTICATED")
    assert "X-Centli-User" in body["error"]["message"]  # where the local runtime expects the identity
    assert server.call("GET", "/accounts/acc-0002/balance", headers=ANA)[0] == 404  # Luis's account
    assert server.call("GET", "/accounts/acc%2D0001/balance", headers=ANA)[0] == 200  # %2D is "-"
    status, body = server.call("POST", "/transfers", b"{not json", {**ANA, "Content-Type": "application/json"})
    assert (status, body["error"]["code"]) == (400, "INVALID_INPUT")
    status, body = server.call("POST", "/transfers", b"[1, 2]", {**ANA, "Content-Type": "application/json"})
    assert (status, body["error"]["code"]) == (400, "INVALID_INPUT")
    status, body = server.call("POST", "/agent/loans", {}, {"Content-Type": "application/json"})
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND")


def test_home_openapi_and_agent_events(server: LocalServer) -> None:
    status, headers, page = server.request("GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    for op in OPERATIONS:
        assert op.path.encode() in page
    assert b"/2015-03-31/functions/" in page
    status, document = server.call("GET", "/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.")
    assert {(m.upper(), p) for p, ms in document["paths"].items() for m in ms} == {
        (op.method, op.path) for op in OPERATIONS
    }
    status, response = server.call("POST", "/agent/core-banking", event_file("bedrock-openapi", "getBalance"))
    assert (status, response["response"]["httpStatusCode"]) == (200, 200)
    gateway = server.call("POST", "/agent/core-banking", event_file("agentcore", "getBalance"))
    assert gateway[1]["error"]["code"] == "UNAUTHENTICATED"


# the saga ----------------------------------------------------------------------------------
def test_a_purchase_is_confirmed_by_the_saga(server: LocalServer) -> None:
    before = server.call("GET", "/products/p-100", headers=ANA)[1]["available"]
    status, order = server.call(
        "POST",
        "/purchases",
        {"product_id": "p-100", "quantity": 2, "account_id": "acc-0001"},
        {**ANA, "Idempotency-Key": "saga-confirmed"},
    )
    assert (status, order["status"], order["total"]) == (200, "PENDING", "998.00")
    assert server.call("GET", f"/orders/{order['order_id']}", headers=ANA)[1]["status"] == "CONFIRMED"
    assert server.call("GET", "/products/p-100", headers=ANA)[1]["available"] == before - 2


def test_a_stuck_purchase_is_cancelled_by_centli_sweep(tmp_path: Path) -> None:
    db = tmp_path / "centli.db"
    # The saga held: without in-process delivery the order stays PENDING, as if the relay were down.
    held = LocalServer(db, extra_env={"CENTLI_INPROCESS_RELAY": "false"})
    try:
        start = held.balance("acc-0001")
        status, order = held.call(
            "POST",
            "/purchases",
            {"product_id": "p-100", "quantity": 3, "account_id": "acc-0001"},
            {**ANA, "Idempotency-Key": "saga-stuck"},
        )
        assert (status, order["status"]) == (200, "PENDING")
        assert held.call("GET", "/products/p-100", headers=ANA)[1]["available"] == 7  # reserved
        swept = centli("sweep", "--stuck-after", "0", env=sqlite_env(db))
        assert swept.returncode == 0, swept.stderr
        assert "1 stuck order(s) voided" in swept.stdout
        settled = held.call("GET", f"/orders/{order['order_id']}", headers=ANA)[1]
        assert (settled["status"], held.balance("acc-0001")) == ("CANCELLED", start)
        assert held.call("GET", "/products/p-100", headers=ANA)[1]["available"] == 10  # released
    finally:
        assert held.stop() == 0


# restarts and shutdown ------------------------------------------------------------------------
def snapshot(server: LocalServer) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for user in ("u-ana", "u-luis", "u-shop"):
        headers = {"X-Centli-User": user}
        state[user] = {
            "accounts": server.call("GET", "/accounts", headers=headers)[1],
            "orders": server.call("GET", "/orders?limit=50", headers=headers)[1],
        }
    state["products"] = server.call("GET", "/products", headers=ANA)[1]
    return state


def test_a_restart_keeps_every_balance_and_order(tmp_path: Path) -> None:
    db = tmp_path / "centli.db"
    first = LocalServer(db)
    try:
        write = {**ANA, "Content-Type": "application/json"}
        body = {"from_account_id": "acc-0001", "destination_id": "acc-0003", "amount": "100.00"}
        assert first.call("POST", "/transfers", body, {**write, "Idempotency-Key": "restart-1"})[0] == 200
        body = {"from_account_id": "acc-0001", "destination_id": "ben-mama", "amount": "250.50"}
        assert first.call("POST", "/transfers", body, {**write, "Idempotency-Key": "restart-2"})[0] == 200
        purchase = {"product_id": "p-200", "quantity": 1, "account_id": "acc-0001"}
        assert first.call("POST", "/purchases", purchase, {**write, "Idempotency-Key": "restart-3"})[0] == 200
        before = snapshot(first)
    finally:
        assert first.stop(signal.SIGINT) == 0  # Ctrl+C: a clean stop too
    assert "centli: stopped" in first.output()
    second = LocalServer(db)  # --load-demo again: loading is idempotent, nothing is reset
    try:
        assert snapshot(second) == before
        assert before["u-ana"]["accounts"]["accounts"][0]["balance"] == "23349.60"
        assert before["u-luis"]["accounts"]["accounts"][0]["balance"] == "1051.00"
        assert [o["status"] for o in before["u-ana"]["orders"]["orders"]] == ["CONFIRMED"]
    finally:
        assert second.stop() == 0
    assert "background workers stopped" in second.output()
    assert "Traceback" not in first.output() + second.output()


def test_centli_invoke_through_a_running_server(server: LocalServer) -> None:
    result = centli(
        "invoke", "centli-marketplace", "--event", "events/bedrock-function/getProduct.json", "--url", server.base
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(json.loads(result.stdout)["response"]["functionResponse"]["responseBody"]["TEXT"]["body"])
    assert (body["product_id"], body["price"]) == ("p-100", "499.00")
    result = centli("invoke", "centli-nope", "--event", "events/bedrock-function/getProduct.json", "--url", server.base)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "centli invoke: ResourceNotFoundException: "
        "Function not found: arn:aws:lambda:us-east-1:123456789012:function:centli-nope"
    )


# the README's ways in ------------------------------------------------------------------------
def readme_curl_commands() -> list[list[str]]:
    """Every curl command in the README's code blocks, as argument lists."""
    import shlex

    text = (REPO / "README.md").read_text("utf-8").replace("\\\n", " ")
    return [shlex.split(line.split("#")[0])[1:] for line in text.splitlines() if line.strip().startswith("curl ")]


def test_the_readme_curl_commands_work(tmp_path: Path) -> None:
    """What a user pastes after `make run`: each curl of the README, against a fresh bank."""
    commands = readme_curl_commands()
    assert len(commands) >= 6
    fresh = LocalServer(tmp_path / "centli.db")
    try:
        for arguments in commands:
            method, headers, body, url = "GET", {}, None, ""
            words = iter(arguments)
            for word in words:
                if word == "-X":
                    method = next(words)
                elif word == "-H":
                    name, _, value = next(words).partition(":")
                    headers[name.strip()] = value.strip()
                elif word == "-d":
                    data = next(words)
                    body = (REPO / data[1:]).read_bytes() if data.startswith("@") else data.encode()
                    method = "POST" if method == "GET" else method
                elif word.startswith("http://"):
                    url = word
                else:
                    assert word == "-s", word
            if body is not None and not any(h.lower() == "content-type" for h in headers):
                headers["Content-Type"] = "application/x-www-form-urlencoded"  # what curl -d sends
            path = url.replace("http://127.0.0.1:8080", "")
            assert path.startswith("/"), url
            status, _, raw = fresh.request(method, path, body, headers)
            assert status == 200, (arguments, raw)
            assert "error" not in json.loads(raw), (arguments, raw)
    finally:
        fresh.stop()


def test_the_readme_names_real_files_and_functions() -> None:
    import re

    text = (REPO / "README.md").read_text("utf-8")
    for path in set(re.findall(r"events/[\w-]+/\w+\.json", text)):
        assert (REPO / path).exists(), path
    for name in set(re.findall(r"--function-name ([\w-]+)", text)):
        assert name in {f.name for f in FUNCTIONS}, name


def test_each_request_is_one_log_line_with_the_calls_correlation_id(tmp_path: Path) -> None:
    fresh = LocalServer(tmp_path / "centli.db")
    try:
        _, headers, _ = fresh.request("GET", "/accounts/acc-0001/balance", headers=ANA)
        rest_id = headers["x-correlation-id"]
        fresh.call("POST", "/agent/core-banking", event_file("bedrock-openapi", "getBalance"))
        fresh.call("POST", "/agent/core-banking", event_file("agentcore", "getBalance"))
        fresh.call("GET", "/nowhere")
        deadline = time.monotonic() + 10
        while True:  # log lines reach the file in batches, within 0.1 s
            lines = [json.loads(x) for x in fresh.output().splitlines() if x.startswith("{")]
            per_request = [
                r for r in lines if r.get("message") in ("operation finished", "operation refused", "http request")
            ]
            if len(per_request) >= 5 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        fresh.stop()
    # the health checks LocalServer made while starting, then one line for each request above
    assert [r.get("route") for r in per_request[:-4]] == ["health"] * (len(per_request) - 4)
    balance_line, openapi_line, gateway_line, unmatched_line = per_request[-4:]
    assert (balance_line["operation"], balance_line["correlation_id"]) == ("getBalance", rest_id)
    assert (openapi_line["operation"], openapi_line["agent_format"]) == ("getBalance", "openapi")
    assert (gateway_line["code"], gateway_line["correlation_id"]) == ("UNAUTHENTICATED", "example-request-0001")
    assert (unmatched_line["route"], unmatched_line["status"]) == ("unmatched", 404)
    assert [line for line in lines if not line.get("correlation_id")] == []
