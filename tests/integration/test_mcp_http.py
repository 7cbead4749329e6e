"""``/mcp`` on ``centli serve --mcp-user u-ana``: the official MCP client over streamable HTTP, real server."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from mcp import Client

from centli.entrypoints.operations import OPERATIONS
from tests.integration.local_runtime import LocalServer as Server
from tests.integration.mcp_support import (
    ERAS,
    Human,
    balance,
    check_confirmed_purchase,
    check_confirmed_writes,
    check_listing_and_reads,
    check_refusals,
    check_refused_without_elicitation,
    transfer,
)

pytestmark = pytest.mark.integration
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module: every check measures its own before and after."""
    running = Server(tmp_path_factory.mktemp("mcp-http") / "centli.db", args=("--mcp-user", "u-ana"))
    try:
        yield running
    finally:
        running.stop()


def post_mcp(base: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(
        f"{base}/mcp",
        data=json.dumps(INITIALIZE).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_tools_listed_and_reads_answer_and_other_customers_refused(server: Server) -> None:
    async def scenario() -> None:
        human = Human()
        async with Client(f"{server.base}/mcp", elicitation_callback=human) as client:
            assert client.protocol_version == ERAS["auto"]
            await check_listing_and_reads(client)
            await check_refusals(client, human)

    anyio.run(scenario)


@pytest.mark.parametrize("mode", list(ERAS))
def test_writes_commit_once_when_the_human_accepts_in_the_client(server: Server, mode: str) -> None:
    async def scenario() -> None:
        human = Human()
        async with Client(f"{server.base}/mcp", mode=mode, elicitation_callback=human) as client:
            assert client.protocol_version == ERAS[mode]
            await check_confirmed_writes(client, human)
            await check_confirmed_purchase(client, human)

    anyio.run(scenario)


@pytest.mark.parametrize("mode", list(ERAS))
def test_a_client_without_elicitation_is_refused_and_nothing_moves(server: Server, mode: str) -> None:
    async def scenario() -> None:
        async with Client(f"{server.base}/mcp", mode=mode) as client:
            await check_refused_without_elicitation(client)

    anyio.run(scenario)


def test_url_mode_declined_by_the_client_moves_nothing(tmp_path: Path) -> None:
    """With --mcp-confirm url the human is sent to the bank's page; declining to go there moves nothing."""
    running = Server(tmp_path / "centli.db", args=("--mcp-user", "u-ana", "--mcp-confirm", "url"))
    try:

        async def scenario() -> None:
            human = Human(action="decline")
            async with Client(f"{running.base}/mcp", elicitation_callback=human) as client:
                before = await balance(client)
                refused = await client.call_tool("createTransfer", transfer())
                assert refused.is_error
                assert refused.structured_content["error"]["code"] == "CONFIRMATION_DECLINED"
                assert len(human.asked) == 1 and human.asked[0].mode == "url"
                url = human.asked[0].url  # type: ignore[union-attr]
                assert url.startswith(f"{running.base}/confirm/")
                assert await balance(client) == before
                with urllib.request.urlopen(url, timeout=10) as page:  # the page agrees: nothing to confirm
                    assert "You declined this operation" in page.read().decode()

        anyio.run(scenario)
    finally:
        running.stop()


def test_foreign_host_or_origin_on_mcp_is_refused(server: Server) -> None:
    port = server.base.rsplit(":", 1)[1]
    assert post_mcp(server.base, {}) == 200  # the same request from this machine is served
    assert post_mcp(server.base, {"Host": f"evil.example:{port}"}) in (403, 421)
    assert post_mcp(server.base, {"Host": "evil.example"}) in (403, 421)
    assert post_mcp(server.base, {"Origin": "http://evil.example"}) == 403
    assert post_mcp(server.base, {"Origin": f"http://localhost:{int(port) + 1}"}) == 403


def test_the_home_page_lists_mcp_and_its_tools(server: Server) -> None:
    with urllib.request.urlopen(f"{server.base}/", timeout=10) as response:
        page = response.read().decode()
    assert f"{server.base}/mcp" in page
    for op in OPERATIONS:
        assert f"<code>{op.operation_id}</code>" in page


def test_mcp_is_off_without_an_mcp_user(tmp_path: Path) -> None:
    running = Server(tmp_path / "centli.db")
    try:
        assert post_mcp(running.base, {}) == 404
        with urllib.request.urlopen(f"{running.base}/", timeout=10) as response:
            assert "/mcp" not in response.read().decode()
    finally:
        running.stop()
