"""The gateway REQUEST interceptor turns a validated token into an identity the tools accept."""

from __future__ import annotations

import base64
import json
import time
from types import SimpleNamespace
from typing import Any

from centli.adapters.bedrock.identity import IDENTITY_ARGUMENT
from centli.entrypoints import aws_lambda
from centli.entrypoints.agentcore_interceptor import handler
from tests.unit.entrypoints.conftest import IDENTITY_SECRET, Harness, agentcore_context, decode

ENV = {"CENTLI_AGENTCORE_IDENTITY_SECRET": IDENTITY_SECRET}
REQUEST_ID = "bedrockAgentCoreAwsRequestId"


def token(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


def interceptor_event(
    arguments: dict[str, Any],
    authorization: str | None,
    method: str = "tools/call",
    tool: str = "centli-core-banking___getBalance",
) -> Any:
    headers = {"Accept": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    body = {"jsonrpc": "2.0", "id": "msg-1", "method": method}  # the id agentcore_context names
    if method == "tools/call":
        body["params"] = {"name": tool, "arguments": arguments}
    return {"interceptorInputVersion": "1.0", "mcp": {"gatewayRequest": {"headers": headers, "body": body}}}


def forwarded_arguments(output: dict[str, Any]) -> dict[str, Any]:
    assert output["interceptorOutputVersion"] == "1.0"
    arguments: dict[str, Any] = output["mcp"]["transformedGatewayRequest"]["body"]["params"]["arguments"]
    return arguments


def test_the_tool_acts_for_the_token_subject_only(harness: Harness) -> None:
    forged = {"account_id": "acc-0001", IDENTITY_ARGUMENT: "written-by-the-model"}
    output = handler(interceptor_event(forged, f"Bearer {token({'sub': 'u-ana'})}"), None, ENV)
    arguments = forwarded_arguments(output)
    assert arguments[IDENTITY_ARGUMENT] != "written-by-the-model"
    reply = decode("agentcore", aws_lambda.core_banking_handler(arguments, agentcore_context("getBalance")))
    assert (reply.status, reply.body["balance"]) == (200, "25000.00")

    as_luis = forwarded_arguments(handler(interceptor_event(forged, f"Bearer {token({'sub': 'u-luis'})}"), None, ENV))
    reply = decode("agentcore", aws_lambda.core_banking_handler(as_luis, agentcore_context("getBalance")))
    assert reply.status == 404  # acc-0001 is Ana's


def test_a_configured_claim_names_the_customer(harness: Harness) -> None:
    env = {**ENV, "CENTLI_AGENTCORE_IDENTITY_CLAIM": "customer_id"}
    bearer = f"Bearer {token({'sub': 'cognito-uuid', 'customer_id': 'u-ana'})}"
    arguments = forwarded_arguments(handler(interceptor_event({"account_id": "acc-0001"}, bearer), None, env))
    reply = decode("agentcore", aws_lambda.core_banking_handler(arguments, agentcore_context("getBalance")))
    assert reply.body["balance"] == "25000.00"


def test_calls_without_a_usable_identity_never_reach_a_tool() -> None:
    for authorization in (None, "Basic abc", "Bearer not-a-jwt", f"Bearer {token({'scope': 'x'})}"):
        output = handler(interceptor_event({"account_id": "acc-0001"}, authorization), None, ENV)
        response = output["mcp"]["transformedGatewayResponse"]
        assert "transformedGatewayRequest" not in output["mcp"]
        assert response["body"]["error"]["code"] == -32600
        assert response["body"]["id"] == "msg-1"
    assert "transformedGatewayResponse" in handler({"mcp": {}}, None, ENV)["mcp"]


def test_it_fails_closed_without_a_secret() -> None:
    event = interceptor_event({"account_id": "acc-0001"}, f"Bearer {token({'sub': 'u-ana'})}")
    for env in ({}, {"CENTLI_AGENTCORE_IDENTITY_SECRET": "short"}):
        assert "transformedGatewayResponse" in handler(event, None, env)["mcp"]


def test_other_mcp_methods_pass_through_untouched() -> None:
    event = interceptor_event({}, None, method="tools/list")
    output = handler(event, None, ENV)
    assert output["mcp"]["transformedGatewayRequest"]["body"] == event["mcp"]["gatewayRequest"]["body"]


def test_tools_of_other_targets_never_receive_the_assertion() -> None:
    bearer = f"Bearer {token({'sub': 'u-ana'})}"
    forged = {"q": "x", IDENTITY_ARGUMENT: "written-by-the-model"}
    output = handler(interceptor_event(forged, bearer, tool="weather___forecast"), None, ENV)
    assert forwarded_arguments(output) == {"q": "x"}


def test_each_assertion_is_bound_to_the_call_the_interceptor_saw(harness: Harness) -> None:
    """Tool, arguments, message id and, when the interceptor can see it, the gateway's request id."""
    bearer = f"Bearer {token({'sub': 'u-ana'})}"
    interceptor_context = SimpleNamespace(client_context=SimpleNamespace(custom={REQUEST_ID: "gw-req-1"}))
    output = handler(interceptor_event({"account_id": "acc-0001"}, bearer), interceptor_context, ENV)
    arguments = forwarded_arguments(output)
    claims = json.loads(base64.urlsafe_b64decode(arguments[IDENTITY_ARGUMENT].split(".")[0] + "=="))
    assert (claims["tool"], claims["mid"], claims["rid"]) == ("centli-core-banking___getBalance", "msg-1", "gw-req-1")
    assert claims["exp"] - time.time() <= 60
    assert (
        decode("agentcore", aws_lambda.core_banking_handler(dict(arguments), agentcore_context("getBalance"))).status
        == 200
    )
    # The same assertion again: the same instance refuses a second use.
    again = decode("agentcore", aws_lambda.core_banking_handler(dict(arguments), agentcore_context("getBalance")))
    assert again.status == 401
    # A fresh one replayed on another gateway request, or with other arguments, is refused.
    fresh = forwarded_arguments(
        handler(interceptor_event({"account_id": "acc-0001"}, bearer), interceptor_context, ENV)
    )
    other_request = agentcore_context("getBalance")
    other_request.client_context.custom[REQUEST_ID] = "gw-req-2"
    assert decode("agentcore", aws_lambda.core_banking_handler(dict(fresh), other_request)).status == 401
    changed = {**fresh, "account_id": "acc-0003"}
    assert decode("agentcore", aws_lambda.core_banking_handler(changed, agentcore_context("getBalance"))).status == 401
