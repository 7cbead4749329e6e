"""The MCP server in-process (the official client, in-memory bank): tools from the table, confirmations, hygiene."""

from __future__ import annotations

import io
import json
import sys
from types import SimpleNamespace
from typing import Any

import anyio
import jsonschema
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from starlette.applications import Starlette

from centli.domain.errors import DomainError
from centli.domain.policy import MAX_CONCEPT_LENGTH
from centli.entrypoints import logs
from centli.entrypoints.container import Container
from centli.entrypoints.local_app import LocalSite
from centli.entrypoints.mcp import confirmations as confirmations_module
from centli.entrypoints.mcp import tools
from centli.entrypoints.mcp.confirmations import (
    MAX_QUOTES,
    Confirmations,
    TooManyQuotes,
    commit_claimed,
    describe,
    quoted_operations,
)
from centli.entrypoints.mcp.server import BankTools, ConfirmationUnavailable, http_unit
from centli.entrypoints.operations import BY_ID, OPERATIONS
from centli.entrypoints.wire import NoParameters
from tests.asgi import asgi
from tests.integration.mcp_support import Human, balance, cents, transfer
from tests.unit.entrypoints.conftest import Harness

ACCEPT = types.ElicitResult(action="accept", content={"confirm": True})


def test_every_operation_is_a_tool_with_its_models_schemas_and_the_tables_hints() -> None:
    assert [tool.name for tool in tools.TOOLS] == [op.operation_id for op in OPERATIONS]
    for tool, op in zip(tools.TOOLS, OPERATIONS, strict=True):
        assert tool.input_schema == op.request.model_json_schema(mode="validation")
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is not op.write
        assert tool.annotations.destructive_hint is op.write
        assert tool.annotations.idempotent_hint is (True if op.write else None)
        assert tool.output_schema is not None
        jsonschema.Draft202012Validator.check_schema(tool.output_schema)
        error = {"error": {"code": "NOT_FOUND", "message": "That was not found."}}
        jsonschema.validate(error, tool.output_schema)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"unexpected": True}, tool.output_schema)
    # Every write has a quote the human can read; a write without one would be refused, never run unconfirmed.
    assert quoted_operations() == {op.operation_id for op in OPERATIONS if op.write}
    assert NoParameters.model_json_schema()["additionalProperties"] is False


def test_a_tool_argument_cannot_confirm_and_a_forged_or_reused_state_moves_nothing(harness: Harness) -> None:
    """2026-07-28: the confirmation rides input_responses + a sealed requestState, never the model's arguments."""

    async def scenario() -> None:
        human = Human()
        bank = BankTools("u-ana")
        async with Client(bank.server, elicitation_callback=human) as client:
            before = await balance(client)
            smuggled = await client.call_tool("createTransfer", {**transfer(), "confirm": True})
            assert smuggled.is_error and smuggled.structured_content["error"]["code"] == "INVALID_INPUT"
            assert human.asked == []

            first = await client.session.call_tool("createTransfer", transfer(), allow_input_required=True)
            assert isinstance(first, types.InputRequiredResult) and first.request_state
            question = first.input_requests["confirm"] if first.input_requests else None
            assert isinstance(question, types.ElicitRequest) and question.params.mode == "form"
            assert "150.25 MXN" in question.params.message
            answers: types.InputResponses = {"confirm": ACCEPT}
            with pytest.raises(MCPError):  # a state this server never sealed
                await client.session.call_tool(
                    "createTransfer", transfer(), input_responses=answers, request_state="v1.forged"
                )
            with pytest.raises(MCPError):  # a real state, replayed for other arguments
                await client.session.call_tool(
                    "createTransfer",
                    transfer(amount="9999.00"),
                    input_responses=answers,
                    request_state=first.request_state,
                )
            declined = await client.session.call_tool(
                "createTransfer",
                transfer(),
                input_responses={"confirm": types.ElicitResult(action="decline")},
                request_state=first.request_state,
            )
            assert declined.is_error and declined.structured_content["error"]["code"] == "CONFIRMATION_DECLINED"
            reused = await client.session.call_tool(
                "createTransfer", transfer(), input_responses=answers, request_state=first.request_state
            )
            assert reused.is_error and reused.structured_content["error"]["code"] == "INVALID_CONFIRMATION"
            assert await balance(client) == before

    anyio.run(scenario)


def test_an_accepted_quote_retried_returns_the_one_commit(harness: Harness) -> None:
    async def scenario() -> None:
        bank = BankTools("u-ana")
        async with Client(bank.server, elicitation_callback=Human()) as client:
            before = await balance(client)
            first = await client.session.call_tool("createTransfer", transfer(), allow_input_required=True)
            assert isinstance(first, types.InputRequiredResult)
            answers: types.InputResponses = {"confirm": ACCEPT}
            results = [
                await client.session.call_tool(
                    "createTransfer", transfer(), input_responses=answers, request_state=first.request_state
                )
                for _ in range(2)
            ]
            assert results[0].structured_content == results[1].structured_content
            transfer_ids = {r.structured_content["transfer_id"] for r in results}
            assert len(transfer_ids) == 1
            assert cents(await balance(client)) == cents(before) - 15025

    anyio.run(scenario)


def test_quotes_are_single_use_and_expire() -> None:
    now = [100.0]

    async def scenario() -> None:
        confirmations = Confirmations(ttl=10, clock=lambda: now[0])
        op = BY_ID["createTransfer"]
        request = op.request.model_validate(transfer())
        quote = confirmations.open("u-ana", op, request, "Send money", [("Amount", "150.25 MXN")], "form")
        assert quote.parameters["idempotency_key"].startswith("mcp-")  # bound to this quote
        assert confirmations.claim(quote) and not confirmations.claim(quote)
        assert not confirmations.decline(quote)
        late = confirmations.open("u-ana", op, request, "Send money", [], "url")
        now[0] += 10
        assert not confirmations.claim(late) and late.state == "expired" and late.done.is_set() is False
        assert confirmations.expire(late) == "expired" and late.done.is_set()
        declined = confirmations.open("u-ana", op, request, "Send money", [], "form")
        assert confirmations.decline(declined) and not confirmations.claim(declined)
        keyed = confirmations.open(
            "u-ana", op, op.request.model_validate(transfer(idempotency_key="k-1")), "", [], "form"
        )
        assert keyed.parameters["idempotency_key"] == "k-1"  # the customer's own key is kept

    anyio.run(scenario)


def test_the_unit_protects_itself_without_the_local_runtimes_guard(harness: Harness) -> None:
    """The SDK's DNS-rebinding protection is on (explicitly), and the page checks the origin on its own."""
    site = LocalSite("127.0.0.1", 8123)
    unit = http_unit("u-ana", site)
    assert unit.security.enable_dns_rebinding_protection
    assert "127.0.0.1:8123" in unit.security.allowed_hosts
    assert "http://localhost:8123" in unit.security.allowed_origins
    app = Starlette(routes=unit.routes)
    initialize = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
    ).encode()
    mcp_headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}

    async def scenario() -> None:
        async with unit.lifespan():
            status, _, _ = await asgi(app, "POST", "/mcp", {**mcp_headers, "host": "evil.example:8123"}, initialize)
            assert status == 421
            status, _, _ = await asgi(
                app,
                "POST",
                "/mcp",
                {**mcp_headers, "host": "127.0.0.1:8123", "origin": "http://evil.example"},
                initialize,
            )
            assert status == 403
            decision = json.dumps({"decision": "confirm", "token": "x"}).encode()
            page_headers = {"content-type": "application/json", "host": "127.0.0.1:8123"}
            for origin in ({}, {"origin": "http://evil.example"}, {"origin": "http://localhost:8123"}):
                status, _, body = await asgi(app, "POST", "/confirm/abc", {**page_headers, **origin}, decision)
                assert status == 403 and json.loads(body)["error"]["code"] == "FORBIDDEN"
            status, _, body = await asgi(
                app, "POST", "/confirm/abc", {**page_headers, "origin": "http://127.0.0.1:8123"}, decision
            )
            assert status == 404  # same origin, but no such quote
            status, _, body = await asgi(app, "GET", "/confirm/abc", {"host": "127.0.0.1:8123"})
            assert status == 404 and b"not valid" in body

    anyio.run(scenario)


def test_the_log_stream_switch_moves_every_line(monkeypatch: pytest.MonkeyPatch) -> None:
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    logger = logs.service_logger("centli-mcp")
    try:
        logs.use_stream("stderr")
        logger.info("to stderr")
        logs.use_stream(None)
        container = Container()
        container.settings.reset()
        monkeypatch.setenv("CENTLI_LOG_STREAM", "stderr")
        container.settings()  # the settings read the environment once, and the logs take their stream
        logger.info("to stderr by the environment")
        logs.configure(level="INFO", stream="stdout")
        logger.info("to stdout")
    finally:
        logs.use_stream(None)
        logs.configure(level="INFO", stream="stdout")
    assert [json.loads(line)["message"] for line in err.getvalue().splitlines()] == [
        "to stderr",
        "to stderr by the environment",
    ]
    assert [json.loads(line)["message"] for line in out.getvalue().splitlines()] == ["to stdout"]
    with pytest.raises(ValueError):
        logs.use_stream("elsewhere")


@pytest.mark.parametrize(
    ("declared", "page", "confirm_mode", "expected"),
    [
        (types.ElicitationCapability(), False, "auto", "form"),  # an empty capability is form mode (2025-06-18)
        (types.ElicitationCapability(form=types.FormElicitationCapability()), True, "auto", "form"),
        (types.ElicitationCapability(url=types.UrlElicitationCapability()), True, "auto", "url"),
        (
            types.ElicitationCapability(form=types.FormElicitationCapability(), url=types.UrlElicitationCapability()),
            True,
            "url",
            "url",
        ),
        (types.ElicitationCapability(url=types.UrlElicitationCapability()), False, "auto", "only confirm on a web"),
        (types.ElicitationCapability(form=types.FormElicitationCapability()), True, "url", "cannot open it"),
        (None, True, "auto", "supports neither form nor URL"),
    ],
)
def test_the_mode_follows_what_the_client_declares(
    declared: types.ElicitationCapability | None, page: bool, confirm_mode: Any, expected: str
) -> None:
    bank = BankTools("u-ana", page_base="http://127.0.0.1:8123" if page else None, confirm_mode=confirm_mode)
    capabilities = types.ClientCapabilities(elicitation=declared)
    ctx: Any = SimpleNamespace(session=SimpleNamespace(client_capabilities=capabilities))
    if expected in ("form", "url"):
        assert bank._mode(ctx) == expected
    else:
        with pytest.raises(ConfirmationUnavailable, match=expected):
            bank._mode(ctx)


def test_the_page_says_so_when_the_confirmed_write_is_refused_by_the_bank(harness: Harness) -> None:
    site = LocalSite("127.0.0.1", 8123)
    unit = http_unit("u-ana", site)
    app = Starlette(routes=unit.routes)
    op = BY_ID["createTransfer"]
    request = op.request.model_validate(transfer(amount="49999.00"))  # more than Nómina holds

    async def scenario() -> None:
        quote = unit.bank.confirmations.open("u-ana", op, request, "Send money", [("Amount", "49999.00 MXN")], "url")
        headers = {"content-type": "application/json", "host": "127.0.0.1:8123", "origin": "http://127.0.0.1:8123"}
        odd = json.dumps({"decision": "confirm", "token": "é" * 8}).encode()
        status, _, _ = await asgi(app, "POST", f"/confirm/{quote.quote_id}", headers, odd)
        assert status == 404 and quote.state == "pending"  # a wrong token, even a non-ASCII one, is just wrong
        decision = json.dumps({"decision": "confirm", "token": quote.page_token}).encode()
        status, _, body = await asgi(app, "POST", f"/confirm/{quote.quote_id}", headers, decision)
        answer = json.loads(body)
        assert status == 422 and answer["error"]["code"] == "INSUFFICIENT_FUNDS"
        assert "could not carry this out" in answer["message"]
        status, _, page = await asgi(app, "GET", f"/confirm/{quote.quote_id}", {"host": "127.0.0.1:8123"})
        assert status == 200 and b"could not carry this out" in page and b"Done" not in page
        status, _, _ = await asgi(app, "POST", f"/confirm/{quote.quote_id}", headers, decision)
        assert status == 409  # used: the refused write is not retried by a second click

    anyio.run(scenario)


def test_a_quote_shows_written_text_on_one_line_so_it_cannot_fake_another_line(harness: Harness) -> None:
    op = BY_ID["createTransfer"]
    spoof = "Renta\nAmount: 1.00 MXN\r\nTo: \u202eMamá\u200b" + "x" * 300
    request = op.request.model_validate(transfer(concept=spoof[:140]))
    title, lines = describe(harness.app, "u-ana", op, request)
    assert title == "Send money"
    assert [label for label, _ in lines] == ["Amount", "From", "To", "Concept"]
    assert lines[0] == ("Amount", "150.25 MXN")
    concept = dict(lines)["Concept"]
    assert "\n" not in concept and "\r" not in concept and "\u202e" not in concept and "\u200b" not in concept
    # The whole concept is shown (the recipient sees every character), on one line, quoted.
    assert concept.startswith("“Renta Amount: 1.00 MXN To: Mamá") and len(concept) <= MAX_CONCEPT_LENGTH + 2
    assert "…" not in concept and concept.endswith("x”")
    assert dict(lines)["To"] == "“Mamá”, saved beneficiary (account ending 0002)"
    with pytest.raises(DomainError) as foreign:
        describe(harness.app, "u-ana", op, op.request.model_validate(transfer(from_account_id="acc-0002")))
    assert foreign.value.code == "ACCOUNT_NOT_FOUND"
    purchase = BY_ID["createPurchase"]
    _, bought = describe(
        harness.app,
        "u-ana",
        purchase,
        purchase.request.model_validate({"product_id": "p-200", "quantity": 2, "account_id": "acc-0003"}),
    )
    assert dict(bought) == {
        "Product": "“Licuadora” (p-200)",
        "Quantity": "2",
        "Total": "2599.80 MXN",
        "Paid from": "“Ahorro” (account ending 0003)",
    }


def test_a_live_quote_is_never_evicted_a_full_table_refuses_new_ones() -> None:
    now = [100.0]
    confirmations = Confirmations(ttl=10, clock=lambda: now[0])
    op = BY_ID["createTransfer"]
    request = op.request.model_validate(transfer())
    watched = confirmations.open("u-ana", op, request, "Send money", [], "url")
    committing = confirmations.open("u-ana", op, request, "Send money", [], "url")
    assert confirmations.claim(committing)
    others = [confirmations.open("u-ana", op, request, "", [], "form") for _ in range(MAX_QUOTES - 2)]
    with pytest.raises(TooManyQuotes):  # a model looping on writes cannot push out the human's quote
        confirmations.open("u-ana", op, request, "", [], "form")
    assert watched.state == "pending" and confirmations.get(watched.quote_id) is watched
    assert committing.state == "committing" and confirmations.get(committing.quote_id) is committing
    assert confirmations.decline(others[0])
    fresh = confirmations.open("u-ana", op, request, "", [], "form")  # a finished quote makes room
    assert confirmations.get(others[0].quote_id) is None and confirmations.get(fresh.quote_id) is fresh
    assert watched.state == "pending"


def test_a_commit_that_blows_up_still_finishes_the_quote(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_quote: object) -> None:
        raise RuntimeError("the store went away")

    monkeypatch.setattr(confirmations_module, "commit", broken)
    confirmations = Confirmations(ttl=10)
    op = BY_ID["createTransfer"]
    quote = confirmations.open("u-ana", op, op.request.model_validate(transfer()), "Send money", [], "url")
    assert confirmations.claim(quote)

    async def scenario() -> None:
        outcome = await commit_claimed(confirmations, quote)
        assert outcome.result.status == 500 and outcome.code == "INTERNAL_ERROR"
        with anyio.fail_after(1):
            await quote.done.wait()  # waiters are released, never left hanging on "committing"

    anyio.run(scenario)
    assert quote.state == "committed" and quote.outcome is not None


def test_the_page_does_not_know_a_form_mode_quote(harness: Harness) -> None:
    site = LocalSite("127.0.0.1", 8123)
    unit = http_unit("u-ana", site)
    app = Starlette(routes=unit.routes)
    op = BY_ID["createTransfer"]
    request = op.request.model_validate(transfer())

    async def scenario() -> None:
        quote = unit.bank.confirmations.open("u-ana", op, request, "Send money", [], "form")
        headers = {"content-type": "application/json", "host": "127.0.0.1:8123", "origin": "http://127.0.0.1:8123"}
        decision = json.dumps({"decision": "confirm", "token": quote.page_token}).encode()
        status, _, _ = await asgi(app, "POST", f"/confirm/{quote.quote_id}", headers, decision)
        assert status == 404 and quote.state == "pending"
        status, _, _ = await asgi(app, "GET", f"/confirm/{quote.quote_id}", {"host": "127.0.0.1:8123"})
        assert status == 404

    anyio.run(scenario)
