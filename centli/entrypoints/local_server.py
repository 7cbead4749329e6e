"""``centli serve``: the local runtime's app (:mod:`centli.entrypoints.local_app`) on uvicorn.

The listening socket is bound here, before uvicorn starts, so a taken or
forbidden port is one clear line instead of a traceback, port 0 picks a free
port, and the backlog is a real one. uvicorn handles SIGINT and SIGTERM; the
app's lifespan then stops the relay and sweeper threads.
"""

from __future__ import annotations

import errno
import ipaddress
import signal
import socket
import sqlite3
import sys
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Final, TextIO

from centli.entrypoints.commands import CommandError
from centli.entrypoints.local_app import USER_HEADER, LocalSite

if TYPE_CHECKING:
    from starlette.applications import Starlette

#: Connections the kernel queues before the server accepts them.
BACKLOG: Final = 2048


class ServeError(CommandError):
    """The server cannot start for a reason the user can fix."""


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on a loopback address: X-Centli-User is trusted, so nobody else may reach it."""
    if not is_loopback(host):
        raise ServeError(f"the local server trusts {USER_HEADER}, so it listens on loopback addresses only, not {host}")
    if not 0 <= port <= 65535:
        raise ServeError(f"port {port} is not a TCP port (0 to 65535; 0 picks a free one)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise ServeError(f"port {port} on {host} is already in use (try --port N, or PORT=N make run)") from None
        if error.errno == errno.EACCES:
            raise ServeError(f"not allowed to listen on port {port} (ports below 1024 need privileges)") from None
        raise ServeError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.setblocking(False)
    return sock


class _Stopped(Exception):
    pass


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise _Stopped()


def serve(
    host: str,
    port: int,
    *,
    load_demo: bool,
    sweep_interval: float = 30.0,
    build_app: Callable[[LocalSite], Starlette] | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Run until SIGINT or SIGTERM; loads the demo bank first when asked (idempotent).

    ``build_app`` makes the app for the bound site (default: :func:`create_app`
    with ``sweep_interval``); ``centli serve`` options such as an MCP user add
    their routes there.
    """
    import uvicorn

    from centli.entrypoints import runtime
    from centli.entrypoints.local_app import create_app

    settings = runtime.container.settings()  # a bad environment fails here, before anything listens
    try:
        runtime.container.application()  # and so does a store that cannot open
    except (OSError, sqlite3.Error) as error:
        raise ServeError(f"cannot open the {settings.backend} store: {error}") from None
    sock = bind(host, port)
    bound_port = sock.getsockname()[1]
    site = LocalSite(host, bound_port)
    where = f"{settings.backend}" + (f", {settings.sqlite_path}" if settings.backend == "sqlite" else "")
    if load_demo and settings.backend != "memory":
        from centli.domain.loading import parse_bank_document
        from centli.entrypoints.demo import demo_bank

        print(f"centli: loading the demo bank ({where}; already loaded records are kept)", file=out, flush=True)
        runtime.container.store().load(parse_bank_document(demo_bank(), runtime.container.clock().now()), None)
    app = build_app(site) if build_app else create_app(site=site, sweep_interval=sweep_interval)
    config = uvicorn.Config(
        app,
        http="httptools",
        loop="asyncio",
        lifespan="on",
        log_level="warning",
        access_log=False,  # one structured line per request comes from the app
        proxy_headers=False,  # nobody stands in front of a loopback server
        server_header=False,
        backlog=BACKLOG,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    print(
        f"CENTLI local server on {site.base_url} (backend {where}). Try:\n"
        f"  curl -s -H '{USER_HEADER}: u-ana' {site.base_url}/accounts\n"
        f"  open {site.base_url}/ for every route, agent events and the Lambda Invoke API\n"
        "Press Ctrl+C to stop.",
        file=out,
        flush=True,
    )
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        server.run(sockets=[sock])
    except (KeyboardInterrupt, _Stopped):
        pass  # uvicorn shut down cleanly, then re-raised the signal it caught
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
    if not server.started:
        raise ServeError("the server did not start (see the log lines above)")
    print("centli: stopped", file=out, flush=True)
    return 0
