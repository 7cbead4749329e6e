"""One HTTP request through an ASGI app in process, as uvicorn would make it (unit tests of the local runtime)."""

from __future__ import annotations

import asyncio
from typing import Any


async def asgi(
    app: Any, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request; ``Host`` defaults to the local runtime's own address."""
    given = {k.lower(): v for k, v in (headers or {}).items()}
    given.setdefault("host", "127.0.0.1:8080")
    raw_headers = [(k.encode(), v.encode()) for k, v in given.items()]
    if body:
        raw_headers.append((b"content-length", str(len(body)).encode()))
    host, _, port = given["host"].rpartition(":")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": raw_headers,
        "client": ("127.0.0.1", 50000),
        "server": (host or "127.0.0.1", int(port) if port.isdigit() else 80),
        "state": {},
    }
    sent = False
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # the client stays connected until the answer is sent
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(scope, receive, send)
    start = next(m for m in messages if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, content
