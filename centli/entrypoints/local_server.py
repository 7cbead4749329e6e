"""``centli serve``: the local runtime's app (:mod:`centli.entrypoints.local_app`) on uvicorn.

The listening socket is bound here, before uvicorn starts, so a taken or
forbidden port is one clear line instead of a traceback, port 0 picks a free
port, and the backlog is a real one. uvicorn handles SIGINT and SIGTERM; the
app's lifespan then stops the relay and sweeper threads.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import signal
import socket
import sqlite3
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, Final, TextIO

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
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so (else a 40 ms delayed-ACK stall)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
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


class _CoalescingTransport:
    """Sends what one event-loop turn wrote as one segment: a response's head and body leave together.

    uvicorn writes the head and the body separately; on loopback every send is
    a full trip through the kernel's TCP stack, so one send per answer instead
    of two is a measurable share of a small request (docs/performance.md).
    Framing stays uvicorn's: this only joins bytes already framed, in order.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def coalescing_protocol() -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol writing through :class:`_CoalescingTransport`."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class CoalescingHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            coalescing: Any = _CoalescingTransport(transport, asyncio.get_running_loop())
            super().connection_made(coalescing)

    return CoalescingHttpToolsProtocol


class BatchedOutput:
    """Standard output that reaches the file in batches: one write every ``interval`` instead of one per line.

    Every log handler flushes after each line, which costs a system call per
    request; here ``flush`` only marks the batch due and a thread writes it out
    (the same lesson as a buffered HTTP answer). Lines are in order and at most
    ``interval`` late; :meth:`close` writes the rest.
    """

    def __init__(self, stream: TextIO, interval: float = 0.1) -> None:
        self._stream = stream
        self._interval = interval
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="centli-log-writer", daemon=True)
        self._thread.start()

    def write(self, text: str) -> int:
        with self._lock:
            self._pending.append(text)
        return len(text)

    def flush(self) -> None:
        return None  # the writer thread flushes

    def drain(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        if pending:
            self._stream.write("".join(pending))
            self._stream.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.drain()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.drain()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


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
    out: TextIO | None = None,
) -> int:
    """Run until SIGINT or SIGTERM; loads the demo bank first when asked (idempotent).

    ``build_app`` makes the app for the bound site (default: :func:`create_app`
    with ``sweep_interval``); ``centli serve`` options such as an MCP user add
    their routes there.
    """
    import uvicorn

    from centli.entrypoints import runtime

    out = out or sys.stdout
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
        http=coalescing_protocol(),
        loop="auto",  # uvloop where it is installed (not on Windows), else asyncio
        lifespan="on",
        log_level="warning",
        access_log=False,  # one structured line per request comes from the app
        proxy_headers=False,  # nobody stands in front of a loopback server
        server_header=False,
        backlog=BACKLOG,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    # No log line prints the thread or process: the stdlib's documented switches skip collecting them.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    print(
        f"CENTLI local server on {site.base_url} (backend {where}). Try:\n"
        f"  curl -s -H '{USER_HEADER}: u-ana' {site.base_url}/accounts\n"
        f"  open {site.base_url}/ for every route, agent events and the Lambda Invoke API\n"
        "Press Ctrl+C to stop.",
        file=out,
        flush=True,
    )
    previous = signal.signal(signal.SIGTERM, _terminated)
    real_stdout, batched = sys.stdout, BatchedOutput(sys.stdout)
    sys.stdout = batched  # the log handlers write to sys.stdout
    try:
        server.run(sockets=[sock])
    except (KeyboardInterrupt, _Stopped):
        pass  # uvicorn shut down cleanly, then re-raised the signal it caught
    finally:
        sys.stdout = real_stdout
        batched.close()
        signal.signal(signal.SIGTERM, previous)
        sock.close()
    if not server.started:
        raise ServeError("the server did not start (see the log lines above)")
    print("centli: stopped", file=out, flush=True)
    return 0
