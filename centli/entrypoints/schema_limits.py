"""The platform's quotas on agent schemas, checked before the console or the API refuses them.

Each check encodes one limit of DESIGN's "Platform limits", with its source.
:func:`lint` takes the generated documents of every action group of ONE agent
(OpenAPI, function details, AgentCore tool definitions) and returns every
breach as a :class:`Breach` naming the operation and the limit; ``make test``
and ``centli schemas --check`` fail on any.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

# Bedrock quotas, "Quotas for Amazon Bedrock" (Agents): "APIs per Agent", default 11, counted over every
# action group of one agent. Adjustable, but we stay within the default.
MAX_APIS_PER_AGENT: Final = 11
# Bedrock Agents FunctionSchema/ParameterDetail (API reference) and the "Parameters per function" quota:
# at most 5 parameters; CloudFormation fails with "Validation failed for quota parameters-per-function".
MAX_PARAMETERS_PER_FUNCTION: Final = 5
# ParameterDetail.type: string | number | integer | boolean | array (Bedrock Agents API reference).
FUNCTION_PARAMETER_TYPES: Final = frozenset({"string", "number", "integer", "boolean", "array"})
# Function.name pattern, Bedrock Agents API reference.
FUNCTION_NAME: Final = re.compile(r"([0-9a-zA-Z][_-]?){1,100}")
# Function.description: length 1..1200; ParameterDetail.description: 1..500 (Bedrock Agents API reference).
MAX_FUNCTION_DESCRIPTION: Final = 1200
MAX_PARAMETER_DESCRIPTION: Final = 500
# "Define OpenAPI schemas for your agent's action groups" (Bedrock user guide): OpenAPI 3.0.0, an
# operationId per operation; the tool name Bedrock builds, httpVerb__actionGroup__operationId, must match
# ^[a-zA-Z0-9_-]{1,64}$ (the model's tool-name limit); enum is not supported in action-group schemas.
OPENAPI_VERSION: Final = "3.0.0"
TOOL_NAME: Final = re.compile(r"[a-zA-Z0-9_-]{1,64}")
# Bedrock quota "APIs per action group" (11); never more than the agent's total either.
MAX_OPERATIONS_PER_GROUP: Final = 11
# AgentCore Gateway, Lambda target tool definitions (developer guide, "Lambda function tool schema"):
# a SchemaDefinition supports only these keywords.
AGENTCORE_KEYWORDS: Final = frozenset({"type", "description", "items", "properties", "required"})
_HTTP_METHODS: Final = ("get", "put", "post", "delete", "patch", "head", "options")


@dataclass(frozen=True, slots=True)
class Breach:
    document: str
    operation: str
    limit: str
    detail: str

    def __str__(self) -> str:
        return f"{self.document}: {self.operation}: {self.limit}: {self.detail}"


@dataclass(frozen=True, slots=True)
class AgentSchemas:
    """One action group's three generated documents."""

    action_group: str
    openapi: Mapping[str, Any]
    functions: Mapping[str, Any]
    tools: Sequence[Mapping[str, Any]]


def lint(groups: Sequence[AgentSchemas]) -> list[Breach]:
    """Every breach of a platform limit in one agent's action groups (empty when all fit)."""
    breaches: list[Breach] = []
    for group in groups:
        breaches.extend(lint_openapi(group.action_group, group.openapi))
        breaches.extend(lint_functions(group.action_group, group.functions))
        breaches.extend(lint_tools(group.action_group, group.tools))
    for style, counts in (
        ("openapi", [len(list(_operations(g.openapi))) for g in groups]),
        ("functions", [len(g.functions.get("functions", [])) for g in groups]),
    ):
        if sum(counts) > MAX_APIS_PER_AGENT:
            breaches.append(
                Breach(
                    style,
                    "(agent)",
                    "APIs per agent",
                    f"{sum(counts)} APIs across {len(groups)} action groups; at most {MAX_APIS_PER_AGENT}",
                )
            )
    return breaches


def lint_openapi(group: str, document: Mapping[str, Any]) -> list[Breach]:
    name = f"{group}.openapi.json"
    breaches: list[Breach] = []
    if document.get("openapi") != OPENAPI_VERSION:
        breaches.append(Breach(name, "(document)", "OpenAPI version", f"must be {OPENAPI_VERSION!r}"))
    operations = list(_operations(document))
    if len(operations) > MAX_OPERATIONS_PER_GROUP:
        breaches.append(
            Breach(
                name, "(document)", "APIs per action group", f"{len(operations)}; at most {MAX_OPERATIONS_PER_GROUP}"
            )
        )
    for method, path, operation in operations:
        label = str(operation.get("operationId") or f"{method.upper()} {path}")
        if not operation.get("operationId"):
            breaches.append(Breach(name, label, "operationId", "every operation needs one"))
        elif not TOOL_NAME.fullmatch(f"{method}__{group}__{operation['operationId']}"):
            breaches.append(
                Breach(
                    name, label, "tool name", f"{method}__{group}__{operation['operationId']} must fit 64 characters"
                )
            )
        if not operation.get("description"):
            breaches.append(Breach(name, label, "description", "every operation needs one"))
        for where in _walk(operation):
            if "enum" in where:
                breaches.append(Breach(name, label, "no enum", "Bedrock action groups do not support enum"))
                break
    return breaches


def lint_functions(group: str, document: Mapping[str, Any]) -> list[Breach]:
    name = f"{group}.functions.json"
    breaches: list[Breach] = []
    for function in document.get("functions", []):
        label = str(function.get("name", "(unnamed)"))
        if not FUNCTION_NAME.fullmatch(label):
            breaches.append(Breach(name, label, "function name", "must match ([0-9a-zA-Z][_-]?){1,100}"))
        description = str(function.get("description", ""))
        if not 1 <= len(description) <= MAX_FUNCTION_DESCRIPTION:
            breaches.append(Breach(name, label, "function description", f"{len(description)} characters; 1 to 1200"))
        parameters: Mapping[str, Any] = function.get("parameters", {})
        if len(parameters) > MAX_PARAMETERS_PER_FUNCTION:
            breaches.append(
                Breach(
                    name,
                    label,
                    "parameters per function",
                    f"{len(parameters)} parameters; at most {MAX_PARAMETERS_PER_FUNCTION}",
                )
            )
        for parameter, detail in parameters.items():
            where = f"{label}.{parameter}"
            if detail.get("type") not in FUNCTION_PARAMETER_TYPES:
                breaches.append(
                    Breach(
                        name,
                        where,
                        "parameter type",
                        f"{detail.get('type')!r} is not one of string, number, integer, boolean, array",
                    )
                )
            if not isinstance(detail.get("required"), bool):
                breaches.append(Breach(name, where, "required", "each parameter says required true or false"))
            text = str(detail.get("description", ""))
            if not 1 <= len(text) <= MAX_PARAMETER_DESCRIPTION:
                breaches.append(Breach(name, where, "parameter description", f"{len(text)} characters; 1 to 500"))
    return breaches


def lint_tools(group: str, tools: Sequence[Mapping[str, Any]]) -> list[Breach]:
    name = f"{group}.tools.json"
    breaches: list[Breach] = []
    for tool in tools:
        label = str(tool.get("name", "(unnamed)"))
        for node in _schema_nodes(tool.get("inputSchema", {})):
            extra = sorted(set(node) - AGENTCORE_KEYWORDS)
            if extra:
                breaches.append(Breach(name, label, "AgentCore schema keywords", f"{', '.join(extra)} not supported"))
    return breaches


def required_mismatches(
    functions: Mapping[str, Any], required_by_operation: Mapping[str, Sequence[str]]
) -> list[Breach]:
    """Function parameters whose ``required`` disagrees with what the request model requires."""
    breaches: list[Breach] = []
    for function in functions.get("functions", []):
        label = str(function.get("name"))
        wanted = set(required_by_operation.get(label, ()))
        for parameter, detail in function.get("parameters", {}).items():
            if detail.get("required") is not (parameter in wanted):
                breaches.append(
                    Breach(
                        "functions",
                        f"{label}.{parameter}",
                        "required",
                        f"says {detail.get('required')!r}; the request model says {parameter in wanted}",
                    )
                )
    return breaches


def _operations(document: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        for method in _HTTP_METHODS:
            if method in item:
                yield method, path, item[method]


def _walk(node: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(node, Mapping):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _schema_nodes(schema: Any) -> Iterator[Mapping[str, Any]]:
    """Every schema object inside a tool's input schema (property names are not keywords)."""
    if not isinstance(schema, Mapping):
        return
    yield schema
    for sub in (schema.get("properties") or {}).values():
        yield from _schema_nodes(sub)
    if "items" in schema:
        yield from _schema_nodes(schema["items"])
