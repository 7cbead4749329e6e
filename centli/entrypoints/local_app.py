"""The local runtime as one ASGI app (Starlette), served by uvicorn: ``centli serve``, ``make run``.

Routes (all on a loopback address):

- the contract's REST paths (``GET /accounts``, ``POST /transfers``, ...):
  identity from ``X-Centli-User`` (only this runtime honours it), writes take
  ``Idempotency-Key`` and need ``Content-Type: application/json``;
- ``POST /agent/{action-group}``: a raw Bedrock event (OpenAPI or
  function-details style), or an AgentCore example
  (``{"event": ..., "context_client_context_custom": ...}``), answered exactly
  as the Lambda handler answers it;
- ``POST /2015-03-31/functions/{FunctionName}/invocations``: the AWS Lambda
  Invoke API (boto3's ``lambda`` client, ``aws lambda invoke --endpoint-url``),
  for the functions of :mod:`centli.entrypoints.lambda_functions`;
- ``/`` (a page of routes and examples), ``/openapi.json`` (the REST paths), ``/health``.

**Locked like a bank on a laptop.** :class:`Guard` wraps every route,
including the ones a caller adds:

- ``Host`` must name this machine (no DNS rebinding); an ``Origin`` (or
  ``Sec-Fetch-Site: cross-site``) must be this same origin, so no web page can
  reach a handler;
- a body may hold at most :data:`MAX_REQUEST_BYTES` (413 names the limit);
  it is read in full before the route runs, and the route gets it replayed;
- a write (any method but GET, HEAD, OPTIONS) needs
  ``Content-Type: application/json``, except on the Invoke API, which needs an
  ``Authorization`` header instead (boto3 always signs; not verified locally),
  and on the path prefixes a caller exempts;
- every answer the app gives is ``{"error": {"code", "message"}}`` on
  failure (405 with ``Allow``; Invoke API errors also carry Lambda's
  ``x-amzn-ErrorType`` and ``message`` so boto3 raises the right exception).

HTTP framing is uvicorn's (httptools): an unread body is never read as a request.

**Extending it** (the MCP server does): ::

    app = create_app(
        extra_routes=[Mount("/mcp", mcp_asgi_app)],
        lifespans=[session_manager_lifespan],   # () -> async context manager, entered after ours
        content_type_exempt=("/mcp",),          # Host/Origin/size checks still apply
        site=LocalSite(host, port),
    )

``create_app`` builds nothing heavy; its lifespan builds the application,
starts the saga relay and sweeper threads, enters the extra lifespans, and
stops the threads on shutdown. :class:`LocalSite` holds the loopback host and
port, the Host names and the Origins this server accepts
(``site.allowed_origins``; ``site.base_url`` for links to itself).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import html
import itertools
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from centli.adapters.bedrock.events import compact_json, is_safe_token
from centli.entrypoints import runtime
from centli.entrypoints.examples import example_parameters
from centli.entrypoints.lambda_functions import (
    DRY_RUN,
    EVENT,
    FUNCTIONS,
    INVOCATION_TYPES,
    LOCAL_ACCOUNT,
    LOCAL_REGION,
    find_function,
    invoke,
    split_wrapped_event,
)
from centli.entrypoints.logs import bind, service_logger, unbind
from centli.entrypoints.operations import ACTION_GROUPS, BY_ID, OPERATIONS, Operation
from centli.entrypoints.pipeline import neutral_call

LOOPBACK_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8080
#: The largest request body any route accepts (the Lambda Invoke API included).
MAX_REQUEST_BYTES: Final = 64 * 1024
#: Deepest nesting of arrays and objects a JSON body may have.
MAX_JSON_DEPTH: Final = 32
USER_HEADER: Final = "X-Centli-User"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
CORRELATION_HEADER: Final = "X-Correlation-Id"
#: Host names that mean this machine (a DNS-rebinding page sends its own name instead).
LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "[::1]"})
INVOKE_PREFIX: Final = "/2015-03-31/functions/"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
#: The function behind ``POST /agent/{action-group}``.
AGENT_FUNCTIONS: Final = {group: find_function(f"centli-{group}") for group in ACTION_GROUPS}

log = service_logger("centli-local")


@dataclass(frozen=True, slots=True)
class LocalSite:
    """Where this server listens and which Host names and Origins it accepts."""

    host: str = LOOPBACK_HOST
    port: int = DEFAULT_PORT
    allowed_hosts: frozenset[str] = LOOPBACK_NAMES

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}" if ":" not in self.host else f"http://[{self.host}]:{self.port}"

    @property
    def allowed_origins(self) -> frozenset[str]:
        return frozenset(f"http://{name}:{self.port}" for name in self.allowed_hosts)


@dataclass
class Workers:
    """The saga relay and the sweeper: threads beside the server, stopped with it."""

    sweep_interval: float
    relay_interval: float
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        container = runtime.container
        container.application()  # build it (and fail) before the first request
        if container.outbox() is not None and self.relay_interval > 0:
            # Writes settle right away; this delivers what a crash or a failed delivery left pending.
            self._spawn("centli-relay", self.relay_interval, runtime.settle)
        if self.sweep_interval > 0:
            self._spawn("centli-sweeper", self.sweep_interval, self._sweep)
        bind(log, correlation_id="centli-serve")
        log.info("background workers started", extra={"workers": [t.name for t in self._threads]})
        unbind(log)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)
        bind(log, correlation_id="centli-serve")
        log.info("background workers stopped")
        unbind(log)

    def _spawn(self, name: str, interval: float, work: Callable[[], object]) -> None:
        def loop() -> None:
            while not self._stop.wait(interval):
                # Every line of a run carries a correlation id; a saga step's own lines carry its order's.
                bind(log, correlation_id=f"{name}-{next(_request_numbers)}")
                try:
                    work()
                finally:
                    unbind(log)

        thread = threading.Thread(target=loop, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    @staticmethod
    def _sweep() -> None:
        try:
            report = runtime.sweep()
            if report.voided:
                log.info("sweep finished", extra={"voided": report.voided})
        except Exception:
            log.exception("sweep failed")


# answers -------------------------------------------------------------------------------
def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    data = compact_json(body).encode("utf-8")
    return Response(data, status, headers, media_type="application/json")


async def send_json(send: Send, status: int, body: Any, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """What :func:`json_response` answers, sent as the two ASGI messages without a ``Response`` object."""
    data = compact_json(body).encode("utf-8")
    head = [(b"content-length", str(len(data)).encode()), (b"content-type", b"application/json"), *headers]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": data})


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(status, {"error": {"code": code, "message": message}}, headers)


def lambda_error(status: int, error_type: str, message: str) -> Response:
    """An error as the Lambda API sends it (boto3 reads the type from the header), in the contract's shape too."""
    body = {"Type": "User", "message": message, "error": {"code": error_type, "message": message}}
    return json_response(status, body, {"x-amzn-ErrorType": error_type})


class BadRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_json(raw: bytes, *, exact_numbers: bool) -> Any:
    """A JSON body, or :class:`BadRequest` for broken, non-UTF-8 or too deeply nested JSON."""
    try:
        if exact_numbers:  # a decimal never becomes a float on the way in
            value = json.loads(raw, parse_float=str, parse_constant=_reject_constant)
        else:
            value = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise BadRequest(f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels.") from None
    except ValueError:
        raise BadRequest("The request body is not valid JSON.") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise BadRequest(f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels.")
    return value


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            deepest = max(deepest, level)
            if level <= MAX_JSON_DEPTH:
                stack.extend((child, level + 1) for child in node if isinstance(child, dict | list))
    return deepest


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


# the guard -------------------------------------------------------------------------------
class Guard:
    """Host, Origin, Content-Type or Authorization, and size, checked before any route runs; one log line."""

    def __init__(
        self,
        app: ASGIApp,
        site: LocalSite,
        router: Router,
        content_type_exempt: Sequence[str],
        direct_routes: Sequence[Route] = (),
    ) -> None:
        self.app = app
        self.site = site
        self.router = router
        self.exempt = tuple(content_type_exempt)
        #: Routes this guard runs itself once its checks pass (the hot REST paths: no router, no
        #: exception middleware in between; an exception still reaches Starlette's 500 handler).
        self.direct: dict[str, list[Route]] = {}
        for route in direct_routes:
            for method in route.methods or ():
                self.direct.setdefault(method, []).append(route)

    def _served(self, scope: Scope) -> bool:
        """Some route takes this method on this path (else the router answers 404 or 405 with Allow)."""
        return any(route.matches(scope)[0] == Match.FULL for route in self.router.routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websockets here
            await send({"type": "websocket.close", "code": 1008})
            return
        started = time.perf_counter()
        status = 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        refusal, body = await self._check(scope, receive)
        if refusal is not None:
            await refusal(scope, receive, observe)
        else:
            await self._route(scope)(scope, _replay(body, receive), observe)
        if not scope.get("centli.logged"):
            bind(log, correlation_id=scope.get("centli.correlation_id") or new_correlation_id())
            route = scope.get("centli.route") or ("refused" if refusal is not None else "unmatched")
            log.info(
                "http request",
                extra={
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            unbind(log)

    def _route(self, scope: Scope) -> ASGIApp:
        """A direct route that takes this method on this path (its path parameters set), else the app."""
        for route in self.direct.get(scope["method"], ()):
            match, child = route.matches(scope)
            if match == Match.FULL:
                scope.update(child)
                return route.app
        return self.app

    async def _check(self, scope: Scope, receive: Receive) -> tuple[Response | None, bytes]:
        headers = _headers(scope)
        path: str = scope["path"]
        invoke_api = path.startswith(INVOKE_PREFIX)
        refuse = _lambda_refusal if invoke_api else error_response
        host = headers.get("host", "")
        if _host_name(host) not in self.site.allowed_hosts:
            return refuse(403, "FORBIDDEN_HOST", "This server answers requests for localhost only."), b""
        origin = headers.get("origin")
        if origin is not None and not self._same_origin(origin, host):
            return refuse(403, "FORBIDDEN_ORIGIN", "Requests from another site are refused."), b""
        if headers.get("sec-fetch-site") == "cross-site":
            return refuse(403, "FORBIDDEN_ORIGIN", "Requests from another site are refused."), b""
        if scope["method"] not in SAFE_METHODS:
            if invoke_api:
                if not headers.get("authorization"):
                    return lambda_error(403, "MissingAuthenticationTokenException", "Missing Authentication Token"), b""
            elif not (self.exempt and path.startswith(self.exempt)) and self._served(scope):
                media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
                if media_type != "application/json":
                    message = "Send the body as JSON with the header Content-Type: application/json."
                    return error_response(415, "UNSUPPORTED_MEDIA_TYPE", message), b""

        def too_large() -> Response:
            code = "RequestTooLargeException" if invoke_api else "REQUEST_TOO_LARGE"
            return refuse(413, code, f"The request body is larger than the limit of {MAX_REQUEST_BYTES} bytes.")

        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_REQUEST_BYTES:
            return too_large(), b""
        if length in (None, "0") and "transfer-encoding" not in headers:
            return None, b""
        body = bytearray()
        while True:
            chunk = await receive()
            if chunk["type"] == "http.disconnect":
                return Response(status_code=400), b""  # nobody is listening for the answer
            body += chunk.get("body", b"")
            if len(body) > MAX_REQUEST_BYTES:
                return too_large(), b""
            if not chunk.get("more_body", False):
                return None, bytes(body)

    def _same_origin(self, origin: str, host: str) -> bool:
        try:
            parts = urlsplit(origin)
        except ValueError:
            return False
        return parts.scheme == "http" and parts.netloc == host and _host_name(host) in self.site.allowed_hosts


def _lambda_refusal(status: int, code: str, message: str) -> Response:
    kind = {403: "AccessDeniedException", 413: "RequestTooLargeException"}.get(status, code)
    return lambda_error(status, code if code.endswith("Exception") else kind, message)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


def _host_name(host: str) -> str:
    """The name part of a Host header (``localhost:8080`` -> ``localhost``, ``[::1]:80`` -> ``[::1]``)."""
    name = host.strip().lower()
    if name.startswith("["):
        return name[: name.find("]") + 1] if "]" in name else ""
    return name.rsplit(":", 1)[0] if ":" in name else name


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, then whatever the connection says next (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


# routes -------------------------------------------------------------------------------------
_PROCESS_TAG: Final = uuid.uuid4().hex[:12]
_request_numbers = itertools.count(1)


def new_correlation_id() -> str:
    """Unique within this process's log (a random tag per start, then a counter): no syscall per request."""
    return f"local-{_PROCESS_TAG}-{next(_request_numbers)}"


def _correlation_id(request: Request) -> str:
    correlation_id = _given_or_new_correlation_id(request.headers.get(CORRELATION_HEADER))
    request.scope["centli.correlation_id"] = correlation_id
    return correlation_id


def _given_or_new_correlation_id(given: str | None) -> str:
    return given if given is not None and is_safe_token(given) else new_correlation_id()


class OperationEndpoint:
    """One operation of the contract's REST paths, as a raw ASGI app (no ``Request`` object per call).

    The hot path of the local runtime: :class:`Guard` dispatches these routes
    itself after its checks (the router still answers 405 with ``Allow`` for
    their paths), and the answer leaves as one start and one body message.
    """

    def __init__(self, op: Operation, inline_reads: bool) -> None:
        self.op = op
        self.service = f"centli-{op.action_group}"
        # A read on the embedded store never waits for a lock: running it on the loop saves a thread hop.
        self.inline = inline_reads and not op.write

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        op = self.op
        scope["centli.route"] = op.operation_id
        headers = _first_values(scope, _ENDPOINT_HEADERS)
        correlation_id = _given_or_new_correlation_id(headers.get(_CORRELATION))
        scope["centli.correlation_id"] = correlation_id
        answer_headers = [(_CORRELATION, correlation_id.encode("latin-1"))]
        parameters: dict[str, object] = {}
        query: bytes = scope["query_string"]
        if query:  # as Starlette's query_params: blank values kept, the last of a repeated name wins
            parameters.update(parse_qsl(query.decode("latin-1"), keep_blank_values=True))
        if op.method == "POST":
            try:
                payload = parse_json(await _body(receive), exact_numbers=True)
                if not isinstance(payload, dict):
                    raise BadRequest("The request body must be a JSON object.")
            except BadRequest as problem:
                await send_json(
                    send, 400, {"error": {"code": "INVALID_INPUT", "message": problem.message}}, answer_headers
                )
                return
            parameters.update(payload)
        parameters.update(scope["path_params"])
        key = headers.get(_IDEMPOTENCY)
        if op.write and key and "idempotency_key" not in parameters:
            parameters["idempotency_key"] = key
        call = neutral_call(op.operation_id, parameters, headers.get(_USER), correlation_id=correlation_id)
        if self.inline:
            outcome = runtime.run(call, op.action_group, service=self.service, agent_format="local-http")
        else:
            outcome = await run_in_threadpool(
                runtime.run, call, op.action_group, service=self.service, agent_format="local-http"
            )
        scope["centli.logged"] = True  # runtime.run wrote the request's line
        await send_json(send, outcome.result.status, outcome.result.body, answer_headers)


_CORRELATION: Final = CORRELATION_HEADER.lower().encode()
_IDEMPOTENCY: Final = IDEMPOTENCY_HEADER.lower().encode()
_USER: Final = USER_HEADER.lower().encode()
_ENDPOINT_HEADERS: Final = frozenset({_CORRELATION, _IDEMPOTENCY, _USER})


def _first_values(scope: Scope, names: frozenset[bytes]) -> dict[bytes, str]:
    """The first value of each of ``names`` (as Starlette's ``Request.headers.get`` reads a repeated header)."""
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in names and name not in found:
            found[name] = value.decode("latin-1")
    return found


async def _body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += bytes(message.get("body", b""))
        if not message.get("more_body", False):
            return body


async def agent_endpoint(request: Request) -> Response:
    request.scope["centli.route"] = "agent"
    function = AGENT_FUNCTIONS.get(request.path_params["group"])
    if function is None:
        return error_response(404, "NOT_FOUND", f"No such action group; try one of {', '.join(ACTION_GROUPS)}.")
    try:
        document = parse_json(await request.body(), exact_numbers=False)
    except BadRequest as problem:
        return error_response(400, "INVALID_INPUT", problem.message)
    event, custom = split_wrapped_event(document)
    result = await run_in_threadpool(invoke, function, event, custom)
    request.scope["centli.logged"] = True  # the handler wrote the request's line
    if result.function_error:
        return error_response(500, "INTERNAL_ERROR", "Something went wrong on our side. Please try again later.")
    return Response(result.payload, 200, media_type="application/json")


async def invoke_endpoint(request: Request) -> Response:
    """The Lambda Invoke API, as boto3 and the AWS CLI call it."""
    request.scope["centli.route"] = "lambda-invoke"
    reference = request.path_params["name"]
    function = find_function(reference)
    if function is None:
        local_arn = f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{reference}"
        arn = reference if reference.startswith("arn:") else local_arn
        return lambda_error(404, "ResourceNotFoundException", f"Function not found: {arn}")
    invocation_type = request.headers.get("x-amz-invocation-type", "RequestResponse")
    if invocation_type not in INVOCATION_TYPES:
        return lambda_error(
            400,
            "InvalidParameterValueException",
            f"InvocationType must be one of {', '.join(INVOCATION_TYPES)}.",
        )
    raw = await request.body()
    try:
        event = parse_json(raw, exact_numbers=False) if raw.strip() else {}
        custom = _client_context(request.headers.get("x-amz-client-context"))
    except BadRequest as problem:
        return lambda_error(400, "InvalidRequestContentException", problem.message)
    headers = {"X-Amz-Executed-Version": "$LATEST"}
    if invocation_type == DRY_RUN:
        return Response(status_code=204, headers=headers)
    if invocation_type == EVENT:
        return Response(status_code=202, headers=headers, background=BackgroundTask(invoke, function, event, custom))
    result = await run_in_threadpool(invoke, function, event, custom)
    request.scope["centli.logged"] = True  # the handler wrote the request's line
    headers["x-amzn-RequestId"] = result.request_id
    if result.function_error:
        headers["X-Amz-Function-Error"] = result.function_error
    return Response(result.payload, 200, headers, media_type="application/json")


def _client_context(header: str | None) -> dict[str, Any] | None:
    """``X-Amz-Client-Context``: base64 JSON whose ``custom`` map the handler reads (AgentCore's tool name)."""
    if not header:
        return None
    try:
        document = json.loads(base64.b64decode(header, validate=True))
    except (ValueError, binascii.Error):
        raise BadRequest("X-Amz-Client-Context must be base64-encoded JSON.") from None
    custom = document.get("custom") if isinstance(document, dict) else None
    return custom if isinstance(custom, dict) else {}


async def health(request: Request) -> Response:
    request.scope["centli.route"] = "health"
    return json_response(200, {"status": "ok"})


def openapi_document() -> dict[str, Any]:
    """The REST paths of both action groups, with the local runtime's identity and idempotency headers."""
    from centli.entrypoints.schemas import OPENAPI_VERSION, SCHEMA_VERSION
    from centli.entrypoints.schemas import openapi_document as group_document

    paths: dict[str, Any] = {}
    for group in ACTION_GROUPS:
        for path, methods in group_document(group)["paths"].items():
            for method, described in methods.items():
                operation = dict(described)
                if operation.get("x-requireConfirmation"):
                    operation["parameters"] = [
                        *operation.get("parameters", []),
                        {
                            "name": IDEMPOTENCY_HEADER,
                            "in": "header",
                            "required": False,
                            "description": "A new unique key per request; retries reuse it.",
                            "schema": {"type": "string", "maxLength": 128},
                        },
                    ]
                paths.setdefault(path, {})[method] = {**operation, "tags": [group]}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "CENTLI local runtime",
            "version": SCHEMA_VERSION,
            "description": f"The action groups' REST paths on this machine. {USER_HEADER} names the customer "
            "(only the local runtime trusts it); writes need Content-Type: application/json.",
        },
        "components": {"securitySchemes": {"centliUser": {"type": "apiKey", "in": "header", "name": USER_HEADER}}},
        "security": [{"centliUser": []}],
        "paths": paths,
    }


async def openapi(request: Request) -> Response:
    request.scope["centli.route"] = "openapi"
    document = request.app.state.openapi
    return json_response(200, document)


def home_page(site: LocalSite) -> str:
    base = html.escape(site.base_url)
    rows = "".join(
        f"<tr><td>{op.method}</td><td><code>{html.escape(op.path)}</code></td><td>{op.operation_id}</td>"
        f"<td>{op.action_group}</td><td>{html.escape(op.summary)}</td></tr>"
        for op in OPERATIONS
    )
    functions = ", ".join(f"<code>{f.name}</code> ({f.logical_id})" for f in FUNCTIONS)
    transfer = json.dumps(
        {name: value for name, _, value in example_parameters(BY_ID["createTransfer"])}, ensure_ascii=False
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CENTLI local runtime</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
td,th{{padding:.2rem .6rem;text-align:left}}pre{{background:#f4f4f4;padding:.6rem;overflow:auto}}</style></head>
<body><h1>CENTLI local runtime</h1>
<p>The core-banking and marketplace action groups on this machine ({base}), with the purchase saga in-process.
Customers of the demo bank: <code>u-ana</code>, <code>u-luis</code>.</p>
<h2>REST paths</h2>
<p><code>{USER_HEADER}</code> names the customer; writes need <code>Content-Type: application/json</code> and
take an <code>{IDEMPOTENCY_HEADER}</code>. Described in <a href="/openapi.json">/openapi.json</a>.</p>
<table><tr><th>method</th><th>path</th><th>operation</th><th>action group</th><th></th></tr>{rows}</table>
<pre>curl -s -H '{USER_HEADER}: u-ana' {base}/accounts
curl -s -X POST -H '{USER_HEADER}: u-ana' -H 'Content-Type: application/json' -H '{IDEMPOTENCY_HEADER}: try-1' \\
     -d '{html.escape(transfer)}' \\
     {base}/transfers</pre>
<h2>Agent events</h2>
<p><code>POST /agent/core-banking</code> and <code>POST /agent/marketplace</code> take an event exactly as a Bedrock
agent sends it to Lambda; <code>events/</code> has one per operation and format.</p>
<pre>curl -s -H 'Content-Type: application/json' -d @events/bedrock-openapi/getBalance.json \\
     {base}/agent/core-banking</pre>
<h2>AWS Lambda Invoke API</h2>
<p><code>POST /2015-03-31/functions/{{name}}/invocations</code> for {functions}, by name, logical id or ARN.</p>
<pre>aws lambda invoke --endpoint-url {base} --function-name centli-core-banking \\
    --payload fileb://events/bedrock-function/getBalance.json out.json</pre>
<h2>Connecting an agent</h2>
<p>Point an agent's Lambda client (boto3 <code>client("lambda", endpoint_url="{base}")</code>) at this server,
or replay its events with <code>centli invoke FUNCTION --event FILE --url {base}</code>.
<a href="/health">/health</a> answers when the server is up.</p>
</body></html>
"""


async def home(request: Request) -> Response:
    request.scope["centli.route"] = "home"
    return HTMLResponse(request.app.state.home)


async def http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    codes = {404: ("NOT_FOUND", "No such path."), 405: ("METHOD_NOT_ALLOWED", "This path does not take that method.")}
    code, message = codes.get(error.status_code, ("HTTP_ERROR", str(error.detail)))
    return error_response(error.status_code, code, message, dict(error.headers or {}))


async def server_error(request: Request, error: Exception) -> Response:
    log.exception("request failed")
    return error_response(500, "INTERNAL_ERROR", "Something went wrong on our side. Please try again later.")


def create_app(
    *,
    site: LocalSite | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    lifespans: Sequence[Callable[[], AbstractAsyncContextManager[None]]] = (),
    content_type_exempt: Sequence[str] = (),
    sweep_interval: float = 30.0,
    relay_interval: float = 1.0,
) -> Starlette:
    """The local runtime's ASGI app; see the module docstring for what callers may add."""
    site = site or LocalSite()
    settings = runtime.container.settings()
    inline_reads = settings.backend in ("memory", "sqlite")
    # The operations first (the hot paths match sooner). A path served for another method answers 405
    # with Allow (Starlette's partial match), not 404.
    operation_routes = [Route(op.path, OperationEndpoint(op, inline_reads), methods=[op.method]) for op in OPERATIONS]
    routes: list[BaseRoute] = [*operation_routes]
    routes += [
        Route("/", home, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/agent/{group}", agent_endpoint, methods=["POST"]),
        Route(INVOKE_PREFIX + "{name}/invocations", invoke_endpoint, methods=["POST"]),
    ]
    routes.extend(extra_routes)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        workers = Workers(sweep_interval, relay_interval)
        await asyncio.to_thread(workers.start)
        try:
            async with AsyncExitStack() as stack:
                for extra in lifespans:
                    await stack.enter_async_context(extra())
                yield
        finally:
            await asyncio.to_thread(workers.stop)

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    app.state.site = site
    app.state.openapi = openapi_document()
    app.state.home = home_page(site)
    app.add_middleware(
        Guard,
        site=site,
        router=app.router,
        content_type_exempt=content_type_exempt,
        direct_routes=operation_routes,
    )
    return app
