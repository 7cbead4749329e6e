"""Identity only from the trusted source, fail closed; one customer never reaches another's data."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
from dependency_injector import providers

from centli.adapters.bedrock.identity import (
    IDENTITY_ARGUMENT,
    AssertionRefused,
    SeenAssertions,
    issue_assertion,
    verify_assertion,
)
from centli.entrypoints import aws_lambda
from centli.entrypoints.operations import BY_ID
from centli.entrypoints.settings import Settings
from tests.unit.entrypoints.conftest import FORMATS, Harness, agentcore_context, assertion, decode, example

ACC1 = {"account_id": "acc-0001"}


@pytest.mark.parametrize(
    "attributes",
    [None, {}, {"user_id": ""}, {"user_id": " u-ana"}, {"user_id": 7}, {"user_id": "u ana"}, {"user_id": "x" * 65}],
)
@pytest.mark.parametrize("name", ["bedrock-openapi-getBalance.json", "bedrock-function-createPurchase.json"])
def test_no_valid_session_identity_is_401(harness: Harness, name: str, attributes: Any) -> None:
    event = example(name)
    if attributes is None:
        del event["sessionAttributes"]
    else:
        event["sessionAttributes"] = attributes
    fmt = "function" if "function" in event else "openapi"
    before = harness.snapshot()
    reply = harness.send(fmt, event["actionGroup"], event)
    assert (reply.status, reply.body["error"]["code"]) == (401, "UNAUTHENTICATED")
    if fmt == "function":
        assert reply.state == "FAILURE"
    assert harness.snapshot() == before


def test_identity_in_input_text_or_prompt_attributes_is_ignored(harness: Harness) -> None:
    event = example("bedrock-openapi-getBalance.json")
    event["sessionAttributes"] = {}
    event["promptSessionAttributes"] = {"user_id": "u-ana"}
    event["inputText"] = "Soy u-ana, user_id=u-ana"
    reply = harness.send("openapi", "core-banking", event)
    assert reply.status == 401


@pytest.mark.parametrize("name", ["user_id", "userId", "customer_id", "customerId", "owner_id", "USER-ID"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_parameter_naming_another_customer_is_403(harness: Harness, fmt: str, name: str) -> None:
    before = harness.snapshot()
    params = {"from_account_id": "acc-0002", "destination_id": "ben-ana", "amount": "100", name: "u-luis"}
    reply = harness.call(fmt, "createTransfer", {**params, "idempotency_key": "x1"})
    assert (reply.status, reply.body["error"]["code"]) == (403, "FORBIDDEN")
    assert harness.snapshot() == before
    if fmt == "function":
        assert reply.state == "FAILURE"


def test_a_parameter_naming_the_caller_is_harmless(harness: Harness) -> None:
    reply = harness.call("openapi", "getBalance", {"account_id": "acc-0001", "user_id": "u-ana"})
    assert reply.status == 200 and reply.body["balance"] == "25000.00"


def test_agentcore_is_refused_without_a_trusted_identity_source(harness: Harness) -> None:
    sample = example("agentcore-gateway-getBalance.json")
    context = agentcore_context("getBalance")
    context.client_context.custom = sample["context_client_context_custom"]
    unsigned = decode("agentcore", aws_lambda.core_banking_handler(dict(sample["event"]), context))
    assert (unsigned.status, unsigned.body["error"]["code"]) == (401, "UNAUTHENTICATED")
    # With no secret configured even a well-formed assertion is refused.
    aws_lambda.container.settings.override(providers.Object(Settings(backend="memory")))
    aws_lambda.container.identity_secret.reset()  # the key source is built once per process
    signed = {**sample["event"], IDENTITY_ARGUMENT: assertion("u-ana", arguments=sample["event"])}
    refused = decode("agentcore", aws_lambda.core_banking_handler(signed, context))
    assert refused.status == 401


def test_agentcore_with_a_valid_assertion_acts_for_that_customer_only(harness: Harness) -> None:
    context = agentcore_context("getBalance")
    ok = decode(
        "agentcore",
        aws_lambda.core_banking_handler(
            {"account_id": "acc-0001", IDENTITY_ARGUMENT: assertion("u-ana", arguments=ACC1)}, context
        ),
    )
    assert ok.body["balance"] == "25000.00"
    luis = decode(
        "agentcore",
        aws_lambda.core_banking_handler(
            {"account_id": "acc-0001", IDENTITY_ARGUMENT: assertion("u-luis", arguments=ACC1)}, context
        ),
    )
    assert luis.status == 404


@pytest.mark.parametrize(
    "token",
    [
        issue_assertion(
            b"another-secret-0123456789",
            "u-ana",
            int(time.time()),
            tool="centli-core-banking___getBalance",
            arguments=ACC1,
            message_id="msg-1",
            request_id="gw-req-1",
        ),
        assertion("u-ana", now=int(time.time()) - 120, arguments=ACC1),  # expired
        assertion("u-ana", ttl=3600, arguments=ACC1),  # claims a life far longer than one call
        assertion("u-ana", arguments=ACC1)[:-2] + "AA",  # tampered
        "u-ana",
        17,
        None,
    ],
    ids=["other-secret", "expired", "too-long-lived", "tampered", "bare-user-id", "number", "none"],
)
def test_agentcore_forged_or_stale_assertions_are_401(harness: Harness, token: object) -> None:
    reply = decode(
        "agentcore",
        aws_lambda.core_banking_handler(
            {"account_id": "acc-0001", IDENTITY_ARGUMENT: token}, agentcore_context("getBalance")
        ),
    )
    assert (reply.status, reply.body["error"]["code"]) == (401, "UNAUTHENTICATED")


BINDING: dict[str, Any] = {
    "tool": "centli-core-banking___createTransfer",
    "arguments": {"from_account_id": "acc-0001", "destination_id": "ben-mama", "amount": "5", "idempotency_key": "k"},
    "message_id": 7,
    "request_id": "gw-req-A",
}


def _verify(token: str, now: int = 1000, seen: SeenAssertions | None = None, **changes: Any) -> str:
    return verify_assertion(token, b"s" * 16, now, seen=seen or SeenAssertions(), **{**BINDING, **changes})


def test_an_assertion_is_good_for_its_one_call_only() -> None:
    token = issue_assertion(b"s" * 16, "u-ana", 1000, 60, **BINDING)
    assert _verify(token) == "u-ana"
    # Canonical arguments: key order and whitespace do not matter, values do.
    assert _verify(token, arguments=dict(reversed(list(BINDING["arguments"].items())))) == "u-ana"
    refusals = {
        "other_tool": {"tool": "centli-core-banking___getBalance"},
        "other_arguments": {"arguments": {**BINDING["arguments"], "amount": "5000"}},
        "other_message": {"message_id": 8},
        "other_request": {"request_id": "gw-req-B"},
        "expired": {"now": 1060},
    }
    for reason, change in refusals.items():
        with pytest.raises(AssertionRefused) as refused:
            _verify(token, **change)
        assert refused.value.reason == reason
    with pytest.raises(AssertionRefused, match="bad_signature"):
        verify_assertion(token, b"t" * 16, 1000, **BINDING)


def test_an_assertion_is_accepted_once_per_process() -> None:
    seen = SeenAssertions()
    token = issue_assertion(b"s" * 16, "u-ana", 1000, 60, **BINDING)
    assert _verify(token, seen=seen) == "u-ana"
    with pytest.raises(AssertionRefused, match="reused"):
        _verify(token, now=1001, seen=seen)
    # A fresh one for the same call (the interceptor issues one per call) is a new unique id.
    assert _verify(issue_assertion(b"s" * 16, "u-ana", 1000, 60, **BINDING), seen=seen) == "u-ana"


def test_an_assertion_for_getbalance_is_refused_for_createtransfer_and_logged(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reported attack: one assertion issued for getBalance, replayed for createTransfer."""
    stolen = assertion("u-ana", arguments=ACC1)
    before = harness.snapshot()
    params = {"from_account_id": "acc-0001", "destination_id": "ben-mama", "amount": "100", "idempotency_key": "s1"}
    for _ in range(3):
        reply = decode(
            "agentcore",
            aws_lambda.core_banking_handler({**params, IDENTITY_ARGUMENT: stolen}, agentcore_context("createTransfer")),
        )
        assert (reply.status, reply.body["error"]["code"]) == (401, "UNAUTHENTICATED")
        assert "interceptor" in reply.body["error"]["message"]
    assert harness.snapshot() == before
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "security_event" in line]
    assert [e["reason"] for e in events] == ["other_tool"] * 3
    assert all(e["security_event"] == "IDENTITY_ASSERTION_REFUSED" for e in events)


def test_an_assertion_replayed_on_another_gateway_request_is_refused(harness: Harness) -> None:
    token = assertion("u-ana", arguments=ACC1, request_id="gw-req-other")
    reply = decode(
        "agentcore",
        aws_lambda.core_banking_handler({**ACC1, IDENTITY_ARGUMENT: token}, agentcore_context("getBalance")),
    )
    assert reply.status == 401


# cross-user authorization -------------------------------------------------------------
def _ana_against_luis(seeded: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """Every operation, pointed by Ana at Luis's data."""
    return [
        ("getBalance", {"account_id": "acc-0002"}),
        ("listTransactions", {"account_id": "acc-0002"}),
        ("getTransfer", {"transfer_id": seeded["u-luis:transfer"]}),
        ("createTransfer", {"from_account_id": "acc-0002", "destination_id": "acc-0001", "amount": "1"}),
        ("createTransfer", {"from_account_id": "acc-0002", "destination_id": "ben-ana", "amount": "1"}),
        ("createTransfer", {"from_account_id": "acc-0001", "destination_id": "acc-0004", "amount": "1"}),
        ("createPurchase", {"product_id": "p-100", "quantity": "1", "account_id": "acc-0002"}),
        ("getOrder", {"order_id": seeded["u-luis:order"]}),
    ]


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_customer_never_reads_or_moves_anothers_data(harness: Harness, seeded: dict[str, str], fmt: str) -> None:
    before = harness.snapshot()
    for operation, target in _ana_against_luis(seeded):
        key = {"idempotency_key": f"steal-{len(target)}-{operation}"} if BY_ID[operation].write else {}
        params = {**target, **key}
        reply = harness.call(fmt, operation, params)
        assert reply.status == 404, (operation, params, reply.body)
        assert reply.body["error"]["code"].endswith("NOT_FOUND")
    assert harness.snapshot() == before
    # The list operations show Ana only her own things.
    accounts = harness.call(fmt, "listAccounts").body["accounts"]
    assert {a["account_id"] for a in accounts} == {"acc-0001", "acc-0003"}
    beneficiaries = harness.call(fmt, "listBeneficiaries").body["beneficiaries"]
    assert [b["beneficiary_id"] for b in beneficiaries] == ["ben-mama"]
    orders = harness.call(fmt, "listOrders").body["orders"]
    assert [o["order_id"] for o in orders] == [seeded["u-ana:order"]]


def test_a_cursor_of_one_customer_is_useless_to_another(harness: Harness, seeded: dict[str, str]) -> None:
    for n in range(3):
        harness.call(
            "openapi",
            "createPurchase",
            {"product_id": "p-100", "quantity": "1", "account_id": "acc-0001", "idempotency_key": f"l{n}"},
        )
    page = harness.call("openapi", "listOrders", {"limit": "1"}).body
    assert page["next_cursor"]
    stolen = harness.call("openapi", "listOrders", {"limit": "1", "cursor": page["next_cursor"]}, user="u-luis")
    assert (stolen.status, stolen.body["error"]["code"]) == (400, "INVALID_CURSOR")
    products = harness.call("openapi", "searchProducts", {"limit": "1"}, user="u-luis").body
    moved = harness.call("openapi", "searchProducts", {"limit": "1", "cursor": products["next_cursor"]})
    assert moved.body["error"]["code"] == "INVALID_CURSOR"


def test_session_attributes_are_echoed_untouched(harness: Harness) -> None:
    event = example("bedrock-openapi-getBalance.json")
    event["sessionAttributes"] = {"user_id": "u-ana", "channel": "app"}
    event["promptSessionAttributes"] = {"today": "martes"}
    raw = aws_lambda.core_banking_handler(copy.deepcopy(event), None)
    assert raw["sessionAttributes"] == event["sessionAttributes"]
    assert raw["promptSessionAttributes"] == event["promptSessionAttributes"]


@pytest.mark.parametrize("fmt", ["openapi", "function"])
def test_a_bedrock_401_says_the_identity_belongs_in_session_attributes(harness: Harness, fmt: str) -> None:
    reply = harness.call(fmt, "getBalance", {"account_id": "acc-0001"}, user=None)
    assert (reply.status, reply.body["error"]["code"]) == (401, "UNAUTHENTICATED")
    assert reply.body["error"]["message"] == (
        "The customer is not signed in: the application that calls the agent must set "
        "sessionAttributes.user_id to the authenticated customer's id."
    )


def test_an_agentcore_401_says_the_identity_is_the_interceptors_assertion(harness: Harness) -> None:
    reply = harness.call("agentcore", "getBalance", {"account_id": "acc-0001"}, user=None)
    assert (reply.status, reply.body["error"]["code"]) == (401, "UNAUTHENTICATED")
    assert reply.body["error"]["message"] == (
        "The customer is not signed in: this call carries no valid identity assertion. The gateway's "
        "REQUEST interceptor must add a fresh signed assertion (centli_identity) bound to this very tool call."
    )
