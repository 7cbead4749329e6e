"""MCP tool definitions and results, generated from the one operation table.

``inputSchema`` is the request model's JSON schema and ``outputSchema`` covers
every shape a call can answer: the response model or the contract's error
body. Annotations come from the table: reads are ``readOnlyHint``, writes are
``destructiveHint``, and a write that takes an idempotency key is
``idempotentHint`` (the same key never moves money twice).
"""

from __future__ import annotations

import json
from typing import Any, Final

import mcp_types as types
from pydantic import BaseModel, ConfigDict, Field

from centli.entrypoints.operations import OPERATIONS, Operation

#: Where the response model's nested definitions live in the output schema.
_DEFS: Final = "$defs"


class ErrorDetail(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str = Field(description="Machine-readable reason, e.g. NOT_FOUND, INSUFFICIENT_FUNDS, NOT_CONFIRMED.")
    message: str = Field(description="Safe to read to the customer.")
    field: str | None = Field(default=None, description="The argument at fault, when there is one.")


class ErrorOut(BaseModel):
    """The contract's error body; a tool result carrying it has ``isError`` set."""

    model_config = ConfigDict(frozen=True)

    error: ErrorDetail


def input_schema(op: Operation) -> dict[str, Any]:
    return op.request.model_json_schema(mode="validation")


def output_schema(op: Operation) -> dict[str, Any]:
    """``{"type": "object", "anyOf": [response, error]}`` with the definitions of both at the root."""
    success = op.response.model_json_schema(mode="serialization", ref_template="#/$defs/{model}")
    failure = ErrorOut.model_json_schema(mode="serialization", ref_template="#/$defs/{model}")
    definitions = {**success.pop(_DEFS, {}), **failure.pop(_DEFS, {})}
    schema: dict[str, Any] = {"type": "object", "anyOf": [success, failure]}
    if definitions:
        schema[_DEFS] = definitions
    return schema


def tool_annotations(op: Operation) -> types.ToolAnnotations:
    keyed = "idempotency_key" in op.request.model_fields
    return types.ToolAnnotations(
        title=op.summary,
        read_only_hint=not op.write,
        destructive_hint=op.write,
        idempotent_hint=True if op.write and keyed else None,
        open_world_hint=False,
    )


def tool(op: Operation) -> types.Tool:
    description = op.description
    if op.write:
        description += (
            " The customer confirms every call in their MCP client or on the bank's confirmation page; "
            "nothing moves until they do."
        )
    return types.Tool(
        name=op.operation_id,
        title=op.summary,
        description=description,
        input_schema=input_schema(op),
        output_schema=output_schema(op),
        annotations=tool_annotations(op),
    )


TOOLS: Final[tuple[types.Tool, ...]] = tuple(tool(op) for op in OPERATIONS)


def result(status: int, body: dict[str, Any]) -> types.CallToolResult:
    """Structured content plus the same JSON as text (for clients that show only text); errors set isError."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return types.CallToolResult(
        content=[types.TextContent(text=text)], structured_content=body, is_error=status != 200 or "error" in body
    )


def error_result(code: str, message: str, field: str | None = None) -> types.CallToolResult:
    detail: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        detail["field"] = field
    return result(400, {"error": detail})
