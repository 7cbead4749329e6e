"""The committed agent schemas are fresh, valid OpenAPI, and follow Bedrock's rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from centli.entrypoints.commands import schemas_command
from centli.entrypoints.operations import ACTION_GROUPS, BY_ID, operations_of
from centli.entrypoints.schemas import generate

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
WRITES = {"createTransfer", "createPurchase"}


def walk(node: Any) -> list[tuple[str, Any]]:
    """Every (key, value) pair anywhere in a JSON document."""
    pairs: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            pairs.append((key, value))
            pairs.extend(walk(value))
    elif isinstance(node, list):
        for item in node:
            pairs.extend(walk(item))
    return pairs


def load(name: str) -> Any:
    return json.loads((SCHEMAS / name).read_text("utf-8"))


def test_committed_schemas_equal_a_fresh_generation() -> None:
    fresh = generate()
    assert sorted(p.name for p in SCHEMAS.glob("*.json")) == sorted(fresh)
    for name, content in fresh.items():
        assert (SCHEMAS / name).read_text("utf-8") == content, f"{name} is stale: run `centli schemas`"
    assert generate() == fresh  # deterministic


def test_the_check_command_fails_on_a_stale_file(tmp_path: Path) -> None:
    assert schemas_command(tmp_path, out=open(tmp_path / "log", "w")) == 0
    assert schemas_command(tmp_path, check=True, out=open(tmp_path / "log2", "w")) == 0
    (tmp_path / "marketplace.openapi.json").write_text("{}\n")
    assert schemas_command(tmp_path, check=True, out=open(tmp_path / "log3", "w")) == 1
    assert "marketplace.openapi.json" in (tmp_path / "log3").read_text()


@pytest.mark.parametrize("group", ACTION_GROUPS)
def test_openapi_is_valid_and_follows_bedrock_rules(group: str) -> None:
    document = load(f"{group}.openapi.json")
    validate(document)
    assert document["openapi"] == "3.0.0"
    keys = {key for key, _ in walk(document)}
    assert "enum" not in keys and "$ref" not in keys and "$defs" not in keys and "anyOf" not in keys
    operations = [(path, method, op) for path, item in document["paths"].items() for method, op in item.items()]
    assert 0 < len(operations) <= 11
    assert {op["operationId"] for _, _, op in operations} == {o.operation_id for o in operations_of(group)}
    for path, method, op in operations:
        assert op["description"] and op["operationId"]
        assert op.get("x-requireConfirmation") == ("ENABLED" if op["operationId"] in WRITES else None)
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        in_template = {part[1:-1] for part in path.split("/") if part.startswith("{")}
        assert declared == in_template, path
        for parameter in op.get("parameters", []):
            assert parameter["description"]
            assert parameter["required"] is True or parameter["in"] == "query"
        if method == "post":
            body = op["requestBody"]["content"]["application/json"]["schema"]
            assert body["properties"] and all(p["description"] for p in body["properties"].values())
        assert "200" in op["responses"]


def test_write_request_bodies_declare_the_contract_parameters() -> None:
    document = load("core-banking.openapi.json")
    transfer = document["paths"]["/transfers"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(transfer["properties"]) == set(BY_ID["createTransfer"].request.model_fields)
    assert transfer["required"] == ["from_account_id", "destination_id", "amount"]
    assert transfer["properties"]["amount"]["type"] == "string"  # money travels as text


@pytest.mark.parametrize("group", ACTION_GROUPS)
def test_function_schemas_have_the_bedrock_shape(group: str) -> None:
    document = load(f"{group}.functions.json")
    assert set(document) == {"functions"}
    assert {f["name"] for f in document["functions"]} == {o.operation_id for o in operations_of(group)}
    for function in document["functions"]:
        assert set(function) == {"name", "description", "parameters", "requireConfirmation"}
        assert 0 < len(function["description"]) <= 1200
        assert function["requireConfirmation"] == ("ENABLED" if function["name"] in WRITES else "DISABLED")
        for parameter in function["parameters"].values():
            assert set(parameter) == {"type", "description", "required"}
            assert parameter["type"] in {"string", "number", "integer", "boolean", "array"}


@pytest.mark.parametrize("group", ACTION_GROUPS)
def test_tool_definitions_have_name_description_and_input_schema(group: str) -> None:
    tools = load(f"{group}.tools.json")
    assert [t["name"] for t in tools] == [o.operation_id for o in operations_of(group)]
    for tool in tools:
        assert set(tool) == {"name", "description", "inputSchema"}
        assert tool["inputSchema"]["type"] == "object"
        assert set(tool["inputSchema"]["required"]) <= set(tool["inputSchema"]["properties"])
        if tool["name"] in WRITES:
            assert "idempotency_key" in tool["inputSchema"]["required"]
        assert "enum" not in {key for key, _ in walk(tool)}


def test_the_check_command_covers_the_schemas_embedded_in_the_template(tmp_path: Path) -> None:
    """template.yaml embeds the schemas; `centli schemas` regenerates its blocks and --check fails when stale."""
    original = (SCHEMAS.parent / "template.yaml").read_text("utf-8")
    template = tmp_path / "template.yaml"
    template.write_text(original, "utf-8")
    assert schemas_command(SCHEMAS, check=True, template=template, out=open(tmp_path / "log", "w")) == 0
    assert original.count("createTransfer") >= 6  # OpenAPI, function details and tools, both styles
    template.write_text(original.replace('"Name": "createTransfer"', '"Name": "sendMoney"', 1), "utf-8")
    assert schemas_command(SCHEMAS, check=True, template=template, out=open(tmp_path / "log2", "w")) == 1
    assert str(template) in (tmp_path / "log2").read_text()
    assert schemas_command(tmp_path / "fresh", template=template, out=open(tmp_path / "log3", "w")) == 0
    assert template.read_text("utf-8") == original


def test_every_operation_has_its_wire_models_and_the_table_loads_without_them() -> None:
    import subprocess
    import sys

    from centli.entrypoints.wire import BINDINGS

    assert set(BINDINGS) == set(BY_ID)
    # The table and the pipeline import no pydantic: the wire models load on the first call.
    probe = "import sys, centli.entrypoints.pipeline, centli.adapters.bedrock.events; print('pydantic' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout == "False\n"
