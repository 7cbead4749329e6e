"""The local server: the action groups over HTTP on this machine (``centli serve``, ``make run``).

Two ways in, both on 127.0.0.1 by default:

- ``POST /agent/core-banking`` and ``POST /agent/marketplace`` take an agent
  event exactly as Bedrock sends it to Lambda (OpenAPI or function-details
  style; for AgentCore Gateway, ``{"event": {...}, "context_client_context_custom": {...}}``)
  and answer what the Lambda handler answers.
- The contract's REST paths (``GET /accounts``, ``POST /transfers``, ...) for
  trying the tools by hand. The ``X-Centli-User`` header stands in for the
  authenticated session of the calling application; writes take an
  ``Idempotency-Key`` header (or an ``idempotency_key`` field).

Events are delivered in-process after every write, and a sweeper thread
compensates purchases stuck past the timeout.
"""

from __future__ import annotations

import ipaddress
import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from centli.adapters.bedrock.events import correlation_id_of
from centli.entrypoints import aws_lambda, runtime
from centli.entrypoints.logs import bind, service_logger, unbind
from centli.entrypoints.operations import OPERATIONS, Operation, neutral_call

MAX_REQUEST_BYTES: Final = 64 * 1024
USER_HEADER: Final = "X-Centli-User"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
AGENT_HANDLERS: Final = {
    "core-banking": aws_lambda.core_banking_handler,
    "marketplace": aws_lambda.marketplace_handler,
}

log = service_logger("centli-local-server")


@dataclass(frozen=True, slots=True)
class Route:
    operation: Operation
    pattern: re.Pattern[str]


def _routes() -> list[Route]:
    routes = []
    for op in OPERATIONS:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(op.path))
        routes.append(Route(op, re.compile(f"^{regex}$")))
    return routes


ROUTES: Final = _routes()


def match_route(method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
    for route in ROUTES:
        if route.operation.method == method:
            found = route.pattern.match(path)
            if found:
                return route.operation, found.groupdict()
    return None


class LocalRequestHandler(BaseHTTPRequestHandler):
    server_version = "centli-local"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def log_message(self, format: str, *args: Any) -> None:
        return None  # one structured line per request is written by _dispatch

    def _dispatch(self, method: str) -> None:
        started = time.perf_counter()
        url = urlsplit(self.path)
        correlation_id = str(uuid.uuid4())
        status, body, route_name = HTTPStatus.NOT_FOUND, _error("NOT_FOUND", "No such path."), "unknown"
        try:
            if not _local_host(self.headers.get("Host", "")):
                raise _BadRequest("This server answers requests for localhost only.")
            payload = self._read_json() if method == "POST" else {}
            if url.path == "/health" and method == "GET":
                status, body, route_name = HTTPStatus.OK, {"status": "ok"}, "health"
            elif method == "POST" and url.path.startswith("/agent/"):
                route_name = "agent"
                status, body, correlation_id = self._agent(url.path.removeprefix("/agent/"), payload, correlation_id)
            elif (route := match_route(method, url.path)) is not None:
                route_name = route[0].operation_id
                status, body = self._rest(route[0], route[1], dict(parse_qsl(url.query)), payload, correlation_id)
        except _BadRequest as problem:
            status, body = HTTPStatus.BAD_REQUEST, _error("INVALID_INPUT", str(problem))
        self._send(status, body)
        bind(log, correlation_id=correlation_id)
        log.info(
            "http request",
            extra={
                "method": method,
                "route": route_name,
                "status": int(status),
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        unbind(log)

    def _agent(self, group: str, payload: dict[str, Any], request_id: str) -> tuple[HTTPStatus, dict[str, Any], str]:
        """Answers as the Lambda handler does; the third value is the call's correlation id, for the request line."""
        handler = AGENT_HANDLERS.get(group)
        if handler is None:
            return HTTPStatus.NOT_FOUND, _error("NOT_FOUND", "No such action group."), request_id
        event: Any = payload
        context: Any = SimpleNamespace(client_context=None, aws_request_id=request_id)
        if isinstance(payload.get("event"), dict) and isinstance(payload.get("context_client_context_custom"), dict):
            event = payload["event"]
            context = SimpleNamespace(
                client_context=SimpleNamespace(custom=payload["context_client_context_custom"]),
                aws_request_id=request_id,
            )
        return HTTPStatus.OK, handler(event, context), correlation_id_of(event, context)

    def _rest(
        self,
        op: Operation,
        path_params: dict[str, str],
        query: dict[str, str],
        payload: dict[str, Any],
        correlation_id: str,
    ) -> tuple[HTTPStatus, dict[str, Any]]:
        parameters: dict[str, object] = {**query, **payload, **path_params}
        key = self.headers.get(IDEMPOTENCY_HEADER)
        if op.write and key and "idempotency_key" not in parameters:
            parameters["idempotency_key"] = key
        user = self.headers.get(USER_HEADER)
        call = neutral_call(op.operation_id, parameters, user, correlation_id=correlation_id)
        outcome = runtime.run(call, op.action_group, service=f"centli-{op.action_group}", agent_format="local-http")
        return HTTPStatus(outcome.result.status), outcome.result.body

    def _read_json(self) -> dict[str, Any]:
        raw_length = self.headers.get("Content-Length") or "0"
        if not re.fullmatch(r"[0-9]{1,9}", raw_length):
            raise _BadRequest("Content-Length must be a whole number.")
        length = int(raw_length)
        if length > MAX_REQUEST_BYTES:
            raise _BadRequest("The request body is too large.")
        raw = self.rfile.read(length) if length else b"{}"
        try:
            # Numbers stay exact: a decimal in JSON never becomes a float here.
            data = json.loads(raw or b"{}", parse_float=str, parse_constant=_reject_constant)
        except ValueError:
            raise _BadRequest("The request body must be a JSON object.") from None
        if not isinstance(data, dict):
            raise _BadRequest("The request body must be a JSON object.")
        return data

    def _send(self, status: HTTPStatus, body: Mapping[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _BadRequest(Exception):
    pass


def _local_host(host: str) -> bool:
    """The Host header names this machine (a browser tricked by DNS rebinding sends another name)."""
    try:
        name = urlsplit(f"//{host}").hostname
    except ValueError:
        return False
    return name in {"localhost", "127.0.0.1", "::1"}


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class Sweeper(threading.Thread):
    """Compensates purchases stuck past the policy's timeout, every ``interval`` seconds."""

    def __init__(self, interval: float) -> None:
        super().__init__(name="centli-sweeper", daemon=True)
        self._interval = interval
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                runtime.sweep()
            except Exception:
                log.exception("sweep failed")

    def stop(self) -> None:
        self._stop.set()


def make_server(host: str = "127.0.0.1", port: int = 8080) -> ThreadingHTTPServer:
    """A server on a loopback address only: the X-Centli-User header is trusted, so nobody else may reach it."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ValueError(f"the local server trusts {USER_HEADER}; it listens on loopback addresses only, not {host}")
    server = ThreadingHTTPServer((host, port), LocalRequestHandler)
    server.daemon_threads = True
    return server


def serve(host: str, port: int, *, load_demo: bool, sweep_interval: float = 30.0) -> int:
    """Run until interrupted; loads the demo bank first when asked (idempotent)."""
    try:
        server = make_server(host, port)
    except ValueError as refused:
        print(f"centli serve: {refused}", file=sys.stderr)
        return 2
    container = runtime.container
    settings = container.settings()
    if load_demo and settings.backend != "memory":
        from centli.domain.loading import parse_bank_document
        from centli.entrypoints.demo import demo_bank

        container.store().load(parse_bank_document(demo_bank(), container.clock().now()), None)
    container.application()
    sweeper = Sweeper(sweep_interval)
    sweeper.start()
    bound_host, bound_port = server.server_address[:2]
    print(
        f"CENTLI local server on http://{bound_host!s}:{bound_port} (backend {settings.backend}"
        f"{', ' + settings.sqlite_path if settings.backend == 'sqlite' else ''}). Try:\n"
        f"  curl -s -H '{USER_HEADER}: u-ana' http://{bound_host!s}:{bound_port}/accounts\n"
        "Press Ctrl+C to stop.",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sweeper.stop()
        server.server_close()
    return 0
