"""Ready example events for every operation, generated from the operation table into ``events/``.

Three files per operation, as the agent runtime would send them for Ana
(``u-ana``) of the demo bank:

- ``events/bedrock-openapi/<operationId>.json``: a Bedrock agent, OpenAPI style;
- ``events/bedrock-function/<operationId>.json``: a Bedrock agent, function-details style;
- ``events/agentcore/<operationId>.json``: an AgentCore Gateway tool call, as
  ``{"event": <tool arguments>, "context_client_context_custom": <the gateway's client context>}``.
  It carries no identity assertion (the gateway's interceptor signs one), so it
  is refused with 401 unless one is added.

Use them with ``centli invoke``, ``POST /agent/{action-group}`` or the local
Invoke API. ``centli events --check`` (and a test) keeps them up to date.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from centli.entrypoints.operations import OPERATIONS, Operation
from centli.entrypoints.schemas import render_json, request_fields, stale_files, write_files

DEFAULT_EVENTS_DIR: Final = Path("events")
EXAMPLE_USER: Final = "u-ana"
#: A value for every parameter an example shows; a parameter without one is left out unless required.
EXAMPLE_VALUES: Final[dict[str, str]] = {
    "account_id": "acc-0001",
    "from_account_id": "acc-0001",
    "destination_id": "ben-mama",
    "amount": "500.00",
    "concept": "Para el súper",
    "transfer_id": "REPLACE-with-a-transfer_id-from-createTransfer",
    "order_id": "REPLACE-with-an-order_id-from-createPurchase",
    "product_id": "p-100",
    "quantity": "1",
    "category": "electronics",
    "limit": "5",
}
#: AgentCore writes carry their own key (no agent turn to derive one from).
AGENTCORE_KEYS: Final = {"createTransfer": "example-transfer-0001", "createPurchase": "example-purchase-0001"}
_AGENT = {"name": "centli-assistant", "id": "AGENT12345", "alias": "TSTALIASID", "version": "DRAFT"}


class ExampleError(ValueError):
    """An operation has a required parameter without an example value."""


def example_parameters(op: Operation) -> list[tuple[str, str, str]]:
    """(name, Bedrock type, value as text) of the parameters the example sends, in the table's order."""
    properties, required = request_fields(op, ("type",))
    chosen = []
    for name, schema in properties.items():
        if name in EXAMPLE_VALUES:
            chosen.append((name, str(schema.get("type", "string")), EXAMPLE_VALUES[name]))
        elif name in required:
            raise ExampleError(f"{op.operation_id}: no example value for the required parameter {name}")
    return chosen


def _utterance(op: Operation) -> str:
    return f"(example) {op.summary}"


def bedrock_openapi_event(op: Operation) -> dict[str, Any]:
    parameters = [{"name": n, "type": t, "value": v} for n, t, v in example_parameters(op)]
    event: dict[str, Any] = {
        "messageVersion": "1.0",
        "agent": _AGENT,
        "inputText": _utterance(op),
        "sessionId": "sess-example-0001",
        "actionGroup": op.action_group,
        "apiPath": op.path,
        "httpMethod": op.method,
        "parameters": parameters if op.method == "GET" else [],
    }
    if op.method != "GET":
        event["requestBody"] = {"content": {"application/json": {"properties": parameters}}}
    event["sessionAttributes"] = {"user_id": EXAMPLE_USER}
    event["promptSessionAttributes"] = {}
    return event


def bedrock_function_event(op: Operation) -> dict[str, Any]:
    return {
        "messageVersion": "1.0",
        "agent": _AGENT,
        "inputText": _utterance(op),
        "sessionId": "sess-example-0001",
        "actionGroup": op.action_group,
        "function": op.operation_id,
        "parameters": [{"name": n, "type": t, "value": v} for n, t, v in example_parameters(op)],
        "sessionAttributes": {"user_id": EXAMPLE_USER},
        "promptSessionAttributes": {},
    }


def agentcore_event(op: Operation) -> dict[str, Any]:
    """The flat tool arguments, typed as the tool schema says, and the gateway's client context."""
    arguments: dict[str, Any] = {}
    for name, kind, value in example_parameters(op):
        arguments[name] = int(value) if kind == "integer" else value
    if op.write:
        arguments["idempotency_key"] = AGENTCORE_KEYS[op.operation_id]
    return {
        "event": arguments,
        "context_client_context_custom": {
            "bedrockAgentCoreToolName": f"centli-{op.action_group}___{op.operation_id}",
            "bedrockAgentCoreMessageVersion": "1.0",
            "bedrockAgentCoreAwsRequestId": "example-request-0001",
            "bedrockAgentCoreMcpMessageId": "1",
            "bedrockAgentCoreGatewayId": "example-gateway",
            "bedrockAgentCoreTargetId": f"centli-{op.action_group}",
        },
    }


def generate() -> dict[str, str]:
    """Relative file name -> content of every example event."""
    files: dict[str, str] = {}
    for op in OPERATIONS:
        files[f"bedrock-openapi/{op.operation_id}.json"] = render_json(bedrock_openapi_event(op))
        files[f"bedrock-function/{op.operation_id}.json"] = render_json(bedrock_function_event(op))
        files[f"agentcore/{op.operation_id}.json"] = render_json(agentcore_event(op))
    return files


def write(directory: Path) -> list[str]:
    """Write every example (and drop files no operation generates any more); returns what changed."""
    return write_files(directory, generate(), prune=True)


def stale(directory: Path) -> list[str]:
    """Files missing, different from a fresh generation, or generated by no operation."""
    return stale_files(directory, generate(), prune=True)
