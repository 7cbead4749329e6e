"""template.yaml: the tables of centli/adapters/dynamodb/schema.py, the functions and wiring; cfn-lint clean."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cfnlint.api
import pytest
from cfnlint.decode import cfn_yaml

from centli.adapters.dynamodb import TableNames
from centli.adapters.dynamodb.schema import LOGICAL_IDS, TABLES

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"


def plain(node: Any) -> Any:
    """cfn-lint's YAML nodes as plain dicts and lists (for exact comparison)."""
    return json.loads(json.dumps(node))


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = plain(cfn_yaml.loads(TEMPLATE_PATH.read_text()))
    return loaded


def of_type(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == type_}


def test_cfn_lint_finds_nothing() -> None:
    matches = cfnlint.api.lint(TEMPLATE_PATH.read_text())
    assert [str(m) for m in matches] == []


def test_tables_are_exactly_the_schema_definitions(template: dict[str, Any]) -> None:
    tables = of_type(template, "AWS::DynamoDB::Table")
    defaults = TableNames()
    assert set(tables) == set(LOGICAL_IDS.values())
    for table in TABLES:
        resource = tables[LOGICAL_IDS[table.field]]
        assert resource["Properties"] == table.properties(getattr(defaults, table.field)), table.field
        assert resource["DeletionPolicy"] == "Retain"


def test_seed_layout_and_outbox_stream(template: dict[str, Any]) -> None:
    tables = {r["Properties"]["TableName"]: r["Properties"] for r in of_type(template, "AWS::DynamoDB::Table").values()}
    accounts = tables["centli-accounts"]
    assert accounts["KeySchema"] == [
        {"AttributeName": "user_id", "KeyType": "HASH"},
        {"AttributeName": "account_id", "KeyType": "RANGE"},
    ]
    assert [i["IndexName"] for i in tables["centli-transactions"]["GlobalSecondaryIndexes"]] == [
        "user_id-timestamp-index"
    ]
    assert tables["centli-outbox"]["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert tables["centli-idempotency"]["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert {p["BillingMode"] for p in tables.values()} == {"PAY_PER_REQUEST"}


def test_functions_read_every_table_name_from_the_template(template: dict[str, Any]) -> None:
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    functions = of_type(template, "AWS::Serverless::Function")
    assert {name: f["Properties"]["Handler"] for name, f in functions.items()} == {
        "CoreBankingFunction": "centli.entrypoints.aws_lambda.core_banking_handler",
        "MarketplaceFunction": "centli.entrypoints.aws_lambda.marketplace_handler",
        "OutboxRelayFunction": "centli.entrypoints.aws_lambda.outbox_relay_handler",
        "SagaFunction": "centli.entrypoints.aws_lambda.saga_handler",
        "SweeperFunction": "centli.entrypoints.aws_lambda.sweeper_handler",
        "AgentCoreInterceptorFunction": "centli.entrypoints.agentcore_interceptor.handler",
    }
    globals_ = template["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.12"
    variables = globals_["Environment"]["Variables"]
    assert variables["CENTLI_BACKEND"] == "dynamodb"
    # What TableNames.from_env reads, resolved through the template's Refs, is every default name.
    physical = {
        logical: r["Properties"]["TableName"] for logical, r in of_type(template, "AWS::DynamoDB::Table").items()
    }
    environ = {
        name: physical[value["Ref"]]
        for name, value in variables.items()
        if isinstance(value, dict) and value.get("Ref") in physical
    }
    assert TableNames.from_env(environ) == TableNames()
    assert len(environ) == len(TABLES)


def test_least_privilege_dynamodb_policies(template: dict[str, Any]) -> None:
    functions = of_type(template, "AWS::Serverless::Function")
    for name, function in functions.items():
        statements = [s for policy in function["Properties"].get("Policies", []) for s in policy["Statement"]]
        actions = {a for s in statements for a in s["Action"]}
        assert not any(a.endswith("*") for a in actions), name
        assert "dynamodb:DeleteItem" not in actions and "dynamodb:DeleteTable" not in actions
        scanned = [r for s in statements if "dynamodb:Scan" in s["Action"] for r in s["Resource"]]
        # The catalog, and the sweeper's overdue-outbox check of the small, sparse pending index.
        allowed = [{"Fn::GetAtt": ["ProductsTable", "Arn"]}, {"Fn::Sub": "${OutboxTable.Arn}/index/pending-index"}]
        assert all(r in allowed for r in scanned), name
        for statement in statements:
            assert statement["Resource"] != "*", name
            assert not any(isinstance(r, str) and "*" in r for r in statement["Resource"]), name


def test_bus_queue_and_bedrock_permissions(template: dict[str, Any]) -> None:
    buses = of_type(template, "AWS::Events::EventBus")
    assert [b["Properties"]["Name"] for b in buses.values()] == ["centli-event-bus"]
    assert len(of_type(template, "AWS::SQS::Queue")) == 1
    permissions = of_type(template, "AWS::Lambda::Permission").values()
    granted = {
        p["Properties"]["FunctionName"]["Fn::GetAtt"][0]
        for p in permissions
        if p["Properties"]["Principal"] == "bedrock.amazonaws.com"
        and p["Properties"]["Action"] == "lambda:InvokeFunction"
    }
    assert granted == {"CoreBankingFunction", "MarketplaceFunction"}


def statements_of(function: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in function["Properties"]["Policies"] for s in policy["Statement"]]


def granted(function: dict[str, Any], action: str) -> list[Any]:
    """The resources ``function`` may use ``action`` on (GetAtt/Sub nodes as written)."""
    return [r for s in statements_of(function) if action in s["Action"] for r in s["Resource"]]


def arn(logical_id: str, attribute: str = "Arn") -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, attribute]}


DLQ = arn("EventsDeadLetterQueue")


def test_outbox_stream_relay(template: dict[str, Any]) -> None:
    relay = of_type(template, "AWS::Serverless::Function")["OutboxRelayFunction"]
    (source,) = relay["Properties"]["Events"].values()
    assert source["Type"] == "DynamoDB"
    props = source["Properties"]
    assert props["Stream"] == arn("OutboxTable", "StreamArn")
    assert props["BatchSize"] == 10 and props["BisectBatchOnFunctionError"] is True
    assert 0 < props["MaximumRetryAttempts"] <= 20
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["DestinationConfig"]["OnFailure"]["Destination"] == DLQ
    assert [json.loads(f["Pattern"]) for f in props["FilterCriteria"]["Filters"]] == [{"eventName": ["INSERT"]}]
    assert granted(relay, "events:PutEvents") == [arn("EventBus")]
    assert granted(relay, "dynamodb:GetRecords") == [arn("OutboxTable", "StreamArn")]
    assert granted(relay, "dynamodb:UpdateItem") == [arn("OutboxTable")]
    assert granted(relay, "sqs:SendMessage") == [DLQ]
    assert not granted(relay, "dynamodb:PutItem")


def test_saga_rules_retry_then_dead_letter(template: dict[str, Any]) -> None:
    saga = of_type(template, "AWS::Serverless::Function")["SagaFunction"]
    rules = {
        tuple(e["Properties"]["Pattern"]["detail-type"]): e["Properties"] for e in saga["Properties"]["Events"].values()
    }
    assert {k: r["Pattern"]["source"] for k, r in rules.items()} == {
        ("PURCHASE_INITIATED",): ["centli.marketplace"],
        ("PAYMENT_COMPLETED",): ["centli.core-banking"],
        ("PAYMENT_FAILED",): ["centli.core-banking"],
    }
    for rule in rules.values():
        assert rule["EventBusName"] == {"Ref": "EventBus"}
        assert rule["RetryPolicy"]["MaximumRetryAttempts"] > 0
        assert rule["DeadLetterConfig"] == {"Arn": DLQ}
    # A step that raises: Lambda's async retries, then the same DLQ.
    assert saga["Properties"]["DeadLetterQueue"] == {"Type": "SQS", "TargetArn": DLQ}
    assert saga["Properties"]["EventInvokeConfig"]["MaximumRetryAttempts"] == 2


def test_saga_and_sweeper_may_write_only_what_their_steps_touch(template: dict[str, Any]) -> None:
    functions = of_type(template, "AWS::Serverless::Function")
    saga, sweeper = functions["SagaFunction"], functions["SweeperFunction"]
    tables = set(LOGICAL_IDS.values())

    def tables_for(function: dict[str, Any], action: str) -> set[str]:
        return {r["Fn::GetAtt"][0] for r in granted(function, action) if "Fn::GetAtt" in r} & tables

    assert tables_for(saga, "dynamodb:PutItem") == {
        "TransactionsTable",
        "TransfersTable",
        "IdempotencyTable",
        "ProcessedEventsTable",
        "OutboxTable",
        "OrdersTable",
    }
    assert tables_for(saga, "dynamodb:UpdateItem") == {"AccountsTable", "TransactionsTable", "ProductsTable"}
    assert tables_for(saga, "dynamodb:GetItem") == {"OrdersTable", "IdempotencyTable"}
    assert not granted(saga, "dynamodb:Query") and not granted(saga, "dynamodb:Scan")
    # Backing off stuck orders, and merchant settlement (a ledger transfer per clearing account).
    assert tables_for(sweeper, "dynamodb:PutItem") == {
        "IdempotencyTable",
        "OutboxTable",
        "OrdersTable",
        "TransactionsTable",
        "TransfersTable",
    }
    assert tables_for(sweeper, "dynamodb:GetItem") == {"IdempotencyTable"}
    assert tables_for(sweeper, "dynamodb:BatchGetItem") == {"AccountsTable"}
    assert granted(sweeper, "dynamodb:Scan") == [
        {"Fn::Sub": "${OutboxTable.Arn}/index/pending-index"},
        {"Fn::GetAtt": ["ProductsTable", "Arn"]},
    ]
    assert granted(sweeper, "dynamodb:Query") == [
        {"Fn::Sub": "${OrdersTable.Arn}/index/pending-created-index"},
        {"Fn::Sub": "${OutboxTable.Arn}/index/pending-index"},
    ]
    # Marking republished events; settlement's balances and ledger heads.
    assert tables_for(sweeper, "dynamodb:UpdateItem") == {"OutboxTable", "AccountsTable", "TransactionsTable"}
    assert granted(sweeper, "events:PutEvents") == [{"Fn::GetAtt": ["EventBus", "Arn"]}]
    (schedule,) = sweeper["Properties"]["Events"].values()
    assert (schedule["Type"], schedule["Properties"]["Schedule"]) == ("Schedule", "rate(5 minutes)")


def test_the_dlq_accepts_eventbridge_and_the_saga_functions(template: dict[str, Any]) -> None:
    (policy,) = of_type(template, "AWS::SQS::QueuePolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    principals = [s["Principal"] for s in statements if s["Action"] == "sqs:SendMessage" and s["Resource"] == DLQ]
    assert {"Service": "events.amazonaws.com"} in principals
    assert {"AWS": [arn("OutboxRelayFunctionRole"), arn("SagaFunctionRole")]} in principals
