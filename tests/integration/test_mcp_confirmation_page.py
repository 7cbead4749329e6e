"""The URL-mode confirmation page in a real browser: the OS's headless Chromium driven by Playwright.

``centli serve --mcp-user u-ana --mcp-confirm url``: a write sent over ``/mcp`` waits while the human
opens the page the client was given, reads the quote and clicks. Only that click commits, once; a
second click, a page of another origin, or a click after the link expired moves nothing.
Never skipped: ``make test`` installs Chromium from the OS packages (nothing from a browser vendor).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext
from playwright.async_api import Browser, Page, async_playwright

from tests.integration.local_runtime import LocalServer as Server
from tests.integration.mcp_support import ERAS, balance, cents, movements, transfer

pytestmark = pytest.mark.integration
#: The handshake era asks over the session mid-call; 2026-07-28 asks through an input_required result.
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: A CSS wait (no script): the page's CSP forbids the eval a string predicate would need.
STATUS_SHOWN = "#status:not(:empty)"
POST_AS_THE_PAGE = """async (token) => {
  const r = await fetch(location.pathname, {method: "POST", headers: {"Content-Type": "application/json"},
                                            body: JSON.stringify({decision: "confirm", token: token})});
  return [r.status, await r.json()];
}"""


@dataclass
class Opener:
    """A client's URL-mode handler: agrees to open the link and hands it to the browser."""

    urls: list[str] = field(default_factory=list)
    arrived: anyio.Event = field(default_factory=anyio.Event)

    async def __call__(self, ctx: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert params.mode == "url", "this server asks on its page only"
        self.urls.append(params.url)
        self.arrived.set()
        return types.ElicitResult(action="accept")

    async def next_url(self) -> str:
        with anyio.fail_after(30):
            await self.arrived.wait()
        self.arrived = anyio.Event()
        return self.urls[-1]


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


def start(db: Path, confirm_seconds: str) -> Server:
    args = ("--mcp-user", "u-ana", "--mcp-confirm", "url", "--confirm-seconds", confirm_seconds)
    return Server(db, args=args)


@pytest.fixture(scope="module")
def page_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the tests with a minute to confirm: each measures its own before and after."""
    running = start(tmp_path_factory.mktemp("mcp-page") / "centli.db", "60")
    try:
        yield running
    finally:
        running.stop()


@asynccontextmanager
async def connected(server: Server, mode: str = "auto") -> AsyncIterator[tuple[Client, Opener]]:
    opener = Opener()
    async with Client(f"{server.base}/mcp", mode=mode, elicitation_callback=opener) as client:
        assert client.protocol_version == ERAS[mode]
        yield client, opener


async def open_quote(browser: Browser, url: str) -> tuple[Page, str, str]:
    page = await browser.new_page()
    response = await page.goto(url)
    assert response is not None and response.status == 200
    quote = await page.text_content("#quote") or ""
    token = await page.get_attribute("#quote", "data-token") or ""
    assert token and await page.is_visible("#confirm")
    return page, quote, token


@pytest.mark.parametrize("mode", list(ERAS))
def test_one_click_on_the_page_commits_once_and_a_second_click_moves_nothing(page_server: Server, mode: str) -> None:
    async def scenario() -> None:
        async with connected(page_server, mode) as (client, opener), chromium() as browser:
            before, history = await balance(client), len(await movements(client))
            answer: dict[str, Any] = {}

            async def write() -> None:
                answer["result"] = await client.call_tool("createTransfer", transfer())

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(write)
                url = await opener.next_url()
                page, quote, token = await open_quote(browser, url)
                for expected in ("150.25 MXN", "Nómina", "0001", "Mamá", "0002", "Renta"):
                    assert expected in quote, (expected, quote)
                second_tab, _, _ = await open_quote(browser, url)  # the same link, open twice
                assert cents(await balance(client)) == cents(before)  # reading the page changed nothing
                await page.click("#confirm")
                await page.wait_for_selector(STATUS_SHOWN)
                assert "Done" in (await page.text_content("#status") or "")

            result = answer["result"]
            assert not result.is_error, result.structured_content
            assert result.structured_content["amount"] == "150.25"
            assert cents(await balance(client)) == cents(before) - 15025
            assert len(await movements(client)) == history + 1

            # A second click: in the other tab, and the same POST again from the first page.
            await second_tab.click("#confirm")
            await second_tab.wait_for_selector(STATUS_SHOWN)
            assert "already used" in (await second_tab.text_content("#status") or "")
            status, body = await page.evaluate(POST_AS_THE_PAGE, token)
            assert status == 409 and body["error"]["code"] == "CONFIRMATION_USED"
            assert cents(await balance(client)) == cents(before) - 15025
            assert len(await movements(client)) == history + 1

    anyio.run(scenario)


def test_a_page_of_another_origin_cannot_confirm(page_server: Server) -> None:
    server = page_server

    async def scenario() -> None:
        async with connected(server) as (client, opener), chromium() as browser:
            before = await balance(client)
            answer: dict[str, Any] = {}

            async def write() -> None:
                answer["result"] = await client.call_tool("createTransfer", transfer())

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(write)
                url = await opener.next_url()
                real, _, token = await open_quote(browser, url)
                # Another origin (same machine, another name: http://localhost:PORT), even one that knows the token.
                port = server.base.rsplit(":", 1)[1]
                foreign = await browser.new_page()
                await foreign.goto(f"http://localhost:{port}/health")
                attempts = await foreign.evaluate(
                    """async ([url, token]) => {
                      const body = JSON.stringify({decision: "confirm", token: token});
                      const outcomes = [];
                      try {  // JSON needs a CORS preflight the server never grants
                        await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"}, body});
                        outcomes.push("json-sent");
                      } catch (e) { outcomes.push("json-blocked"); }
                      try {  // a "simple" request goes out without a preflight; the server must refuse it
                        await fetch(url, {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
                                          body});
                        outcomes.push("simple-sent");
                      } catch (e) { outcomes.push("simple-blocked"); }
                      return outcomes;
                    }""",
                    [url, token],
                )
                assert attempts[0] == "json-blocked"
                # A cross-site form post, the classic CSRF.
                await foreign.set_content(
                    f'<form id="f" method="POST" action="{url}" enctype="text/plain">'
                    f'<input name=\'{{"decision":"confirm","token":"{token}","x":"\' value=\'"}}\'></form>'
                )
                async with foreign.expect_navigation():
                    await foreign.evaluate("document.getElementById('f').submit()")
                assert "FORBIDDEN_ORIGIN" in await foreign.content()
                assert cents(await balance(client)) == cents(before)
                # The quote is still waiting for its human, who declines it on the real page.
                await real.reload()
                assert await real.is_visible("#confirm")
                await real.click("#decline")
                await real.wait_for_selector(STATUS_SHOWN)
                assert "declined" in (await real.text_content("#status") or "")

            result = answer["result"]
            assert result.is_error and result.structured_content["error"]["code"] == "CONFIRMATION_DECLINED"
            assert cents(await balance(client)) == cents(before)

    anyio.run(scenario)


def test_an_expired_link_moves_nothing(tmp_path: Path) -> None:
    server = start(tmp_path / "centli.db", "6")

    async def scenario() -> None:
        async with connected(server) as (client, opener), chromium() as browser:
            before, history = await balance(client), len(await movements(client))
            answer: dict[str, Any] = {}

            async def write() -> None:
                answer["result"] = await client.call_tool("createTransfer", transfer())

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(write)
                url = await opener.next_url()
                page, _, _ = await open_quote(browser, url)  # opened in time (6 s), clicked too late

            result = answer["result"]  # the call ended when the quote expired
            assert result.is_error and result.structured_content["error"]["code"] == "CONFIRMATION_EXPIRED"
            await page.click("#confirm")
            await page.wait_for_selector(STATUS_SHOWN)
            assert "expired" in (await page.text_content("#status") or "")
            assert cents(await balance(client)) == cents(before)
            assert len(await movements(client)) == history
            reopened = await browser.new_page()
            response = await reopened.goto(url)
            assert response is not None and response.status == 410
            assert not await reopened.is_visible("#confirm")

    try:
        anyio.run(scenario)
    finally:
        server.stop()
