"""Hostile and malformed events: always a well-formed answer in the right format, and nothing changes when refused."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from centli.entrypoints import aws_lambda
from centli.entrypoints.operations import BY_ID, OPERATIONS
from tests.unit.entrypoints.conftest import assertion, build_event, decode, open_harness

VALID: dict[str, dict[str, Any]] = {
    "listAccounts": {},
    "getBalance": {"account_id": "acc-0001"},
    "listTransactions": {"account_id": "acc-0001", "limit": "3"},
    "listBeneficiaries": {},
    "createTransfer": {"from_account_id": "acc-0001", "destination_id": "ben-mama", "amount": "10.00"},
    "getTransfer": {"transfer_id": "trf-00000001"},
    "searchProducts": {"query": "audifonos", "limit": "1"},
    "getProduct": {"product_id": "p-100"},
    "createPurchase": {"product_id": "p-100", "quantity": "1", "account_id": "acc-0001"},
    "getOrder": {"order_id": "ord-00000001"},
    "listOrders": {"limit": "2"},
}
LUIS_ACCOUNTS = {("u-luis", "acc-0002"), ("u-luis", "acc-0004")}

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
)
hostile_values = st.one_of(
    st.sampled_from(
        [
            "-10",
            "0",
            "0.00",
            "NaN",
            "Infinity",
            "-inf",
            "1e3",
            "1E-2",
            "10.001",
            "1,000.00",
            "１０",
            "٣",
            " 10 ",
            "10.",
            ".5",
            "+5",
            "0x10",
            "u-luis",
            "acc-0002",
            "acc-0004",
            "ben-ana",
            "ord-00000003",
            "trf-00000009",
            "eyJzIjoieCJ9.AAAA",
            "a" * 70_000,
            "\u0000",
            "\ud7ff\U0001f4b8",
            "'; DROP TABLE accounts;--",
            "../../etc/passwd",
        ]
    ),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**20), max_value=10**20),
    json_values,
    st.text(max_size=200),
)
param_names = st.sampled_from(
    [
        "account_id",
        "amount",
        "from_account_id",
        "destination_id",
        "beneficiary_id",
        "currency",
        "concept",
        "limit",
        "cursor",
        "quantity",
        "product_id",
        "order_id",
        "transfer_id",
        "idempotency_key",
        "query",
        "user_id",
        "customerId",
        "centli_identity",
        "admin",
    ]
) | st.text(max_size=40)
event_fields = st.sampled_from(
    [
        "sessionAttributes",
        "apiPath",
        "httpMethod",
        "function",
        "parameters",
        "requestBody",
        "inputText",
        "sessionId",
        "actionGroup",
        "messageVersion",
    ]
)


@st.composite
def hostile_calls(draw: st.DrawFn) -> tuple[str, str, Any, Any]:
    op = draw(st.sampled_from(OPERATIONS))
    fmt = draw(st.sampled_from(["openapi", "function", "agentcore"]))
    params: dict[str, Any] = dict(VALID[op.operation_id])
    if op.write:
        params["idempotency_key"] = draw(st.sampled_from(["k1", "k2"]))
    for _ in range(draw(st.integers(0, 3))):
        params[draw(param_names)] = draw(hostile_values)
    event, context = build_event(fmt, op.operation_id, params, user="u-ana", session="s1", text="hola")
    mutation = draw(st.sampled_from(["none", "drop", "retype", "route", "replace", "identity"]))
    if fmt == "agentcore":
        if mutation == "route":
            context.client_context.custom["bedrockAgentCoreToolName"] = draw(
                st.sampled_from(["x___deleteEverything", "getBalance", "", "a___b___listOrders"])
            )
        elif mutation == "replace":
            event = draw(json_values)
        elif mutation == "identity":
            event["centli_identity"] = draw(st.sampled_from([assertion("u-luis")[:-3], "x", 5, None]))
        elif mutation == "retype":
            context.client_context.custom = draw(json_values)
    elif mutation == "drop":
        event.pop(draw(event_fields), None)
    elif mutation == "retype":
        event[draw(event_fields)] = draw(json_values)
    elif mutation == "route":
        event["apiPath"] = draw(st.sampled_from(["/accounts/{account_id}", "/admin", "", "/orders/{order_id}/x"]))
        event["function"] = draw(st.sampled_from(["dropTables", "", "getbalance"]))
    elif mutation == "replace":
        event = draw(json_values)
    elif mutation == "identity":
        event["sessionAttributes"] = draw(
            st.sampled_from([{}, {"user_id": ""}, {"user_id": None}, {"user_id": ["u-ana"]}, {"user": "u-ana"}])
        )
    return fmt, op.action_group, event, context


def expected_format(event: Any, context: Any) -> str:
    custom = getattr(getattr(context, "client_context", None), "custom", None)
    if isinstance(custom, dict) and isinstance(custom.get("bedrockAgentCoreToolName"), str):
        return "agentcore"
    if isinstance(event, dict) and "function" in event and "apiPath" not in event:
        return "function"
    return "openapi"


def luis_balances(store: Any) -> dict[Any, Any]:
    return {k: v.balance for k, v in store.tables["accounts"].items() if k in LUIS_ACCOUNTS}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_calls())
def test_hostile_events_get_well_formed_answers_and_change_nothing_when_refused(
    call: tuple[str, str, Any, Any],
) -> None:
    _, action_group, event, context = call
    with open_harness() as harness:
        before = harness.snapshot()
        luis_before = luis_balances(harness.store)
        total_before = sum(a.balance.minor for a in harness.store.tables["accounts"].values())
        handler = aws_lambda.core_banking_handler if action_group == "core-banking" else aws_lambda.marketplace_handler
        raw = handler(copy.deepcopy(event), context)
        reply = decode(expected_format(event, context), raw)
        assert len(json.dumps(reply.body, ensure_ascii=False).encode()) <= 20 * 1024
        if reply.status != 200:
            assert set(reply.body) == {"error"}
            assert reply.status in (400, 401, 403, 404, 409, 422)  # never a 500 from bad input
            assert harness.snapshot() == before
        # Ana may pay Luis (he is her saved beneficiary), but nothing she sends can take his money.
        assert all(luis_balances(harness.store)[k] >= v for k, v in luis_before.items())
        assert sum(a.balance.minor for a in harness.store.tables["accounts"].values()) == total_before


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([op.operation_id for op in OPERATIONS if op.paged]), st.text(min_size=1, max_size=120))
def test_tampered_cursors_are_refused(operation: str, cursor: str) -> None:
    with open_harness() as harness:
        params = {**VALID[operation], "cursor": cursor}
        reply = harness.call("openapi", operation, params)
        assert reply.status == 400
        assert reply.body["error"]["code"] in ("INVALID_CURSOR", "INVALID_INPUT")
        assert BY_ID[operation].paged
