"""The floor under the local runtime: uvicorn configured as ``centli serve`` configures it, with an ASGI app
that answers every request with a fixed getBalance-sized JSON body and does nothing else (no routing,
checks, store or log). bench/local_server.py runs it beside the others: what the server library, the
event loop and the kernel cost per request before any of our code runs.

Prints ``http://127.0.0.1:PORT`` once listening.
"""

from __future__ import annotations

import uvicorn

from centli.entrypoints.local_server import BACKLOG, bind, coalescing_protocol

BODY = b'{"account_id":"acc-0001","alias":"Nomina","currency":"MXN","balance":"25000.00"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": BODY})  # type: ignore[operator]


if __name__ == "__main__":
    sock = bind("127.0.0.1", 0)
    print(f"http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(
        app,
        http=coalescing_protocol(),
        loop="auto",
        lifespan="off",
        log_level="warning",
        access_log=False,
        server_header=False,
        backlog=BACKLOG,
    )
    uvicorn.Server(config).run(sockets=[sock])
