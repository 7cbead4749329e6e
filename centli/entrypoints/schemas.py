"""Agent schemas generated from the operation table: OpenAPI, Bedrock function details, AgentCore tools.

Bedrock's rules shape the output: OpenAPI "3.0.0", every schema inlined (no
``$ref``), no ``enum``, a description on every operation and parameter,
``x-requireConfirmation: ENABLED`` on writes. Output is deterministic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from centli.entrypoints.operations import ACTION_GROUPS, OPERATIONS, Operation, operations_of
from centli.entrypoints.schema_limits import AgentSchemas, Breach, lint, required_mismatches

OPENAPI_VERSION = "3.0.0"
SCHEMA_VERSION = "1.0.0"
_KEEP = ("type", "description", "minLength", "maxLength", "minimum", "maximum", "items", "properties", "required")
_TOOL_KEY_HELP = (
    "A new unique key (for example a UUID) for each new request. Reuse it only to retry the same request: "
    "the action then happens once."
)
_TOOL_KEEP = ("type", "description", "items", "properties", "required")


def inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with every ``$ref`` replaced by its definition and ``anyOf [X, null]`` folded."""
    definitions = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return walk({**definitions[node["$ref"].rsplit("/", 1)[1]], **_without(node, "$ref")})
        if "anyOf" in node:
            variants = [v for v in node["anyOf"] if v.get("type") != "null"]
            nullable = len(variants) < len(node["anyOf"])
            merged = {**walk(variants[0]), **walk(_without(node, "anyOf"))}
            return {**merged, "nullable": True} if nullable else merged
        return {key: walk(value) for key, value in node.items() if key not in ("$defs", "title", "default")}

    result: dict[str, Any] = walk(schema)
    return result


def _without(node: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in node.items() if k != key}


def _pick(schema: dict[str, Any], keys: tuple[str, ...], *, nullable: bool) -> dict[str, Any]:
    picked: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties":
            picked[key] = {name: _pick(sub, keys, nullable=nullable) for name, sub in value.items()}
        elif key == "items":
            picked[key] = _pick(value, keys, nullable=nullable)
        elif key in keys or (key == "nullable" and nullable):
            picked[key] = value
    return picked


def model_schema(model: type[BaseModel], keys: tuple[str, ...] = _KEEP, *, nullable: bool = True) -> dict[str, Any]:
    return _pick(inline(model.model_json_schema(mode="serialization")), keys, nullable=nullable)


def request_fields(op: Operation, keys: tuple[str, ...] = _KEEP) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The request's parameters (only ``keys`` kept) and the names it requires."""
    full = inline(op.request.model_json_schema(mode="validation"))
    schema = _pick(full, keys, nullable=False)
    return schema.get("properties", {}), list(full.get("required", []))


# OpenAPI -------------------------------------------------------------------------
def openapi_document(action_group: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in operations_of(action_group):
        paths.setdefault(op.path, {})[op.method.lower()] = _openapi_operation(op)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": f"CENTLI {action_group}",
            "version": SCHEMA_VERSION,
            "description": f"The {action_group} action group of the CENTLI banking assistant. Amounts are "
            'decimal strings next to a currency. Errors answer {"error": {"code", "message"}}; the message '
            "is safe to read to the customer.",
        },
        "paths": paths,
    }


def _openapi_operation(op: Operation) -> dict[str, Any]:
    properties, required = request_fields(op)
    operation: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "description": op.description,
        "responses": {
            "200": {
                "description": f"{op.summary}.",
                "content": {"application/json": {"schema": model_schema(op.response)}},
            }
        },
    }
    if op.method == "GET" and properties:
        path_params = op.path_parameters
        operation["parameters"] = [
            {
                "name": name,
                "in": "path" if name in path_params else "query",
                "required": name in path_params or name in required,
                "description": schema["description"],
                "schema": _without(schema, "description"),
            }
            for name, schema in properties.items()
        ]
    elif op.method != "GET":
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "object", "properties": properties, "required": required}}
            },
        }
    if op.write:
        operation["x-requireConfirmation"] = "ENABLED"
    return operation


# Bedrock function details ------------------------------------------------------------
def function_schema(action_group: str) -> dict[str, Any]:
    functions = []
    for op in operations_of(action_group):
        properties, required = request_fields(op, ("type", "description"))
        functions.append(
            {
                "name": op.operation_id,
                "description": op.description,
                "parameters": {
                    name: {"type": schema["type"], "description": schema["description"], "required": name in required}
                    for name, schema in properties.items()
                },
                "requireConfirmation": "ENABLED" if op.write else "DISABLED",
            }
        )
    return {"functions": functions}


# AgentCore Gateway tools ----------------------------------------------------------------
def tool_definitions(action_group: str) -> list[dict[str, Any]]:
    tools = []
    for op in operations_of(action_group):
        properties, required = request_fields(op, _TOOL_KEEP)
        if op.write:  # no agent turn to derive a key from: the model must send one
            required = [*required, "idempotency_key"]
            properties["idempotency_key"] = {"type": "string", "description": _TOOL_KEY_HELP}
        tools.append(
            {
                "name": op.operation_id,
                "description": op.description,
                "inputSchema": {"type": "object", "properties": properties, "required": required},
            }
        )
    return tools


# files ------------------------------------------------------------------------------
def platform_breaches(directory: Path | None = None) -> list[Breach]:
    """Every platform limit the schemas break: the committed ones in ``directory``, else a fresh generation."""
    groups = []
    for group in ACTION_GROUPS:

        def read(kind: str, build: Any, group: str = group) -> Any:
            path = None if directory is None else directory / f"{group}.{kind}.json"
            return json.loads(path.read_text("utf-8")) if path is not None and path.exists() else build(group)

        groups.append(
            AgentSchemas(
                group,
                read("openapi", openapi_document),
                read("functions", function_schema),
                read("tools", tool_definitions),
            )
        )
    required = {op.operation_id: request_fields(op)[1] for op in OPERATIONS}
    return [*lint(groups), *(b for g in groups for b in required_mismatches(g.functions, required))]


def render_json(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generate() -> dict[str, str]:
    """File name -> content of every committed schema."""
    files: dict[str, str] = {}
    for group in ACTION_GROUPS:
        files[f"{group}.openapi.json"] = render_json(openapi_document(group))
        files[f"{group}.functions.json"] = render_json(function_schema(group))
        files[f"{group}.tools.json"] = render_json(tool_definitions(group))
    return files


def write(directory: Path) -> list[str]:
    """Write every schema; returns the names that changed."""
    return write_files(directory, generate())


def stale(directory: Path) -> list[str]:
    """Names whose committed content differs from a fresh generation (or is missing)."""
    return stale_files(directory, generate())


# generated files (schemas here, example events in examples.py) --------------------------
def write_files(directory: Path, files: dict[str, str], *, prune: bool = False) -> list[str]:
    """Write ``files`` (relative name -> content) where they differ; with ``prune``, delete the JSON files
    nothing generates any more. Returns what changed."""
    changed = []
    for name, content in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text("utf-8") != content:
            path.write_text(content, "utf-8")
            changed.append(name)
    for extra in _extra_files(directory, files) if prune else []:
        (directory / extra).unlink()
        changed.append(extra)
    return changed


def stale_files(directory: Path, files: dict[str, str], *, prune: bool = False) -> list[str]:
    """Files missing or different from ``files``; with ``prune``, also JSON files nothing generates."""
    different = [
        name
        for name, content in files.items()
        if not (directory / name).exists() or (directory / name).read_text("utf-8") != content
    ]
    return different + (_extra_files(directory, files) if prune else [])


def _extra_files(directory: Path, files: dict[str, str]) -> list[str]:
    if not directory.exists():
        return []
    present = {p.relative_to(directory).as_posix() for p in directory.rglob("*.json")}
    return sorted(present - set(files))


# template.yaml ------------------------------------------------------------------------
# The agent and the gateway in template.yaml embed these same schemas. CloudFormation spells the
# function and tool schemas with PascalCase keys; the mapping is one to one, key by key:
#   function details: name -> Name, description -> Description, parameters -> Parameters
#                     (each parameter: type -> Type, description -> Description, required -> Required),
#                     requireConfirmation -> RequireConfirmation
#   tool definitions: name -> Name, description -> Description, inputSchema -> InputSchema
#                     (a schema: type -> Type, description -> Description, items -> Items,
#                     properties -> Properties (property names unchanged), required -> Required)
# The OpenAPI document is embedded literally, as the ApiSchema Payload string.
_FUNCTION_KEYS = {"name": "Name", "description": "Description", "requireConfirmation": "RequireConfirmation"}
_PARAMETER_KEYS = {"type": "Type", "description": "Description", "required": "Required"}
_TOOL_KEYS = {"name": "Name", "description": "Description"}
_SCHEMA_KEYS = {"type": "Type", "description": "Description", "required": "Required"}
BEGIN_MARK = "# BEGIN GENERATED "
END_MARK = "# END GENERATED"


def _renamed(node: dict[str, Any], keys: dict[str, str], where: str) -> dict[str, Any]:
    unknown = set(node) - set(keys)
    if unknown:  # a new generated key needs a mapping here, never a silent drop
        raise ValueError(f"{where}: no CloudFormation name for {sorted(unknown)}")
    return {keys[key]: value for key, value in node.items()}


def cloudformation_functions(document: dict[str, Any]) -> list[dict[str, Any]]:
    """A ``*.functions.json`` document as ``AWS::Bedrock::Agent`` ``FunctionSchema.Functions``."""
    functions = []
    for function in document["functions"]:
        mapped = _renamed({k: v for k, v in function.items() if k != "parameters"}, _FUNCTION_KEYS, "function")
        mapped["Parameters"] = {
            name: _renamed(detail, _PARAMETER_KEYS, f"parameter {name}")
            for name, detail in function.get("parameters", {}).items()
        }
        functions.append(mapped)
    return functions


def cloudformation_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool's JSON schema as ``AWS::BedrockAgentCore::GatewayTarget`` ``SchemaDefinition``."""
    mapped = _renamed({k: v for k, v in schema.items() if k not in ("items", "properties")}, _SCHEMA_KEYS, "schema")
    if "items" in schema:
        mapped["Items"] = cloudformation_schema(schema["items"])
    if "properties" in schema:
        mapped["Properties"] = {name: cloudformation_schema(sub) for name, sub in schema["properties"].items()}
    return mapped


def cloudformation_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A ``*.tools.json`` document as a gateway target's ``ToolSchema.InlinePayload``."""
    mapped = []
    for tool in tools:
        entry = _renamed({k: v for k, v in tool.items() if k != "inputSchema"}, _TOOL_KEYS, "tool")
        entry["InputSchema"] = cloudformation_schema(tool["inputSchema"])
        mapped.append(entry)
    return mapped


def _template_block(name: str, files: dict[str, str], indent: str) -> list[str]:
    """The YAML lines of one generated block.

    The agent's ``ApiSchema`` / ``FunctionSchema`` blocks are branches of an ``!If`` (sequence items,
    ``- Payload: |`` and ``- Functions:``); a gateway target's block is the mapping under its
    ``ToolSchema`` (``InlinePayload:``).
    """
    content = files[name]
    inner = indent + "    "
    if name.endswith(".openapi.json"):
        return [f"{indent}- Payload: |", *(inner + line for line in content.splitlines())]
    document = json.loads(content)
    if name.endswith(".functions.json"):
        opening, value = f"{indent}- Functions:", cloudformation_functions(document)
    elif name.endswith(".tools.json"):
        opening, value = f"{indent}InlinePayload:", cloudformation_tools(document)
    else:
        raise ValueError(f"no template block for {name}")
    # JSON is YAML flow syntax: the block stays one readable, diffable document.
    flow = json.dumps(value, indent=2, ensure_ascii=False).splitlines()
    return [opening, *(inner + line for line in flow)]


def render_template(text: str, files: dict[str, str] | None = None) -> str:
    """``text`` (template.yaml) with every ``# BEGIN GENERATED <file>`` block regenerated from ``files``."""
    files = generate() if files is None else files
    out: list[str] = []
    lines = iter(text.splitlines())
    for line in lines:
        out.append(line)
        stripped = line.strip()
        if not stripped.startswith(BEGIN_MARK):
            continue
        indent = line[: len(line) - len(line.lstrip())]
        out.extend(_template_block(stripped[len(BEGIN_MARK) :].strip(), files, indent))
        for skipped in lines:
            if skipped.strip() == END_MARK:
                out.append(skipped)
                break
        else:
            raise ValueError(f"{stripped}: no {END_MARK!r} line")
    return "\n".join(out) + "\n"


def template_is_stale(path: Path) -> bool:
    text = path.read_text("utf-8")
    return render_template(text) != text


def write_template(path: Path) -> bool:
    """Regenerate the schema blocks of ``path``; True when it changed."""
    text = path.read_text("utf-8")
    fresh = render_template(text)
    if fresh != text:
        path.write_text(fresh, "utf-8")
    return fresh != text
