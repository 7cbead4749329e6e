"""The platform linter passes the committed schemas and rejects a hand-made schema breaking each limit."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from centli.entrypoints.commands import schemas_command
from centli.entrypoints.operations import ACTION_GROUPS, BY_ID
from centli.entrypoints.schema_limits import AgentSchemas, Breach, lint, required_mismatches
from centli.entrypoints.schemas import function_schema, openapi_document, platform_breaches, tool_definitions

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"


def committed() -> list[AgentSchemas]:
    def load(name: str) -> Any:
        return json.loads((SCHEMAS / name).read_text("utf-8"))

    return [
        AgentSchemas(g, load(f"{g}.openapi.json"), load(f"{g}.functions.json"), load(f"{g}.tools.json"))
        for g in ACTION_GROUPS
    ]


def broken(change: Any) -> list[Breach]:
    """Lint the committed schemas after ``change`` edits a deep copy of them."""
    groups = copy.deepcopy(committed())
    change({g.action_group: g for g in groups})
    return lint(groups)


def only(breaches: list[Breach]) -> Breach:
    assert len(breaches) == 1, [str(b) for b in breaches]
    return breaches[0]


def core(groups: dict[str, AgentSchemas], name: str) -> dict[str, Any]:
    functions: list[dict[str, Any]] = groups["core-banking"].functions["functions"]  # type: ignore[assignment]
    return next(f for f in functions if f["name"] == name)


def test_the_committed_schemas_are_within_every_limit() -> None:
    for breaches in (lint(committed()), platform_breaches(SCHEMAS), platform_breaches()):
        assert not breaches, "\n".join(str(b) for b in breaches)  # each names the operation and the limit


def test_a_twelfth_api_breaks_the_agent_quota() -> None:
    def add_api(groups: dict[str, AgentSchemas]) -> None:
        market = groups["marketplace"]
        extra = copy.deepcopy(core(groups, "getBalance"))
        extra["name"] = "getStatement"
        market.functions["functions"].append(extra)  # type: ignore[attr-defined]
        paths = market.openapi["paths"]
        paths["/statements"] = {"get": {**paths["/orders"]["get"], "operationId": "getStatement"}}  # type: ignore[index]

    breaches = broken(add_api)
    assert {(b.operation, b.limit) for b in breaches} == {("(agent)", "APIs per agent")}
    assert "12 APIs" in str(breaches[0]) and "at most 11" in str(breaches[0])


def test_a_sixth_parameter_breaks_the_function_quota() -> None:
    def add_parameter(groups: dict[str, AgentSchemas]) -> None:
        core(groups, "createTransfer")["parameters"]["currency"] = {
            "type": "string",
            "description": "Currency.",
            "required": False,
        }

    breach = only(broken(add_parameter))
    assert (breach.operation, breach.limit) == ("createTransfer", "parameters per function")
    assert "6 parameters; at most 5" in str(breach)


def test_a_parameter_type_bedrock_does_not_know() -> None:
    breach = only(broken(lambda g: core(g, "getBalance")["parameters"]["account_id"].update(type="object")))
    assert (breach.operation, breach.limit) == ("getBalance.account_id", "parameter type")


def test_a_parameter_without_a_boolean_required() -> None:
    breach = only(broken(lambda g: core(g, "getBalance")["parameters"]["account_id"].pop("required")))
    assert (breach.operation, breach.limit) == ("getBalance.account_id", "required")


def test_a_required_flag_that_disagrees_with_the_request_model() -> None:
    functions = copy.deepcopy(function_schema("core-banking"))
    amount = next(f for f in functions["functions"] if f["name"] == "createTransfer")["parameters"]["amount"]
    amount["required"] = False  # what the generator used to write for every parameter
    required = {"createTransfer": ["from_account_id", "destination_id", "amount"]}
    breach = only([b for b in required_mismatches(functions, required) if b.operation.startswith("createTransfer")])
    assert (breach.operation, breach.limit) == ("createTransfer.amount", "required")


def test_a_function_name_outside_the_pattern() -> None:
    breach = only(broken(lambda g: core(g, "getBalance").update(name="get balance!")))
    assert (breach.operation, breach.limit) == ("get balance!", "function name")


def test_a_function_description_over_1200_characters() -> None:
    breach = only(broken(lambda g: core(g, "getBalance").update(description="x" * 1201)))
    assert (breach.operation, breach.limit) == ("getBalance", "function description")


def test_a_parameter_description_over_500_characters() -> None:
    breach = only(broken(lambda g: core(g, "getBalance")["parameters"]["account_id"].update(description="x" * 501)))
    assert (breach.operation, breach.limit) == ("getBalance.account_id", "parameter description")


def test_an_openapi_version_other_than_3_0_0() -> None:
    breach = only(broken(lambda g: g["marketplace"].openapi.update(openapi="3.1.0")))  # type: ignore[attr-defined]
    assert (breach.document, breach.limit) == ("marketplace.openapi.json", "OpenAPI version")


def test_an_operation_without_operation_id() -> None:
    def drop(groups: dict[str, AgentSchemas]) -> None:
        groups["marketplace"].openapi["paths"]["/orders"]["get"].pop("operationId")  # type: ignore[index]

    breach = only(broken(drop))
    assert (breach.operation, breach.limit) == ("GET /orders", "operationId")


def test_an_enum_anywhere_in_an_operation() -> None:
    def add_enum(groups: dict[str, AgentSchemas]) -> None:
        operation = groups["marketplace"].openapi["paths"]["/orders/{order_id}"]["get"]  # type: ignore[index]
        operation["parameters"][0]["schema"]["enum"] = ["ord-1"]

    breach = only(broken(add_enum))
    assert (breach.operation, breach.limit) == ("getOrder", "no enum")


def test_a_tool_name_over_64_characters() -> None:
    def rename(groups: dict[str, AgentSchemas]) -> None:
        groups["marketplace"].openapi["paths"]["/orders"]["get"]["operationId"] = "list" + "Orders" * 10  # type: ignore[index]

    breach = only(broken(rename))
    assert breach.limit == "tool name" and "64 characters" in breach.detail


def test_an_agentcore_schema_keyword_the_gateway_does_not_support() -> None:
    def add_keyword(groups: dict[str, AgentSchemas]) -> None:
        tool = next(t for t in groups["core-banking"].tools if t["name"] == "getBalance")
        tool["inputSchema"]["properties"]["account_id"]["maxLength"] = 64  # type: ignore[index]

    breach = only(broken(add_keyword))
    assert (breach.operation, breach.limit) == ("getBalance", "AgentCore schema keywords")
    assert "maxLength" in breach.detail


def test_the_check_command_fails_on_a_schema_over_a_limit(tmp_path: Path) -> None:
    assert schemas_command(tmp_path, out=open(tmp_path / "log", "w")) == 0
    path = tmp_path / "core-banking.functions.json"
    document = json.loads(path.read_text("utf-8"))
    transfer = next(f for f in document["functions"] if f["name"] == "createTransfer")
    transfer["parameters"]["currency"] = {"type": "string", "description": "Currency.", "required": False}
    path.write_text(json.dumps(document), "utf-8")
    assert schemas_command(tmp_path, check=True, out=open(tmp_path / "check", "w")) == 1
    report = (tmp_path / "check").read_text()
    assert "createTransfer: parameters per function: 6 parameters; at most 5" in report


@pytest.mark.parametrize("group", ACTION_GROUPS)
def test_the_generators_agree_with_the_request_models(group: str) -> None:
    for function in function_schema(group)["functions"]:
        model = BY_ID[function["name"]].request.model_fields
        assert {name: detail["required"] for name, detail in function["parameters"].items()} == {
            name: field.is_required() for name, field in model.items()
        }
    assert openapi_document(group)["openapi"] == "3.0.0"
    assert all(tool["inputSchema"]["type"] == "object" for tool in tool_definitions(group))


def test_required_parameters_are_marked_required_in_the_committed_function_schemas() -> None:
    document = json.loads((SCHEMAS / "core-banking.functions.json").read_text("utf-8"))
    by_name = {f["name"]: f["parameters"] for f in document["functions"]}
    assert by_name["getBalance"]["account_id"]["required"] is True
    assert {k: v["required"] for k, v in by_name["createTransfer"].items()} == {
        "from_account_id": True,
        "destination_id": True,
        "amount": True,
        "concept": False,
        "idempotency_key": False,
    }
