"""The execution pipeline: one neutral :class:`AgentCall` in, one :class:`AgentResult` out.

Every agent format (:mod:`centli.adapters.bedrock.events`), the local server and
the MCP server turn what they receive into an :class:`AgentCall`;
:func:`execute` runs it: identity, the operation, validation, the idempotency
key, the call, error mapping, and the 20 KB cap on the whole serialized Lambda
response. It never raises.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from centli.domain.application import Application
from centli.domain.errors import (
    DomainError,
    Forbidden,
    InvalidInput,
    Unauthenticated,
    UnknownOperation,
    WrongActionGroup,
)
from centli.domain.idempotency import derive_key
from centli.domain.policy import require_id
from centli.entrypoints.operations import BY_ID, BY_ROUTE, Operation
from centli.entrypoints.reads import plan as plan_read

if TYPE_CHECKING:
    from centli.entrypoints.wire import Request

OPENAPI: Final = "openapi"
FUNCTION: Final = "function"
AGENTCORE: Final = "agentcore"
#: A call made on this machine (the local server's REST paths, scripts): identity from the local caller.
LOCAL: Final = "local"
#: No serialized Lambda response may exceed this many bytes, measured as ``json.dumps`` with its
#: defaults writes it (ASCII escapes; the body a JSON string inside JSON): an upper bound of what
#: any Python runtime sends. Our budget, below Bedrock's own response limit (DESIGN, Platform limits).
MAX_RESPONSE_BYTES: Final = 20 * 1024
MAX_NAME_LENGTH: Final = 64
#: The pydantic error type of a value the domain's own parser refused (it carries the DomainError).
DOMAIN_REFUSAL: Final = "domain_refusal"
#: Parameter names that claim an identity; normalised (lower case, no "_" or "-").
IDENTITY_PARAMETERS: Final = frozenset(
    {"userid", "user", "customerid", "customer", "clientid", "ownerid", "owner", "accountholder"}
)

security_log = logging.getLogger("centli.security")
log = logging.getLogger("centli.entrypoints")


@dataclass(frozen=True, slots=True)
class AgentCall:
    """One tool call, whatever format it came in."""

    format: str
    #: The operationId named by the event (function or tool name); None for OpenAPI style.
    operation: str | None
    api_path: str
    http_method: str
    action_group: str
    parameters: dict[str, object]
    #: The raw identity from the trusted source; validated by the caller.
    user_id: object
    session_id: str
    input_text: str
    correlation_id: str
    session_attributes: dict[str, str] = field(default_factory=dict)
    prompt_session_attributes: dict[str, str] = field(default_factory=dict)
    #: Set when the event itself is malformed: the answer is this error.
    problem: DomainError | None = None


@dataclass(frozen=True, slots=True)
class AgentResult:
    status: int
    body: dict[str, Any]
    #: An error the model can fix by asking again (function-details REPROMPT).
    repromptable: bool = False


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def safe_name(name: str) -> str:
    """A parameter name fit to repeat in a message: short and printable."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in name[:MAX_NAME_LENGTH])
    return cleaned + ("…" if len(name) > MAX_NAME_LENGTH else "")


@dataclass(frozen=True, slots=True)
class Invocation:
    """Who is calling, established by :func:`execute` from the trusted identity source."""

    user_id: str
    correlation_id: str


def resolve(call: AgentCall, action_group: str | None = None) -> Operation:
    """The operation a call names, within ``action_group`` when one is given (a Lambda handler's own)."""
    by_route = call.format == OPENAPI
    op = BY_ROUTE.get((call.http_method, call.api_path)) if by_route else BY_ID.get(call.operation or "")
    if op is None:
        raise UnknownOperation()
    if action_group is not None and op.action_group != action_group:
        raise WrongActionGroup(
            f"{op.operation_id} belongs to the {op.action_group} action group, not {action_group}: "
            f"send it to the {op.action_group} action group's function."
        )
    return op


# execution ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Outcome:
    """What a caller (a Lambda handler, the local server) needs to answer and to log."""

    result: AgentResult
    operation: Operation | None
    code: str


def neutral_call(
    operation_id: str,
    parameters: dict[str, object],
    user_id: str | None,
    *,
    correlation_id: str,
    session_id: str = "",
    input_text: str = "",
) -> AgentCall:
    """A call that did not come from an agent event (a local server, a script); the user id must be trusted."""
    return AgentCall(LOCAL, operation_id, "", "", "", dict(parameters), user_id, session_id, input_text, correlation_id)


def execute(app: Application, call: AgentCall, action_group: str | None = None) -> Outcome:
    """Run one call; never raises. Unexpected failures become 500 INTERNAL_ERROR (logged with the trace)."""
    op: Operation | None = None
    try:
        if call.problem is not None:
            raise call.problem
        user_id = authenticate(call.user_id, call.format)
        op = resolve(call, action_group)
        parameters = refuse_other_users(call.parameters, user_id)
        read = plan_read(op.operation_id, parameters)
        if read is not None:  # a first read answered without loading the wire models (centli.entrypoints.reads)
            body = fit(op, None, lambda _: read(app, user_id), lambda b: response_fits(call, b))
            return Outcome(AgentResult(200, body), op, "OK")
        request = validate(op, parameters)
        if op.write:
            request = with_idempotency_key(op, request, call)
        who = Invocation(user_id, call.correlation_id)
        body = fit(
            op,
            request,
            lambda r: op.binding.handler(app, who, r).model_dump(mode="json"),
            lambda b: response_fits(call, b),
        )
        return Outcome(AgentResult(200, body), op, "OK")
    except DomainError as error:
        return Outcome(
            AgentResult(error.status, error_body(error.code, error.message), error.repromptable), op, error.code
        )
    except Exception:
        log.exception("unexpected failure", extra={"operation": op.operation_id if op else None})
        message = "Something went wrong on our side. Please try again later."
        return Outcome(AgentResult(500, error_body("INTERNAL_ERROR", message)), op, "INTERNAL_ERROR")


#: Where each format expects the customer's identity: what a 401 tells the agent's developer.
IDENTITY_SOURCES: Final = {
    OPENAPI: "The customer is not signed in: the application that calls the agent must set "
    "sessionAttributes.user_id to the authenticated customer's id.",
    FUNCTION: "The customer is not signed in: the application that calls the agent must set "
    "sessionAttributes.user_id to the authenticated customer's id.",
    AGENTCORE: "The customer is not signed in: this call carries no valid identity assertion. The gateway's "
    "REQUEST interceptor must add a fresh signed assertion (centli_identity) bound to this very tool call.",
    LOCAL: "The customer is not signed in: the local server takes the customer's id from the X-Centli-User header.",
}


def authenticate(raw: object, fmt: str = LOCAL) -> str:
    """The customer from the trusted source only; anything missing or odd fails closed."""
    missing = Unauthenticated(IDENTITY_SOURCES.get(fmt))
    if not isinstance(raw, str) or raw != raw.strip():
        raise missing
    try:
        return require_id(raw, "user_id")
    except InvalidInput:
        raise missing from None


def refuse_other_users(parameters: dict[str, object], user_id: str) -> dict[str, object]:
    """403 for a parameter that names another customer; one naming the caller is dropped as harmless."""
    kept: dict[str, object] = {}
    for name, value in parameters.items():
        if name.lower().replace("_", "").replace("-", "") not in IDENTITY_PARAMETERS:
            kept[name] = value
        elif value != user_id:
            security_log.warning(
                "security event: a parameter names another customer",
                extra={"security_event": "CROSS_USER_PARAMETER", "parameter": safe_name(name)},
            )
            raise Forbidden("Only the signed-in customer's own information can be used.", field=name)
    return kept


def validate(op: Operation, parameters: dict[str, object]) -> Request:
    from pydantic import ValidationError  # loaded with the wire models by op.request; no import cost here

    try:
        return op.request.model_validate(parameters)
    except ValidationError as error:
        first = error.errors()[0]
        if first["type"] == DOMAIN_REFUSAL:
            raise first["ctx"]["error"] from None  # the domain's code and message, as its parser wrote them
        name = safe_name(str(first["loc"][0])) if first["loc"] else "request"
        if first["type"] == "extra_forbidden":
            message = f"{op.operation_id} has no parameter {name}."
        elif first["type"] == "missing":
            message = f"{name} is required."
        else:
            message = f"{name} is not valid: {first['msg']}."
        raise InvalidInput(message, field=name) from None


def with_idempotency_key(op: Operation, request: Request, call: AgentCall) -> Request:
    """The explicit key, or one derived from the agent turn (session, utterance, operation, parameters)."""
    if getattr(request, "idempotency_key", None):
        return request
    if not call.session_id:
        raise InvalidInput("This request needs an idempotency_key.", field="idempotency_key")
    params = request.model_dump(exclude={"idempotency_key"}, exclude_none=True)
    key = derive_key(call.session_id, call.input_text, op.operation_id, params)
    return request.model_copy(update={"idempotency_key": key})


class ResponseTooLarge(DomainError):
    code = "RESPONSE_TOO_LARGE"
    status = 500
    default_message = "The answer is too large to show. Ask for fewer results."


def response_size(call: AgentCall, body: dict[str, Any]) -> int:
    """Bytes of the whole Lambda response for ``body`` in ``call``'s format, as ``json.dumps`` defaults write it."""
    from centli.adapters.bedrock.events import render  # the formats build on this module: imported when used

    return len(json.dumps(render(call, AgentResult(200, body))))


#: More than the fixed part of any format's Lambda response (keys, punctuation, message version, status).
_ENVELOPE_BYTES: Final = 512


def response_fits(call: AgentCall, body: dict[str, Any]) -> bool:
    """Whether the whole Lambda response for ``body`` is within :data:`MAX_RESPONSE_BYTES`.

    Most answers are far below the cap, and an upper bound says so without
    rendering the response: ``json.dumps`` writes at most 3 bytes for each UTF-8
    byte of the body's compact JSON (an ASCII byte becomes 1 or 2, any other
    character ``\\uXXXX`` or a surrogate pair of them), and of the call's own
    text (session attributes, path). Only a body near the cap is rendered and
    measured (:func:`response_size`), so the answer is always the exact one.
    """
    from centli.adapters.bedrock.events import compact_json  # as render: the formats build on this module

    texts = [compact_json(body), call.action_group, call.api_path, call.http_method, call.operation or ""]
    for attributes in (call.session_attributes, call.prompt_session_attributes):
        texts.extend(attributes)
        texts.extend(attributes.values())
    bound = _ENVELOPE_BYTES + sum(8 + 3 * len(text.encode("utf-8", "surrogatepass")) for text in texts)
    return bound <= MAX_RESPONSE_BYTES or response_size(call, body) <= MAX_RESPONSE_BYTES


def fit(
    op: Operation,
    request: Request | None,
    run: Callable[[Request | None], dict[str, Any]],
    fits: Callable[[dict[str, Any]], bool],
) -> dict[str, Any]:
    """Run ``op``; when the response passes the cap, ask for smaller pages or drop items (never cut JSON).

    ``request`` is None for a read answered without the wire models (never a paged one).
    """
    body = run(request)
    if fits(body):
        return body  # the common case: checked once
    if op.write or op.list_field is None:
        raise ResponseTooLarge()
    items: list[Any] = body[op.list_field]
    if request is not None and op.paged:
        size = len(items)
        while not fits(body) and size > 1:
            size = max(1, size // 2)
            body = run(request.model_copy(update={"limit": size}))
        return _checked(body, fits)
    while not fits(body) and items:
        items = items[: len(items) // 2]
        body = {**body, op.list_field: items, "truncated": True}
    return _checked(body, fits)


def _checked(body: dict[str, Any], fits: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    if not fits(body):
        raise ResponseTooLarge()
    return body
