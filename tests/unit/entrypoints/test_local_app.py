"""The local app in-process (ASGI calls, no socket): the guard on added routes, the lifespan order, and
that nothing the Lambda bundle runs imports the web stack."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from centli.adapters.memory import InMemoryStore
from centli.entrypoints import local_app, runtime
from centli.entrypoints.local_app import LocalSite, create_app
from centli.entrypoints.settings import Settings
from tests.asgi import asgi
from tests.containers import overridden

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def memory_bank() -> Any:
    with overridden(runtime.container, settings=Settings(backend="memory"), store=InMemoryStore()):
        yield


def test_added_routes_get_the_guard_and_may_skip_only_the_content_type_rule() -> None:
    async def echo(request: Request) -> Response:
        return JSONResponse({"got": (await request.body()).decode()})

    app = create_app(
        extra_routes=[Route("/mcp", echo, methods=["POST"]), Route("/confirm", echo, methods=["POST"])],
        content_type_exempt=("/mcp",),
    )

    async def scenario() -> None:
        # exempt from the Content-Type rule: the body reaches the route
        status, _, body = await asgi(app, "POST", "/mcp", {"content-type": "text/plain"}, b"hello")
        assert (status, json.loads(body)) == (200, {"got": "hello"})
        # not exempt: a browser's simple POST is refused before the route runs
        status, _, body = await asgi(app, "POST", "/confirm", {"content-type": "text/plain"}, b"hello")
        assert (status, json.loads(body)["error"]["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")
        # Host, Origin and size apply to exempt routes too
        status, _, body = await asgi(app, "POST", "/mcp", {"origin": "http://evil.example"}, b"{}")
        assert (status, json.loads(body)["error"]["code"]) == (403, "FORBIDDEN_ORIGIN")
        big = b"x" * (local_app.MAX_REQUEST_BYTES + 1)
        status, _, body = await asgi(app, "POST", "/mcp", {"content-type": "application/json"}, big)
        assert (status, json.loads(body)["error"]["code"]) == (413, "REQUEST_TOO_LARGE")
        same_origin = {"origin": "http://127.0.0.1:8080", "content-type": "application/json"}
        assert (await asgi(app, "POST", "/confirm", same_origin, b"{}"))[0] == 200

    asyncio.run(scenario())


def test_the_lifespan_starts_the_workers_then_the_extra_lifespans_and_stops_in_reverse() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def extra() -> AsyncIterator[None]:
        events.append(f"extra enter, workers {sorted(t.name for t in _workers())}")
        yield
        events.append("extra exit")

    app = create_app(lifespans=[extra], sweep_interval=60, relay_interval=60)

    async def scenario() -> None:
        async with app.router.lifespan_context(app):
            events.append("serving")
        events.append(f"after, workers {sorted(t.name for t in _workers())}")

    asyncio.run(scenario())
    assert events == [
        "extra enter, workers ['centli-relay', 'centli-sweeper']",
        "serving",
        "extra exit",
        "after, workers []",
    ]


def _workers() -> list[Any]:
    import threading

    return [t for t in threading.enumerate() if t.name in ("centli-relay", "centli-sweeper")]


def test_the_site_names_what_callers_need() -> None:
    site = LocalSite("127.0.0.1", 8123)
    assert site.base_url == "http://127.0.0.1:8123"
    assert "http://localhost:8123" in site.allowed_origins
    assert LocalSite("::1", 9).base_url == "http://[::1]:9"
    app = create_app(site=site)
    assert app.state.site is site


def test_405_carries_allow_and_head_is_a_get() -> None:
    app = create_app()

    async def scenario() -> None:
        status, headers, body = await asgi(app, "DELETE", "/orders")
        assert (status, json.loads(body)["error"]["code"]) == (405, "METHOD_NOT_ALLOWED")
        assert "GET" in headers["allow"]
        status, _, body = await asgi(app, "HEAD", "/health")
        assert status == 200  # uvicorn sends no body for HEAD

    asyncio.run(scenario())


def test_the_lambda_bundle_works_without_the_web_stack() -> None:
    """The Lambda bundle installs only [project.dependencies]: every handler must import and answer without them."""
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    web = {"starlette", "uvicorn", "httptools", "uvloop", "mcp"}
    assert not [d for d in dependencies if d.split(">")[0].split("[")[0].split(";")[0].strip() in web]
    probe = f"""
import json, sys
class NotInTheBundle:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {sorted(web)!r}:
            raise ImportError(name + " is not in the Lambda bundle")
        return None
sys.meta_path.insert(0, NotInTheBundle())
from centli.entrypoints import aws_lambda, agentcore_interceptor
event = json.load(open("events/bedrock-openapi/getBalance.json"))
answer = aws_lambda.core_banking_handler(event, None)
print(answer["response"]["httpStatusCode"])
"""
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env={"CENTLI_BACKEND": "memory", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "200"


def test_operation_routes_are_answered_by_the_guards_direct_dispatch_with_the_correlation_id() -> None:
    """The REST operations skip the router (OperationEndpoint); their answers keep the contract's shape."""
    app = create_app()

    async def scenario() -> None:
        status, headers, body = await asgi(app, "GET", "/accounts", {"x-centli-user": "u-ana"})
        assert (status, json.loads(body)["accounts"]) == (200, [])
        assert headers["content-type"] == "application/json"
        assert headers["x-correlation-id"].startswith("local-")
        json_post = {"content-type": "application/json", "x-centli-user": "u-ana", "x-correlation-id": "c-1"}
        status, headers, body = await asgi(app, "POST", "/transfers", json_post, b"[1]")
        assert (status, json.loads(body)["error"]["code"]) == (400, "INVALID_INPUT")
        assert headers["x-correlation-id"] == "c-1"
        status, _, body = await asgi(app, "GET", "/accounts")  # no X-Centli-User: refused, not a crash
        assert (status, json.loads(body)["error"]["code"]) == (401, "UNAUTHENTICATED")

    asyncio.run(scenario())


def test_an_unexpected_failure_is_the_contracts_json_500_on_the_hot_paths_and_the_others(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A REST operation (run by the guard itself) and a routed path both answer a bug with the JSON 500, logged."""

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    async def failing(request: Request) -> Response:
        raise RuntimeError("disk on fire")

    app = create_app(extra_routes=[Route("/broken", failing, methods=["GET"])])
    monkeypatch.setattr(runtime, "run", broken)
    capsys.readouterr()

    async def call(path: str) -> list[dict[str, Any]]:
        headers = [(b"host", b"127.0.0.1:8080"), (b"x-centli-user", b"u-ana"), (b"x-correlation-id", b"corr-500")]
        scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "root_path": "",
                 "query_string": b"", "headers": headers, "scheme": "http", "http_version": "1.1",
                 "asgi": {"version": "3.0"}, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080),
                 "state": {}}  # fmt: skip
        messages: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            messages.append(message)

        with pytest.raises(RuntimeError):  # re-raised after the answer, as Starlette does, so the server logs it
            await app(scope, receive, send)
        return messages

    for path in ("/accounts/acc-0001/balance", "/broken"):
        start, body = asyncio.run(call(path))
        assert start["status"] == 500
        assert json.loads(body["body"])["error"]["code"] == "INTERNAL_ERROR"
        assert b"disk on fire" not in body["body"]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    failures = [line for line in lines if line["message"] == "request failed"]
    assert len(failures) == 2 and all("disk on fire" in line["exception"] for line in failures)
    assert failures[0]["correlation_id"] == "corr-500"
