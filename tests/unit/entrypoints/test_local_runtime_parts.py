"""The local runtime's pieces that need no server: the function table, the example events, the JSON guard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from centli.entrypoints import examples
from centli.entrypoints.commands import events_command
from centli.entrypoints.lambda_functions import FUNCTIONS, find_function, invoke, split_wrapped_event
from centli.entrypoints.operations import OPERATIONS

REPO = Path(__file__).resolve().parents[3]


def test_the_function_table_matches_template_yaml() -> None:
    template: dict[str, Any] = json.loads(json.dumps(cfn_yaml.loads((REPO / "template.yaml").read_text("utf-8"))))
    for function in FUNCTIONS:
        resource = template["Resources"][function.logical_id]
        assert resource["Type"] == "AWS::Serverless::Function"
        assert resource["Properties"]["FunctionName"] == function.name
        assert resource["Properties"]["Handler"] == function.handler
        assert callable(function.load())


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("centli-core-banking", "centli-core-banking"),
        ("MarketplaceFunction", "centli-marketplace"),
        ("centli-sweeper:$LATEST", "centli-sweeper"),
        ("arn:aws:lambda:us-east-1:123456789012:function:centli-marketplace", "centli-marketplace"),
        ("arn:aws:lambda:mx-central-1:123456789012:function:centli-marketplace:prod", "centli-marketplace"),
        ("arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:CoreBankingFunction:3", "centli-core-banking"),
        ("123456789012:function:centli-core-banking", "centli-core-banking"),
        ("centli-nope", None),
        ("centli-outbox-relay", None),  # fed by the outbox stream, not invoked
        ("arn:aws:lambda:us-east-1:123456789012:function:centli-core-banking:a:b", None),
        ("arn:aws:s3:::centli-core-banking", None),
        ("", None),
    ],
)
def test_functions_are_found_as_aws_names_them(reference: str, expected: str | None) -> None:
    found = find_function(reference)
    assert (found.name if found else None) == expected


def test_an_exception_becomes_lambdas_error_payload(monkeypatch: pytest.MonkeyPatch) -> None:
    from centli.entrypoints import aws_lambda

    def broken(event: object, context: object) -> int:
        raise RuntimeError("the store is down")

    monkeypatch.setattr(aws_lambda, "sweeper_handler", broken)
    sweeper = find_function("centli-sweeper")
    assert sweeper is not None
    result = invoke(sweeper, {})
    payload = json.loads(result.payload)
    assert result.function_error == "Unhandled"
    assert (payload["errorType"], payload["errorMessage"]) == ("RuntimeError", "the store is down")


def test_an_agentcore_example_file_carries_its_client_context() -> None:
    event, custom = split_wrapped_event(json.loads((REPO / "events" / "agentcore" / "getBalance.json").read_text()))
    assert event == {"account_id": "acc-0001"}
    assert custom is not None and custom["bedrockAgentCoreToolName"] == "centli-core-banking___getBalance"
    assert split_wrapped_event({"event": 1}) == ({"event": 1}, None)


def test_committed_events_equal_a_fresh_generation() -> None:
    assert examples.stale(REPO / "events") == [], "run `centli events`"
    assert len(examples.generate()) == 3 * len(OPERATIONS)


def test_the_events_check_fails_on_stale_missing_or_extra_files(tmp_path: Path) -> None:
    log = tmp_path / "log"
    with log.open("w") as out:
        assert events_command(tmp_path / "events", out=out) == 0
        assert events_command(tmp_path / "events", check=True, out=out) == 0
        (tmp_path / "events" / "bedrock-openapi" / "getBalance.json").write_text("{}")
        assert events_command(tmp_path / "events", check=True, out=out) == 1
        events_command(tmp_path / "events", out=out)
        (tmp_path / "events" / "agentcore" / "oldOperation.json").write_text("{}")
        assert events_command(tmp_path / "events", check=True, out=out) == 1
        events_command(tmp_path / "events", out=out)
        assert not (tmp_path / "events" / "agentcore" / "oldOperation.json").exists()
        assert events_command(tmp_path / "events", check=True, out=out) == 0


def test_every_example_is_a_valid_call_of_its_operation() -> None:
    """Every parameter an example sends validates against the operation's request model."""
    for op in OPERATIONS:
        parameters: dict[str, object] = {name: value for name, _, value in examples.example_parameters(op)}
        op.request.model_validate(parameters)
        openapi = examples.bedrock_openapi_event(op)
        assert (openapi["apiPath"], openapi["httpMethod"]) == (op.path, op.method)
        assert examples.bedrock_function_event(op)["function"] == op.operation_id
        assert ("idempotency_key" in examples.agentcore_event(op)["event"]) == op.write


def test_json_bodies_are_exact_and_bounded() -> None:
    from centli.entrypoints.local_app import MAX_JSON_DEPTH, BadRequest, parse_json

    assert parse_json(b'{"amount": 100.10}', exact_numbers=True) == {"amount": "100.10"}
    nested = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert parse_json(nested, exact_numbers=False) is not None
    for bad in (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), b"[" * 5000, b'{"a": NaN}', b"\xff", b""):
        with pytest.raises(BadRequest):
            parse_json(bad, exact_numbers=True)
