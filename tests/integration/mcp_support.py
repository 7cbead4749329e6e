"""What the MCP tests share: the official client's callbacks, the schema checks and the balance reads."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import mcp_types as types
from mcp import Client
from mcp.client.session import ClientRequestContext

from centli.entrypoints.operations import BY_ID, OPERATIONS

#: Every read with arguments that answer 200 on the demo bank (u-ana).
#: The two protocol eras the SDK speaks, by client mode: the initialize handshake, and the handshake-free one.
ERAS = {"legacy": "2025-11-25", "auto": "2026-07-28"}
READS: dict[str, dict[str, Any]] = {
    "listAccounts": {},
    "getBalance": {"account_id": "acc-0001"},
    "listTransactions": {"account_id": "acc-0001", "limit": 5},
    "listBeneficiaries": {},
    "searchProducts": {"query": "licuadora"},
    "getProduct": {"product_id": "p-100"},
    "listOrders": {},
}


@dataclass
class Human:
    """An elicitation callback that answers like a person would, and remembers what it was shown."""

    action: str = "accept"
    content: dict[str, Any] | None = field(default_factory=lambda: {"confirm": True})
    asked: list[types.ElicitRequestParams] = field(default_factory=list)

    async def __call__(self, ctx: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.asked.append(params)
        if self.action != "accept":
            return types.ElicitResult(action=self.action)  # type: ignore[arg-type]
        return types.ElicitResult(action="accept", content=self.content if params.mode == "form" else None)


async def balance(client: Client, account_id: str = "acc-0001") -> str:
    result = await client.call_tool("getBalance", {"account_id": account_id})
    assert not result.is_error, result.structured_content
    return str(result.structured_content["balance"])


async def movements(client: Client, account_id: str = "acc-0001") -> list[dict[str, Any]]:
    result = await client.call_tool("listTransactions", {"account_id": account_id, "limit": 50})
    assert not result.is_error
    return list(result.structured_content["transactions"])


def check_against_schema(tool: types.Tool, result: types.CallToolResult) -> None:
    """Every answer, success or error, is described by the tool's output schema."""
    assert tool.output_schema is not None
    jsonschema.validate(result.structured_content, tool.output_schema)
    assert result.is_error == ("error" in result.structured_content)
    assert result.content and isinstance(result.content[0], types.TextContent)


async def check_listing_and_reads(client: Client) -> dict[str, types.Tool]:
    listed = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert list(listed) == [op.operation_id for op in OPERATIONS]
    for op in OPERATIONS:
        tool = listed[op.operation_id]
        assert tool.input_schema["type"] == "object"
        assert set(tool.input_schema["properties"]) == set(op.request.model_fields)
        assert tool.input_schema.get("additionalProperties") is False
        assert tool.output_schema is not None and tool.output_schema["type"] == "object"
        success, failure = tool.output_schema["anyOf"]
        assert set(success["properties"]) == set(op.response.model_fields)
        assert set(failure["properties"]) == {"error"}
        annotations = tool.annotations
        assert annotations is not None
        assert annotations.read_only_hint is (not op.write)
        assert annotations.destructive_hint is op.write
        assert annotations.idempotent_hint is (True if op.write else None)
    for name, arguments in READS.items():
        assert not BY_ID[name].write
        result = await client.call_tool(name, arguments)
        assert not result.is_error, (name, result.structured_content)
        check_against_schema(listed[name], result)
    missing = await client.call_tool("getTransfer", {"transfer_id": "trf-nope"})
    assert missing.is_error and missing.structured_content["error"]["code"] == "TRANSFER_NOT_FOUND"
    check_against_schema(listed["getTransfer"], missing)
    return listed


async def check_refusals(client: Client, human: Human) -> None:
    """A user_id argument and another customer's account are refused, before anyone is asked anything."""
    before = await balance(client)
    named = await client.call_tool("getBalance", {"account_id": "acc-0001", "user_id": "u-luis"})
    assert named.is_error and named.structured_content["error"]["code"] == "FORBIDDEN"
    write_named = await client.call_tool("createTransfer", transfer(user_id="u-luis"))
    assert write_named.is_error and write_named.structured_content["error"]["code"] == "FORBIDDEN"
    foreign = await client.call_tool("getBalance", {"account_id": "acc-0002"})
    assert foreign.is_error and foreign.structured_content["error"]["code"] == "ACCOUNT_NOT_FOUND"
    foreign_history = await client.call_tool("listTransactions", {"account_id": "acc-0002"})
    assert foreign_history.is_error and foreign_history.structured_content["error"]["code"] == "ACCOUNT_NOT_FOUND"
    foreign_write = await client.call_tool("createTransfer", transfer(from_account_id="acc-0002"))
    assert foreign_write.is_error and foreign_write.structured_content["error"]["code"] == "ACCOUNT_NOT_FOUND"
    foreign_purchase = await client.call_tool(
        "createPurchase", {"product_id": "p-100", "quantity": 1, "account_id": "acc-0002"}
    )
    assert foreign_purchase.is_error and foreign_purchase.structured_content["error"]["code"] == "ACCOUNT_NOT_FOUND"
    assert human.asked == []
    assert await balance(client) == before


# writes -------------------------------------------------------------------------------------
def transfer(**overrides: Any) -> dict[str, Any]:
    """A transfer to Mamá (a saved beneficiary), with the operation table's five parameters."""
    return {
        "from_account_id": "acc-0001",
        "destination_id": "ben-mama",
        "amount": "150.25",
        "concept": "Renta",
        **overrides,
    }


def cents(amount: str) -> int:
    whole, _, fraction = amount.partition(".")
    return int(whole) * 100 + int((fraction + "00")[:2])


async def check_confirmed_writes(client: Client, human: Human, mode: str = "form") -> None:
    """Accepted: commits once (and a retried key replays); declined, cancelled or unticked: nothing moves."""
    before, history = await balance(client), len(await movements(client))
    result = await client.call_tool("createTransfer", transfer())
    assert not result.is_error, result.structured_content
    body = result.structured_content
    assert body["status"] == "COMPLETED" and body["amount"] == "150.25" and body["from_account_id"] == "acc-0001"
    assert len(human.asked) == 1 and human.asked[0].mode == mode
    if mode == "form":
        shown = human.asked[0].message
        for expected in ("150.25 MXN", "Nómina", "0001", "Mamá", "0002", "Renta"):
            assert expected in shown, (expected, shown)
    assert cents(await balance(client)) == cents(before) - 15025
    assert len(await movements(client)) == history + 1
    fetched = await client.call_tool("getTransfer", {"transfer_id": body["transfer_id"]})
    assert not fetched.is_error and fetched.structured_content["transfer_id"] == body["transfer_id"]

    # The same idempotency key, confirmed twice: one transfer, the second answer replays it.
    keyed = transfer(amount="10.00", idempotency_key=f"mcp-test-{uuid.uuid4().hex}")
    first = await client.call_tool("createTransfer", keyed)
    second = await client.call_tool("createTransfer", keyed)
    assert not first.is_error and not second.is_error
    assert first.structured_content["transfer_id"] == second.structured_content["transfer_id"]
    assert cents(await balance(client)) == cents(before) - 15025 - 1000
    assert len(await movements(client)) == history + 2

    settled = await balance(client)
    for action, content, code in (
        ("decline", None, "CONFIRMATION_DECLINED"),
        ("cancel", None, "CONFIRMATION_DECLINED"),
        ("accept", {"confirm": False}, "CONFIRMATION_DECLINED"),
    ):
        if mode == "url" and content is not None:
            continue  # URL mode has no form content
        human.action, human.content = action, content
        refused = await client.call_tool("createTransfer", transfer(amount="20.00"))
        assert refused.is_error and refused.structured_content["error"]["code"] == code, refused.structured_content
    assert await balance(client) == settled
    assert len(await movements(client)) == history + 2
    human.action, human.content = "accept", {"confirm": True}


async def check_confirmed_purchase(client: Client, human: Human) -> None:
    before = await balance(client)
    asked = len(human.asked)
    result = await client.call_tool("createPurchase", {"product_id": "p-100", "quantity": 1, "account_id": "acc-0001"})
    assert not result.is_error, result.structured_content
    assert len(human.asked) == asked + 1
    if human.asked[-1].mode == "form":
        assert "Audífonos" in human.asked[-1].message and "499.00 MXN" in human.asked[-1].message
    order = await client.call_tool("getOrder", {"order_id": result.structured_content["order_id"]})
    assert not order.is_error and order.structured_content["status"] == "CONFIRMED"
    assert cents(await balance(client)) == cents(before) - 49900


async def check_refused_without_elicitation(client: Client) -> None:
    before, history = await balance(client), len(await movements(client))
    stock = (await client.call_tool("getProduct", {"product_id": "p-100"})).structured_content["available"]
    for name, arguments in (
        ("createTransfer", transfer()),
        ("createPurchase", {"product_id": "p-100", "quantity": 1, "account_id": "acc-0001"}),
    ):
        refused = await client.call_tool(name, arguments)
        assert refused.is_error
        error = refused.structured_content["error"]
        assert error["code"] == "CONFIRMATION_UNAVAILABLE" and "Nothing was done" in error["message"]
    assert await balance(client) == before
    assert len(await movements(client)) == history
    products = await client.call_tool("getProduct", {"product_id": "p-100"})
    assert products.structured_content["available"] == stock
