"""template.yaml: the tables of centli/adapters/dynamodb/schema.py, the functions and their wiring, the Bedrock
agent with the generated schemas, SnapStart, secrets by ARN, alarms; cfn-lint clean, before and after SAM's
transform. (What each function may do is proven by tests/integration/test_least_privilege.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cfnlint.api
import pytest
from cfnlint.decode import cfn_yaml

from centli.adapters.dynamodb import TableNames
from centli.adapters.dynamodb.schema import LOGICAL_IDS, TABLES
from centli.entrypoints import metrics
from centli.entrypoints.schemas import cloudformation_functions, cloudformation_tools, template_is_stale
from centli.entrypoints.settings import _ENV, DEFAULT_AGENTCORE_TARGETS, ROLE_SETTINGS, Settings
from tests.integration.least_privilege import expand, load_template

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


def test_the_expanded_template_is_cfn_lint_clean_too() -> None:
    """cfn-lint checks SAM resources against SAM's schema; the transform's output is checked here."""
    expanded = expand(load_template())
    assert [str(m) for m in cfnlint.api.lint(json.dumps(expanded))] == []


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


def arn(logical_id: str, attribute: str = "Arn") -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, attribute]}


DLQ = arn("EventsDeadLetterQueue")


def functions_of(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return of_type(template, "AWS::Serverless::Function")


def environment_of(template: dict[str, Any], name: str) -> dict[str, Any]:
    globals_ = template["Globals"]["Function"]["Environment"]["Variables"]
    return {**globals_, **functions_of(template)[name]["Properties"].get("Environment", {}).get("Variables", {})}


def test_functions_read_every_table_name_from_the_template(template: dict[str, Any]) -> None:
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    assert {name: f["Properties"]["Handler"] for name, f in functions_of(template).items()} == {
        "CoreBankingFunction": "centli.entrypoints.aws_lambda.core_banking_handler",
        "MarketplaceFunction": "centli.entrypoints.aws_lambda.marketplace_handler",
        "OutboxRelayFunction": "centli.entrypoints.aws_lambda.outbox_relay_handler",
        "SagaFunction": "centli.entrypoints.aws_lambda.saga_handler",
        "SweeperFunction": "centli.entrypoints.aws_lambda.sweeper_handler",
        "AgentCoreInterceptorFunction": "centli.entrypoints.agentcore_interceptor.handler",
    }
    assert template["Globals"]["Function"]["Runtime"] == "python3.12"
    physical = {
        logical: r["Properties"]["TableName"] for logical, r in of_type(template, "AWS::DynamoDB::Table").items()
    }
    for name in functions_of(template):
        if name == "AgentCoreInterceptorFunction":
            continue
        variables = environment_of(template, name)
        assert variables["CENTLI_BACKEND"] == "dynamodb", name
        # What the settings read, resolved through the template's Refs, is every default name.
        environ = {
            key: physical[value["Ref"]]
            for key, value in variables.items()
            if isinstance(value, dict) and value.get("Ref") in physical
        }
        role = {"CENTLI_ROLE": variables["CENTLI_ROLE"], "CENTLI_BACKEND": "memory"}  # the tables alone
        settings = Settings.from_env({**environ, **role})
        assert settings.table_names() == TableNames() and len(environ) == len(TABLES), name


def test_each_function_gets_its_roles_settings_only_and_secrets_by_arn(template: dict[str, Any]) -> None:
    secrets = set(of_type(template, "AWS::SecretsManager::Secret"))
    assert secrets == {"CursorSecret", "AgentCoreIdentitySecret"}
    assert not [p for p, v in template["Parameters"].items() if v.get("NoEcho")]  # no secret passes as a parameter
    dummies = {"LogLevel": "INFO", "AgentCoreIdentityClaim": "sub", "EventBus": "centli-event-bus"}
    variable_of = {var: name for name, var in _ENV.items()}
    roles = set()
    for name in functions_of(template):
        variables = environment_of(template, name)
        role = variables["CENTLI_ROLE"]
        roles.add(role)
        for key, value in variables.items():
            if "SECRET" in key:  # a secret travels as the ARN of a Secrets Manager secret, never as a value
                assert key.endswith("_ARN") and value.get("Ref") in secrets, (name, key)
            if key.startswith("CENTLI_") and not key.startswith("CENTLI_TABLE_") and key != "CENTLI_ROLE":
                assert variable_of[key] in ROLE_SETTINGS[role], (name, key)
        assert not (name == "AgentCoreInterceptorFunction") or not any(k.startswith("CENTLI_TABLE_") for k in variables)

        def resolve(value: Any) -> str:
            if isinstance(value, str):
                return value
            ref = value["Ref"]
            if ref in secrets:
                return f"arn:aws:secretsmanager:us-east-1:123456789012:secret:centli/{ref}-AbCdEf"
            return dummies.get(ref, ref)

        environ = {k: resolve(v) for k, v in variables.items()}
        settings = Settings.from_env({**environ, "AWS_LAMBDA_FUNCTION_NAME": "x"})  # the role's checks pass
        assert settings.role == role
    assert roles == set(ROLE_SETTINGS)

    # The action groups read both secrets; the interceptor only the identity key; nobody else any.
    def secret_refs(name: str) -> set[str]:
        values = environment_of(template, name).values()
        return {v["Ref"] for v in values if isinstance(v, dict) and v.get("Ref") in secrets}

    assert {name: secret_refs(name) for name in functions_of(template)} == {
        "CoreBankingFunction": secrets,
        "MarketplaceFunction": secrets,
        "OutboxRelayFunction": set(),
        "SagaFunction": set(),
        "SweeperFunction": set(),
        "AgentCoreInterceptorFunction": {"AgentCoreIdentitySecret"},
    }


def alias(name: str) -> dict[str, str]:
    return {"Ref": f"{name}.Alias"}


def test_snapstart_on_the_action_groups_and_everything_calls_their_alias(template: dict[str, Any]) -> None:
    functions = functions_of(template)
    for name in ("CoreBankingFunction", "MarketplaceFunction"):
        properties = functions[name]["Properties"]
        assert properties["SnapStart"] == {"ApplyOn": "PublishedVersions"}
        assert properties["AutoPublishAlias"] == "live"
    assert all("SnapStart" not in f["Properties"] for n, f in functions.items() if "Saga" in n or "Sweeper" in n)
    agent = of_type(template, "AWS::Bedrock::Agent")["Agent"]["Properties"]
    executors = [g["ActionGroupExecutor"]["Lambda"] for g in agent["ActionGroups"]]
    assert executors == [alias("CoreBankingFunction"), alias("MarketplaceFunction")]
    targets = of_type(template, "AWS::BedrockAgentCore::GatewayTarget")
    assert sorted(
        t["Properties"]["TargetConfiguration"]["Mcp"]["Lambda"]["LambdaArn"]["Ref"] for t in targets.values()
    ) == [
        "CoreBankingFunction.Alias",
        "MarketplaceFunction.Alias",
    ]
    permissions = of_type(template, "AWS::Lambda::Permission").values()
    assert {p["Properties"]["FunctionName"]["Ref"] for p in permissions} == {
        "CoreBankingFunction.Alias",
        "MarketplaceFunction.Alias",
    }
    # The expanded template: a version with SnapStart behind the alias the agent is given.
    expanded = expand(load_template())["Resources"]
    versions = [r for r in expanded.values() if r["Type"] == "AWS::Lambda::Version"]
    assert len(versions) == 2
    for name in ("CoreBankingFunction", "MarketplaceFunction"):
        assert expanded[name]["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
        assert expanded[f"{name}Aliaslive"]["Type"] == "AWS::Lambda::Alias"


def test_the_agent_its_action_groups_and_alias(template: dict[str, Any]) -> None:
    (agent,) = of_type(template, "AWS::Bedrock::Agent").values()
    properties = agent["Properties"]
    assert [g["ActionGroupName"] for g in properties["ActionGroups"]] == ["core-banking", "marketplace"]
    assert properties["AgentResourceRoleArn"] == arn("AgentServiceRole")
    assert properties["FoundationModel"]["Fn::If"][0] == "UseInferenceProfile"
    assert template["Parameters"]["FoundationModelId"]["Type"] == "String"
    instruction = properties["Instruction"]
    for phrase in ("español", "inglés", "confirmación", "Nunca inventes números de cuenta", "monto exacto"):
        assert phrase in instruction
    assert 40 <= len(instruction) <= 4000
    (alias_,) = of_type(template, "AWS::Bedrock::AgentAlias").values()
    assert alias_["Properties"]["AgentId"] == {"Fn::GetAtt": ["Agent", "AgentId"]}
    for permission in of_type(template, "AWS::Lambda::Permission").values():
        p = permission["Properties"]
        if p["Principal"] == "bedrock.amazonaws.com":
            assert p["SourceArn"] == {"Fn::GetAtt": ["Agent", "AgentArn"]}
            assert p["SourceAccount"] == {"Ref": "AWS::AccountId"}


def branches(node: dict[str, Any]) -> tuple[Any, Any]:
    """The (true, false) branches of an ``Fn::If``."""
    _, when_true, when_false = node["Fn::If"]
    return when_true, when_false


def test_the_embedded_schemas_are_the_generated_files(template: dict[str, Any]) -> None:
    """OpenAPI literally; function details and tools through the PascalCase mapping of centli.entrypoints.schemas."""
    assert not template_is_stale(TEMPLATE_PATH), "run `centli schemas`"
    agent = of_type(template, "AWS::Bedrock::Agent")["Agent"]["Properties"]
    schemas = TEMPLATE_PATH.parent / "schemas"
    for group in agent["ActionGroups"]:
        name = group["ActionGroupName"]
        assert branches(group["ApiSchema"])[0] == {"Ref": "AWS::NoValue"}  # function-details style: no OpenAPI
        assert branches(group["ApiSchema"])[1] == {"Payload": (schemas / f"{name}.openapi.json").read_text("utf-8")}
        functions = json.loads((schemas / f"{name}.functions.json").read_text("utf-8"))
        assert branches(group["FunctionSchema"]) == (
            {"Functions": cloudformation_functions(functions)},
            {"Ref": "AWS::NoValue"},
        )
        assert group["ApiSchema"]["Fn::If"][0] == group["FunctionSchema"]["Fn::If"][0] == "UseFunctionDetails"
    assert template["Parameters"]["ActionGroupSchemaStyle"]["Default"] == "openapi"
    payloads = [json.loads(branches(g["ApiSchema"])[1]["Payload"]) for g in agent["ActionGroups"]]
    confirmed = {
        op["operationId"]
        for payload in payloads
        for methods in payload["paths"].values()
        for op in methods.values()
        if op.get("x-requireConfirmation") == "ENABLED"
    }
    assert confirmed == {"createTransfer", "createPurchase"}
    for target in of_type(template, "AWS::BedrockAgentCore::GatewayTarget").values():
        name = target["Properties"]["Name"].removeprefix("centli-")
        tools = json.loads((schemas / f"{name}.tools.json").read_text("utf-8"))
        lambda_target = target["Properties"]["TargetConfiguration"]["Mcp"]["Lambda"]
        assert lambda_target["ToolSchema"] == {"InlinePayload": cloudformation_tools(tools)}


def test_the_pascal_case_mapping_refuses_a_key_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="enum"):
        cloudformation_tools([{"name": "t", "description": "d", "inputSchema": {"type": "string", "enum": ["a"]}}])


def test_the_agent_role_invokes_the_model_only(template: dict[str, Any]) -> None:
    role = of_type(template, "AWS::IAM::Role")["AgentServiceRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "bedrock.amazonaws.com"}
    assert "aws:SourceAccount" in trust["Condition"]["StringEquals"]
    (policy,) = role["Policies"]
    statements = policy["PolicyDocument"]["Statement"]
    actions: set[str] = set()
    for statement in statements:
        for branch in branches(statement):
            if branch != {"Ref": "AWS::NoValue"}:
                actions.update(branch["Action"])
                resources = json.dumps(branch["Resource"])
                assert (
                    "foundation-model/${FoundationModelId}" in resources
                    or "inference-profile/" in resources
                    or (branch["Action"] == ["bedrock:ApplyGuardrail"] and "Guardrail" in resources)
                )
    assert actions == {
        "bedrock:InvokeModel",
        "bedrock:InvokeModelWithResponseStream",
        "bedrock:GetInferenceProfile",
        "bedrock:ApplyGuardrail",
    }
    guardrail_statement = next(s for s in statements if s["Fn::If"][0] == "GuardrailOn")
    assert branches(guardrail_statement)[1] == {"Ref": "AWS::NoValue"}
    # The regional models behind the profile only through the profile.
    regional = branches(next(s for s in statements[1:] if s["Fn::If"][0] == "UseInferenceProfile"))[0]
    assert "bedrock:InferenceProfileArn" in regional["Condition"]["StringEquals"]


def test_the_optional_guardrail_and_gateway(template: dict[str, Any]) -> None:
    (guardrail,) = of_type(template, "AWS::Bedrock::Guardrail").values()
    assert guardrail["Condition"] == "GuardrailOn"
    pii = {
        e["Type"]: e["Action"] for e in guardrail["Properties"]["SensitiveInformationPolicyConfig"]["PiiEntitiesConfig"]
    }
    assert pii["CREDIT_DEBIT_CARD_NUMBER"] == pii["PIN"] == pii["PASSWORD"] == "BLOCK"
    topics = guardrail["Properties"]["TopicPolicyConfig"]["TopicsConfig"]
    assert [t["Type"] for t in topics] == ["DENY"] and "invest" in topics[0]["Definition"]
    (gateway,) = of_type(template, "AWS::BedrockAgentCore::Gateway").values()
    assert (
        gateway["Condition"] == "GatewayOn" and template["Parameters"]["EnableAgentCoreGateway"]["Default"] == "false"
    )
    (interceptor,) = gateway["Properties"]["InterceptorConfigurations"]
    assert interceptor["InterceptionPoints"] == ["REQUEST"]
    assert interceptor["InputConfiguration"] == {"PassRequestHeaders": True}
    assert interceptor["Interceptor"]["Lambda"]["Arn"] == arn("AgentCoreInterceptorFunction")
    assert gateway["Properties"]["AuthorizerType"] == "CUSTOM_JWT"
    targets = of_type(template, "AWS::BedrockAgentCore::GatewayTarget").values()
    # The interceptor asserts identity to exactly these targets' tools.
    assert {t["Properties"]["Name"] for t in targets} == set(DEFAULT_AGENTCORE_TARGETS.split(","))
    assert all(t["Condition"] == "GatewayOn" for t in targets)


def test_the_warmup_rule_is_off_by_default(template: dict[str, Any]) -> None:
    assert template["Parameters"]["EnableWarmup"]["Default"] == "false"
    (rule,) = of_type(template, "AWS::Events::Rule").values()
    assert rule["Condition"] == "WarmupOn" and rule["Properties"]["ScheduleExpression"] == "rate(5 minutes)"
    assert [(t["Arn"], json.loads(t["Input"])) for t in rule["Properties"]["Targets"]] == [
        (alias("CoreBankingFunction"), {"source": "warmup"}),
        (alias("MarketplaceFunction"), {"source": "warmup"}),
    ]


def test_the_alarms_and_the_dashboard(template: dict[str, Any]) -> None:
    alarms = of_type(template, "AWS::CloudWatch::Alarm")
    for alarm in alarms.values():
        props = alarm["Properties"]
        assert props["AlarmActions"] == {
            "Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]
        }
        assert props["ComparisonOperator"] == "GreaterThanThreshold"
    dlq = alarms["DeadLetterQueueAlarm"]["Properties"]
    assert (dlq["Namespace"], dlq["MetricName"], dlq["Threshold"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        0,
    )
    assert dlq["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["EventsDeadLetterQueue", "QueueName"]}}]
    every_function = set(functions_of(template))
    for alarm_name, metric in (("FunctionErrorsAlarm", "Errors"), ("FunctionThrottlesAlarm", "Throttles")):
        queries = alarms[alarm_name]["Properties"]["Metrics"]
        watched = {
            q["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"]
            for q in queries
            if "MetricStat" in q and q["MetricStat"]["Metric"]["MetricName"] == metric
        }
        assert watched == every_function, alarm_name
    stuck = alarms["StuckOrdersAlarm"]["Properties"]
    assert (stuck["Namespace"], stuck["MetricName"]) == (metrics.NAMESPACE, metrics.STUCK_ORDERS)
    assert stuck["Dimensions"] == [{"Name": "service", "Value": metrics.SWEEPER_SERVICE}]
    age = alarms["RelayIteratorAgeAlarm"]["Properties"]
    assert (age["MetricName"], age["Dimensions"][0]["Value"]) == ("IteratorAge", {"Ref": "OutboxRelayFunction"})
    assert template["Parameters"]["AlarmTopicArn"]["Default"] == ""
    (dashboard,) = of_type(template, "AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    assert metrics.STUCK_ORDERS in body and "IteratorAge" in body and "ApproximateNumberOfMessagesVisible" in body


def test_the_stream_relay_has_its_own_role_on_the_stream(template: dict[str, Any]) -> None:
    relay = functions_of(template)["OutboxRelayFunction"]
    (source,) = relay["Properties"]["Events"].values()
    assert source["Type"] == "DynamoDB"
    props = source["Properties"]
    assert props["Stream"] == arn("OutboxTable", "StreamArn")
    assert props["BatchSize"] == 10 and props["BisectBatchOnFunctionError"] is True
    assert 0 < props["MaximumRetryAttempts"] <= 20
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["DestinationConfig"]["OnFailure"]["Destination"] == DLQ
    assert [json.loads(f["Pattern"]) for f in props["FilterCriteria"]["Filters"]] == [{"eventName": ["INSERT"]}]
    assert relay["Properties"]["Role"] == arn("OutboxRelayRole")
    role = of_type(template, "AWS::IAM::Role")["OutboxRelayRole"]["Properties"]
    assert "ManagedPolicyArns" not in role
    (policy,) = role["Policies"]
    statements = policy["PolicyDocument"]["Statement"]
    stream = next(s for s in statements if "dynamodb:GetRecords" in s["Action"])
    assert stream["Resource"] == [arn("OutboxTable", "StreamArn")]
    star = [s for s in statements if s["Resource"] == "*"]
    assert [sorted(s["Action"]) for s in star] == [["xray:PutTelemetryRecords", "xray:PutTraceSegments"]]
    expanded = expand(load_template())["Resources"]
    assert "OutboxRelayFunctionRole" not in expanded  # SAM made no role with AWSLambdaDynamoDBExecutionRole


def test_saga_rules_retry_then_dead_letter(template: dict[str, Any]) -> None:
    saga = functions_of(template)["SagaFunction"]
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
    sweeper = functions_of(template)["SweeperFunction"]
    (schedule,) = sweeper["Properties"]["Events"].values()
    assert (schedule["Type"], schedule["Properties"]["Schedule"]) == ("Schedule", "rate(5 minutes)")


def test_the_dlq_accepts_eventbridge_and_the_saga_functions(template: dict[str, Any]) -> None:
    assert [b["Properties"]["Name"] for b in of_type(template, "AWS::Events::EventBus").values()] == [
        "centli-event-bus"
    ]
    (policy,) = of_type(template, "AWS::SQS::QueuePolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    principals = [s["Principal"] for s in statements if s["Action"] == "sqs:SendMessage" and s["Resource"] == DLQ]
    assert {"Service": "events.amazonaws.com"} in principals
    assert {"AWS": [arn("OutboxRelayRole"), arn("SagaFunctionRole")]} in principals
