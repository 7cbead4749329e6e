"""AgentCore Gateway REQUEST interceptor: carries the validated customer identity to the tools.

Deployed on the gateway as its REQUEST interceptor with ``passRequestHeaders:
true``. The gateway's inbound authorizer (``CUSTOM_JWT``) has already
validated the caller's access token (signature, issuer, audience, expiry)
before this runs, so the token's claims are read here without verifying the
signature again. For every ``tools/call`` the interceptor removes any
``centli_identity`` argument (the model may have written one) and adds a
short-lived assertion of the claim named by ``CENTLI_AGENTCORE_IDENTITY_CLAIM``
(default ``sub``), signed with the identity key the action-group functions verify
with (``CENTLI_AGENTCORE_IDENTITY_SECRET_ARN``, read from Secrets Manager on the
first tool call and refreshed; ``CENTLI_AGENTCORE_IDENTITY_SECRET`` locally), for the tools of the targets named in
``CENTLI_AGENTCORE_TARGETS`` only (default ``centli-core-banking,centli-marketplace``).
Other MCP methods pass through unchanged.

Each assertion is bound to its one call (see :mod:`centli.adapters.bedrock.identity`):
the full tool name, a hash of the arguments as forwarded, the JSON-RPC message
id, a unique id, an expiry of 60 s, and the gateway's request id when this
invocation can see one (``bedrockAgentCoreAwsRequestId`` in the interceptor's
Lambda client context; the documented interceptor input does not carry it,
see docs/agent-setup.md).
A call without a usable identity is answered by the gateway with a JSON-RPC
error and never reaches a tool. It fails closed when the secret is missing.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Mapping
from typing import Any, Final

from centli.adapters.bedrock.identity import IDENTITY_ARGUMENT, MAX_ASSERTION_SECONDS, issue_assertion
from centli.adapters.secrets import SecretSource
from centli.entrypoints.settings import Settings, SettingsError

OUTPUT_VERSION: Final = "1.0"
TOOL_SEPARATOR: Final = "___"
#: One tool call, not a session: the functions refuse anything longer.
ASSERTION_SECONDS: Final = MAX_ASSERTION_SECONDS
REQUEST_ID_KEY: Final = "bedrockAgentCoreAwsRequestId"
#: JSON-RPC "invalid request" code, as the gateway would use for a refused call.
_REFUSED: Final = -32600


#: This process's settings and identity key source, built on the first tool call (never during init).
_configured: list[tuple[Settings, SecretSource | None]] = []


def _configuration(environ: Mapping[str, str] | None) -> tuple[Settings, SecretSource | None]:
    if environ is not None:  # tests: an explicit environment, nothing cached
        settings = Settings.from_env(environ)
        return settings, settings.identity_secret_source()
    if not _configured:
        settings = Settings.from_env()
        _configured.append((settings, settings.identity_secret_source()))
    return _configured[0]


def handler(event: object, context: object, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    request = _gateway_request(event)
    body = request.get("body") if request else None
    if request is None or not isinstance(body, dict):
        return _refuse(None, "The request could not be read.")
    if body.get("method") != "tools/call":
        return _forward(body)
    try:
        settings, source = _configuration(environ)
        secret = source() if source is not None else None
    except (SettingsError, ValueError, RuntimeError):
        secret = None  # fail closed: a missing, short or unreadable key refuses every tool call
    if secret is None:
        return _refuse(body.get("id"), "Tool calls are not available: no identity key is configured.")
    customer = _claim(request.get("headers"), settings.agentcore_identity_claim)
    params = body.get("params")
    if customer is None or not isinstance(params, dict):
        return _refuse(body.get("id"), "The caller's identity is missing.")
    arguments = params.get("arguments")
    arguments = dict(arguments) if isinstance(arguments, dict) else {}
    arguments.pop(IDENTITY_ARGUMENT, None)
    tool = str(params.get("name", ""))
    if tool.split(TOOL_SEPARATOR, maxsplit=1)[0] in settings.agentcore_target_names():
        arguments[IDENTITY_ARGUMENT] = issue_assertion(
            secret,
            customer,
            int(time.time()),
            ASSERTION_SECONDS,
            tool=tool,
            arguments=arguments,
            message_id=body.get("id"),
            request_id=_gateway_request_id(context),
        )
    return _forward({**body, "params": {**params, "arguments": arguments}})


def _gateway_request_id(context: object) -> str | None:
    """The gateway's request id, when the gateway hands it to this invocation (not documented for interceptors)."""
    custom = getattr(getattr(context, "client_context", None), "custom", None)
    value = custom.get(REQUEST_ID_KEY) if isinstance(custom, Mapping) else None
    return value if isinstance(value, str) and value else None


def _gateway_request(event: object) -> dict[str, Any] | None:
    if not isinstance(event, dict) or not isinstance(event.get("mcp"), dict):
        return None
    request = event["mcp"].get("gatewayRequest")
    return request if isinstance(request, dict) else None


def _claim(headers: object, name: str) -> str | None:
    """The claim ``name`` of the bearer token the gateway already validated."""
    if not isinstance(headers, dict):
        return None
    authorization = next((v for k, v in headers.items() if str(k).lower() == "authorization"), None)
    if not isinstance(authorization, str) or not authorization.lower().startswith("bearer "):
        return None
    parts = authorization[7:].strip().split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    value = claims.get(name) if isinstance(claims, dict) else None
    return value if isinstance(value, str) and value.strip() == value and 0 < len(value) <= 64 else None


def _forward(body: dict[str, Any]) -> dict[str, Any]:
    return {"interceptorOutputVersion": OUTPUT_VERSION, "mcp": {"transformedGatewayRequest": {"body": body}}}


def _refuse(request_id: object, message: str) -> dict[str, Any]:
    error = {"jsonrpc": "2.0", "id": request_id, "error": {"code": _REFUSED, "message": message}}
    return {
        "interceptorOutputVersion": OUTPUT_VERSION,
        "mcp": {"transformedGatewayResponse": {"statusCode": 200, "body": error}},
    }
