"""The three agent event formats, parsed into the pipeline's neutral call and rendered back.

Parsing never raises: a malformed event becomes an :class:`AgentCall` whose
``problem`` says what is wrong, so the caller still answers in the right
format. What the agent runtime sends is untrusted except the Lambda
``context`` (set by AWS) and ``sessionAttributes`` (set by the application
that authenticated the customer before calling the agent).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any, Final

from centli.adapters.bedrock.identity import IDENTITY_ARGUMENT, AssertionRefused, verify_assertion
from centli.adapters.secrets import SecretSource
from centli.domain.errors import DomainError, InvalidInput
from centli.entrypoints.pipeline import AGENTCORE, FUNCTION, OPENAPI, AgentCall, AgentResult, safe_name

MESSAGE_VERSION: Final = "1.0"
TOOL_NAME_KEY: Final = "bedrockAgentCoreToolName"
REQUEST_ID_KEY: Final = "bedrockAgentCoreAwsRequestId"
MESSAGE_ID_KEY: Final = "bedrockAgentCoreMcpMessageId"
TOOL_SEPARATOR: Final = "___"
MAX_PARAMETERS: Final = 32
_MAX_ECHO_LENGTH = 256
security_log = logging.getLogger("centli.security")
_CORRELATION_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")


def detect_format(event: object, context: object) -> str:
    """AgentCore when the runtime context names a tool; else the Bedrock style the event shows."""
    if _tool_name(context) is not None:
        return AGENTCORE
    if isinstance(event, Mapping) and "function" in event and "apiPath" not in event:
        return FUNCTION
    return OPENAPI


def parse_event(event: object, context: object, *, identity_secret: SecretSource | None = None) -> AgentCall:
    fmt = detect_format(event, context)
    correlation = correlation_id_of(event, context)
    if fmt == AGENTCORE:
        return _parse_agentcore(event, context, correlation, identity_secret)
    data: Mapping[str, Any] = event if isinstance(event, Mapping) else {}
    problem: DomainError | None = None if isinstance(event, Mapping) else InvalidInput("The event is not an object.")
    session_attributes = _string_map(data.get("sessionAttributes"))
    parameters, param_problem = _bedrock_parameters(data, fmt)
    if fmt == OPENAPI and problem is None and not ("apiPath" in data and "httpMethod" in data):
        problem = InvalidInput("The event names no operation.")
    return AgentCall(
        format=fmt,
        operation=_text(data.get("function")) if fmt == FUNCTION else None,
        api_path=_text(data.get("apiPath")),
        http_method=_text(data.get("httpMethod")).upper(),
        action_group=_text(data.get("actionGroup")),
        parameters=parameters,
        user_id=session_attributes.get("user_id"),
        session_id=_text(data.get("sessionId")),
        input_text=data["inputText"] if isinstance(data.get("inputText"), str) else "",
        correlation_id=correlation,
        session_attributes=session_attributes,
        prompt_session_attributes=_string_map(data.get("promptSessionAttributes")),
        problem=problem or param_problem,
    )


#: JSON as every answer writes it (UTF-8, no spaces): one encoder, not one per call as json.dumps(..., **options).
compact_json: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def render(call: AgentCall, result: AgentResult) -> dict[str, Any]:
    """The response in the format the call came in."""
    if call.format == AGENTCORE:
        if "error" in result.body:
            return {"error": {**result.body["error"], "status": result.status}}
        return result.body
    body = compact_json(result.body)
    if call.format == FUNCTION:
        function_response: dict[str, Any] = {"responseBody": {"TEXT": {"body": body}}}
        # FAILURE only when the session cannot go on; REPROMPT for input the model can fix.
        if result.status in (401, 403):
            function_response["responseState"] = "FAILURE"
        elif result.status >= 400 and result.repromptable:
            function_response["responseState"] = "REPROMPT"
        response: dict[str, Any] = {
            "actionGroup": call.action_group,
            "function": call.operation or "",
            "functionResponse": function_response,
        }
    else:
        response = {
            "actionGroup": call.action_group,
            "apiPath": call.api_path,
            "httpMethod": call.http_method,
            "httpStatusCode": result.status,
            "responseBody": {"application/json": {"body": body}},
        }
    return {
        "messageVersion": MESSAGE_VERSION,
        "response": response,
        "sessionAttributes": call.session_attributes,
        "promptSessionAttributes": call.prompt_session_attributes,
    }


# parsing helpers -----------------------------------------------------------------
def _parse_agentcore(
    event: object, context: object, correlation: str, identity_secret: SecretSource | None
) -> AgentCall:
    tool = _tool_name(context) or ""
    target, _, operation = tool.rpartition(TOOL_SEPARATOR)
    problem: DomainError | None = None
    arguments: dict[str, object] = {}
    if not isinstance(event, Mapping):
        problem = InvalidInput("The tool arguments must be an object.")
    elif len(event) > MAX_PARAMETERS:
        problem = InvalidInput("Too many parameters.")
    else:
        arguments = {str(k)[:_MAX_ECHO_LENGTH]: v for k, v in event.items()}
    assertion = arguments.pop(IDENTITY_ARGUMENT, None)
    user_id: str | None = None
    if identity_secret is not None and problem is None:
        custom = _client_custom(context)
        try:
            # The secret is read only here, so Bedrock-format calls never fetch the AgentCore key.
            user_id = verify_assertion(
                assertion,
                identity_secret(),
                int(time.time()),
                tool=tool,
                arguments=arguments,
                message_id=custom.get(MESSAGE_ID_KEY),
                request_id=custom.get(REQUEST_ID_KEY),
            )
        except AssertionRefused as refused:
            security_log.warning(
                "security event: identity assertion refused",
                extra={
                    "security_event": "IDENTITY_ASSERTION_REFUSED",
                    "reason": refused.reason,
                    "tool": _text(tool),
                    "correlation_id": correlation,
                },
            )
    return AgentCall(
        format=AGENTCORE,
        operation=operation,
        api_path="",
        http_method="",
        action_group=_text(target),
        parameters=arguments,
        user_id=user_id,
        # No agent turn to derive an idempotency key from: writes must carry their own.
        session_id="",
        input_text="",
        correlation_id=correlation,
        problem=problem,
    )


def _bedrock_parameters(data: Mapping[str, Any], fmt: str) -> tuple[dict[str, object], DomainError | None]:
    lists: list[object] = [data.get("parameters")]
    if fmt == OPENAPI:
        lists.append(_dig(data, "requestBody", "content", "application/json", "properties"))
    parameters: dict[str, object] = {}
    for raw in lists:
        if raw is None:
            continue
        if not isinstance(raw, list) or len(raw) > MAX_PARAMETERS:
            return {}, InvalidInput("The parameters must be a short list.")
        for item in raw:
            if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item["name"]:
                return {}, InvalidInput("Every parameter needs a name.")
            name: str = item["name"]
            if name in parameters:
                return {}, InvalidInput(f"The parameter {safe_name(name)} was given twice.")
            parameters[name] = item.get("value")
    return parameters, None


def _tool_name(context: object) -> str | None:
    name = _client_custom(context).get(TOOL_NAME_KEY)
    return name if isinstance(name, str) else None


def _client_custom(context: object) -> Mapping[str, Any]:
    client_context = getattr(context, "client_context", None)
    custom = getattr(client_context, "custom", None)
    return custom if isinstance(custom, Mapping) else {}


def correlation_id_of(event: object, context: object) -> str:
    """From the calling application's session attributes, the gateway, or the Lambda request."""
    candidates = (
        _dig(event, "sessionAttributes", "correlation_id"),
        _dig(event, "promptSessionAttributes", "correlation_id"),
        _client_custom(context).get(REQUEST_ID_KEY),
        getattr(context, "aws_request_id", None),
    )
    for candidate in candidates:
        if is_safe_token(candidate):
            return str(candidate)
    import uuid  # only without a Lambda context (tests, local calls): uuid costs a cold start ~7 ms

    return str(uuid.uuid4())


def is_safe_token(value: object, max_length: int = 128) -> bool:
    return isinstance(value, str) and 0 < len(value) <= max_length and set(value) <= _CORRELATION_CHARS


def _dig(value: object, *keys: str) -> object:
    """``value[key][key]...``, or None where a level is not an object."""
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _text(value: object) -> str:
    return value[:_MAX_ECHO_LENGTH] if isinstance(value, str) else ""


def _string_map(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}
