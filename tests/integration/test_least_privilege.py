"""Least privilege per function, proven against a real moto server.

Each function of template.yaml runs its real handler (named by the template's ``Handler``) with the
environment the template gives it (``Environment`` of the expanded template, references resolved to
the tables, bus and secrets created on moto), through every flow it serves: the action groups'
reads and writes in the Bedrock and AgentCore formats (through the interceptor), the outbox relay,
the saga's steps (payment, confirmation, compensation), the sweeper (a stuck order voided, a decided
one re-published, overdue outbox events republished). Every AWS call is recorded as the IAM actions
it needs and checked against that function's policy in the SAM-expanded template
(:mod:`tests.integration.least_privilege`). The calls are derived from running the flows, so a key,
table or call another change adds is checked without editing this file. Beyond these flows, the session
recorder of tests/conftest.py checks every call any other test makes inside a handler.
"""

from __future__ import annotations

import base64
import copy
import importlib
import itertools
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from dependency_injector import providers

from centli.adapters.dynamodb import DynamoStore
from centli.adapters.dynamodb.schema import LOGICAL_IDS
from centli.adapters.memory import ManualClock
from centli.domain import events as ev
from centli.domain.loading import parse_bank_document
from centli.entrypoints import agentcore_interceptor, aws_lambda
from centli.entrypoints.operations import BY_ID
from tests.backends.dynamodb import open_store
from tests.integration.least_privilege import (
    CallRecorder,
    Request,
    SuiteRecorder,
    check,
    expand,
    grants,
    load_template,
)
from tests.integration.moto_server import moto_endpoint
from tests.integration.test_eventbridge_saga import SAGA_RULES, OutboxStream
from tests.unit.entrypoints.conftest import Reply, agentcore_context, bank_document, build_event, decode, example

pytestmark = pytest.mark.integration
_counter = itertools.count(1)
FUNCTIONS = (
    "CoreBankingFunction",
    "MarketplaceFunction",
    "OutboxRelayFunction",
    "SagaFunction",
    "SweeperFunction",
    "AgentCoreInterceptorFunction",
)


@dataclass
class Stack:
    """The template's functions deployed on moto: each call runs under that function's environment."""

    expanded: dict[str, Any]
    refs: dict[str, str]  # logical id -> physical name or ARN, for the template's Refs
    recorder: CallRecorder
    store: DynamoStore
    clock: ManualClock
    sqs: Any
    queue_url: str

    def environment(self, function: str) -> dict[str, str]:
        properties = self.expanded["Resources"][function]["Properties"]
        variables = properties.get("Environment", {}).get("Variables", {})
        resolved = {
            name: value if isinstance(value, str) else self.refs[value["Ref"]] for name, value in variables.items()
        }
        return {**resolved, "AWS_LAMBDA_FUNCTION_NAME": properties["FunctionName"]}

    def call(self, function: str, event: Any, context: Any = None, *, dedicated: bool = True) -> Any:
        """Run ``function``'s handler as deployed; ``dedicated=False``: not recorded by this module's recorder."""
        module, _, name = self.expanded["Resources"][function]["Properties"]["Handler"].rpartition(".")
        handler = getattr(importlib.import_module(module), name)
        saved = {k: v for k, v in os.environ.items() if k.startswith("CENTLI_") or k == "AWS_LAMBDA_FUNCTION_NAME"}
        for key in saved:
            del os.environ[key]
        os.environ.update(self.environment(function))
        fresh_process()
        try:
            if not dedicated:
                return handler(event, context)
            with self.recorder.acting_as(function):
                return handler(event, context)
        finally:
            for key in self.environment(function):
                os.environ.pop(key, None)
            os.environ.update(saved)

    # the agent's side ----------------------------------------------------------------------------
    def agent(self, operation: str, params: dict[str, Any], user: str = "u-ana", fmt: str = "openapi") -> Reply:
        function = "CoreBankingFunction" if BY_ID[operation].action_group == "core-banking" else "MarketplaceFunction"
        event, context = build_event(fmt, operation, params, user=user, session="s-lp", text=f"{operation} {params}")
        return decode(fmt, self.call(function, event, context))

    def gateway(self, operation: str, arguments: dict[str, Any], user: str = "u-ana") -> Reply:
        """A tool call through the gateway: the interceptor asserts the token's subject, then the target runs."""
        group = BY_ID[operation].action_group
        target = f"centli-{group}"
        request = {
            "interceptorInputVersion": "1.0",
            "mcp": {
                "gatewayRequest": {
                    "headers": {"Authorization": f"Bearer {token(user)}"},
                    "body": {
                        "jsonrpc": "2.0",
                        "id": "msg-1",  # the MCP message id agentcore_context names
                        "method": "tools/call",
                        "params": {"name": f"{target}___{operation}", "arguments": arguments},
                    },
                }
            },
        }
        out = self.call("AgentCoreInterceptorFunction", request)
        forwarded = out["mcp"]["transformedGatewayRequest"]["body"]["params"]["arguments"]
        function = "CoreBankingFunction" if group == "core-banking" else "MarketplaceFunction"
        return decode("agentcore", self.call(function, forwarded, agentcore_context(operation, target)))

    # the saga's side ----------------------------------------------------------------------------
    def relay(self) -> int:
        records = OutboxStream(self.store).read()
        if records:
            assert self.call("OutboxRelayFunction", {"Records": records}) == {"batchItemFailures": []}
        return len(records)

    def deliver(self, only: set[str] | None = None) -> int:
        """Bus -> queue -> the saga function; events of other types (when ``only`` is set) are dropped."""
        handled = 0
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return handled
            for message in messages:
                event = json.loads(message["Body"])
                if only is None or event["detail-type"] in only:
                    self.call("SagaFunction", event)
                    handled += 1
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def settle(self) -> None:
        for _ in range(20):
            if self.relay() == 0 and self.deliver() == 0:
                return
        raise AssertionError("the saga did not settle")

    def sweep(self) -> Any:
        return self.call("SweeperFunction", {"version": "0", "source": "aws.events", "detail": {}})


def fresh_process() -> None:
    """What a new Lambda environment starts with: nothing built, nothing cached."""
    aws_lambda.container.reset_singletons()
    agentcore_interceptor._configured.clear()


def token(user: str) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part({'sub': user})}.c2lnbmF0dXJl"


def transfer_params(source: str, destination: str, amount: str, key: str) -> dict[str, Any]:
    """createTransfer's parameters in whichever shape the operation table declares."""
    fields = BY_ID["createTransfer"].request.model_fields
    params: dict[str, Any] = {"from_account_id": source, "amount": amount, "concept": "prueba", "idempotency_key": key}
    if "destination_id" in fields:
        params["destination_id"] = destination
    else:
        params["beneficiary_id" if destination.startswith("ben-") else "to_account_id"] = destination
    return {k: v for k, v in params.items() if k in fields}


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    endpoint = moto_endpoint()
    region = os.environ["AWS_DEFAULT_REGION"]
    expanded = expand(load_template())
    name = f"centli-lp-{os.getpid()}-{next(_counter)}"
    names: dict[str, str] = {}  # physical name or ARN -> logical id
    recorder = CallRecorder(lambda kind, physical: names.get(physical, f"unknown {kind}:{physical}"))
    container = aws_lambda.container
    clock = ManualClock()
    saved_endpoint = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    with recorder.installed(), open_store() as store:
        events = boto3.client("events", endpoint_url=endpoint, region_name=region)
        sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=region)
        secretsmanager = boto3.client("secretsmanager", endpoint_url=endpoint, region_name=region)
        document = bank_document()
        # A product Ana sells herself: buying it pays one of her clearing accounts, like any sale.
        document["products"].append(
            {
                "product_id": "p-own",
                "name": "Rifa",
                "category": "otros",
                "price": "10.00",
                "currency": "MXN",
                "stock": 5,
                "seller_account_id": "acc-0001",
            }
        )
        store.load(parse_bank_document(document, clock.now()))
        events.create_event_bus(Name=name)
        queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for event_type, source in SAGA_RULES.items():
            pattern = {"source": [source], "detail-type": [event_type]}
            events.put_rule(Name=f"{name}-{event_type}", EventBusName=name, EventPattern=json.dumps(pattern))
            events.put_targets(Rule=f"{name}-{event_type}", EventBusName=name, Targets=[{"Id": "q", "Arn": queue_arn}])
        refs = {"EventBus": name, "LogLevel": "INFO", "AgentCoreIdentityClaim": "sub"}
        for secret in ("CursorSecret", "AgentCoreIdentitySecret"):
            arn = secretsmanager.create_secret(Name=f"{name}/{secret}", SecretString=secrets.token_hex(32))["ARN"]
            refs[secret] = arn
        for field, table in store.tables.items():
            refs[LOGICAL_IDS[field]] = table
        names.update({physical: logical for logical, physical in refs.items()})
        container.clock.override(providers.Object(clock))
        try:
            yield Stack(expanded, refs, recorder, store, clock, sqs, queue_url)
        finally:
            container.reset_override()
            fresh_process()
            for event_type in SAGA_RULES:
                events.remove_targets(Rule=f"{name}-{event_type}", EventBusName=name, Ids=["q"])
                events.delete_rule(Name=f"{name}-{event_type}", EventBusName=name)
            events.delete_event_bus(Name=name)
            sqs.delete_queue(QueueUrl=queue_url)
            for secret in ("CursorSecret", "AgentCoreIdentitySecret"):
                secretsmanager.delete_secret(SecretId=refs[secret], ForceDeleteWithoutRecovery=True)
            if saved_endpoint is None:
                os.environ.pop("AWS_ENDPOINT_URL", None)
            else:
                os.environ["AWS_ENDPOINT_URL"] = saved_endpoint


@pytest.fixture(scope="module")
def recorded(stack: Stack) -> dict[str, set[Request]]:
    """Every flow of every function, once; the IAM requests each function made."""
    s = stack
    # core-banking, Bedrock (OpenAPI and function details) and AgentCore
    assert s.agent("listAccounts", {}).status == 200
    assert s.agent("getBalance", {"account_id": "acc-0001"}, fmt="function").status == 200
    assert s.agent("listBeneficiaries", {}).status == 200
    to_beneficiary = decode("openapi", s.call("CoreBankingFunction", example("bedrock-openapi-createTransfer.json")))
    assert to_beneficiary.status == 200, to_beneficiary.body
    own = s.agent("createTransfer", transfer_params("acc-0001", "acc-0003", "100.00", "lp-own"))
    assert own.status == 200, own.body
    again = s.agent("createTransfer", transfer_params("acc-0001", "acc-0003", "100.00", "lp-own")).body
    assert again == {**own.body, "replayed": True}
    broke = s.agent("createTransfer", transfer_params("acc-0003", "acc-0001", "99999.00", "lp-broke"))
    assert broke.status in (422, 400)
    assert s.agent("getTransfer", {"transfer_id": own.body["transfer_id"]}).status == 200
    page = s.agent("listTransactions", {"account_id": "acc-0001", "limit": "1"}).body
    assert s.agent("listTransactions", {"account_id": "acc-0001", "cursor": page["next_cursor"]}).status == 200
    assert s.gateway("getBalance", {"account_id": "acc-0001"}).status == 200
    gateway_key = {"idempotency_key": "lp-gateway-transfer"}
    assert (
        s.gateway("createTransfer", {**transfer_params("acc-0001", "acc-0003", "10.00", "x"), **gateway_key}).status
        == 200
    )

    # marketplace, and a purchase confirmed through the saga
    assert s.agent("searchProducts", {"query": "audífonos"}).status == 200
    assert s.agent("getProduct", {"product_id": "p-100"}, fmt="function").status == 200
    bought = s.agent("createPurchase", {"product_id": "p-100", "quantity": "1", "account_id": "acc-0001"}).body
    s.settle()
    assert s.agent("getOrder", {"order_id": bought["order_id"]}).body["status"] == "CONFIRMED"
    mine = s.agent("createPurchase", {"product_id": "p-own", "quantity": "1", "account_id": "acc-0001"}).body
    s.settle()
    assert s.agent("getOrder", {"order_id": mine["order_id"]}).body["status"] == "CONFIRMED"
    replayed = s.agent("createPurchase", {"product_id": "p-own", "quantity": "1", "account_id": "acc-0001"}).body
    assert replayed["order_id"] == mine["order_id"]
    first = s.agent("listOrders", {"limit": "1"}).body
    assert s.agent("listOrders", {"cursor": first["next_cursor"]}).status == 200
    products = s.agent("searchProducts", {"limit": "1"}).body
    assert s.agent("searchProducts", {"cursor": products["next_cursor"]}).status == 200
    assert s.gateway("searchProducts", {"query": "audífonos"}).status == 200

    # a payment declined at payment time: compensation releases the stock
    poor = s.agent("createPurchase", {"product_id": "p-100", "quantity": "1", "account_id": "acc-0003"}).body
    left = Decimal(s.agent("getBalance", {"account_id": "acc-0003"}).body["balance"])
    drained = s.agent("createTransfer", transfer_params("acc-0003", "acc-0001", str(left - 1), "lp-drain"))
    assert drained.status == 200, drained.body
    s.settle()
    assert s.agent("getOrder", {"order_id": poor["order_id"]}).body["status"] == "CANCELLED"

    # the sweeper: one order never relayed (voided, its events overdue), one paid but never confirmed
    purchase = {"product_id": "p-100", "quantity": "1", "account_id": "acc-0001"}
    never = s.agent("createPurchase", {**purchase, "idempotency_key": "lp-never"}).body
    s.clock.advance(timedelta(minutes=6))
    paid = s.agent("createPurchase", {**purchase, "idempotency_key": "lp-paid"}).body
    relayed_before = OutboxStream(s.store).read()
    s.call("OutboxRelayFunction", {"Records": [r for r in relayed_before if paid["order_id"] in json.dumps(r)]})
    s.deliver(only={ev.PURCHASE_INITIATED})  # paid; its PAYMENT_COMPLETED is relayed later but never delivered
    s.call(
        "OutboxRelayFunction",
        {"Records": [r for r in OutboxStream(s.store).read() if paid["order_id"] in json.dumps(r)]},
    )
    s.deliver(only=set())
    s.clock.advance(timedelta(minutes=16))
    s.sweep()
    s.settle()
    assert s.agent("getOrder", {"order_id": never["order_id"]}).body["status"] == "CANCELLED"
    assert s.agent("getOrder", {"order_id": paid["order_id"]}).body["status"] == "CONFIRMED"
    if os.environ.get("IAM_DUMP"):  # a developer's aid: what each function did, to write its policy from
        dump = {f: sorted({(r.action, r.resource, r.call) for r in rs}) for f, rs in s.recorder.requests.items()}
        Path(os.environ["IAM_DUMP"]).write_text(json.dumps(dump, indent=1))
    return copy.deepcopy(s.recorder.requests)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_is_granted_exactly_what_its_flows_use(
    stack: Stack, recorded: dict[str, set[Request]], function: str
) -> None:
    assert recorded.get(function), f"no flow ran {function}"
    problems = check(function, grants(stack.expanded, function), recorded.get(function, set()))
    assert problems == [], "\n".join(problems)


def statements_granting(template: dict[str, Any], function: str) -> list[dict[str, Any]]:
    """The SAM template's statements of ``function``: its Policies, or its explicit role's."""
    properties = template["Resources"][function]["Properties"]
    if "Policies" in properties:
        return [st for policy in properties["Policies"] for st in policy["Statement"]]
    role = template["Resources"][properties["Role"]["Fn::GetAtt"][0]]["Properties"]
    return [st for policy in role["Policies"] for st in policy["PolicyDocument"]["Statement"]]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_removing_an_action_a_flow_needs_fails_the_check(
    stack: Stack, recorded: dict[str, set[Request]], function: str
) -> None:
    needed = min(recorded[function], key=lambda r: (r.action, r.resource))
    template = load_template()
    for statement in statements_granting(template, function):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        statement["Action"] = [a for a in actions if a != needed.action] or ["sns:Publish"]
    problems = check(function, grants(expand(template), function), recorded[function])
    assert f"{function}: {needed.call} needs {needed.action} on {needed.resource}: not granted" in problems


def test_an_action_no_flow_uses_fails_the_check(stack: Stack, recorded: dict[str, set[Request]]) -> None:
    template = load_template()
    extra = {
        "Effect": "Allow",
        "Action": ["dynamodb:DeleteItem"],
        "Resource": [{"Fn::GetAtt": ["AccountsTable", "Arn"]}],
    }
    template["Resources"]["CoreBankingFunction"]["Properties"]["Policies"][0]["Statement"].append(extra)
    problems = check(
        "CoreBankingFunction", grants(expand(template), "CoreBankingFunction"), recorded["CoreBankingFunction"]
    )
    assert problems == ["CoreBankingFunction: dynamodb:DeleteItem on AccountsTable is granted but no flow uses it"]


def test_resource_star_fails_the_check_unless_aws_requires_it(stack: Stack, recorded: dict[str, set[Request]]) -> None:
    template = load_template()
    for statement in statements_granting(template, "SagaFunction"):
        if "dynamodb:GetItem" in statement["Action"]:
            statement["Resource"] = "*"
    problems = check("SagaFunction", grants(expand(template), "SagaFunction"), recorded["SagaFunction"])
    assert "SagaFunction: dynamodb:GetItem on Resource '*' (AWS does not require it)" in problems


def test_the_stream_trigger_without_the_explicit_role_fails_the_check(
    stack: Stack, recorded: dict[str, set[Request]]
) -> None:
    """SAM's own role for a DynamoDB stream trigger attaches AWSLambdaDynamoDBExecutionRole (Resource "*")."""
    template = load_template()
    relay = template["Resources"]["OutboxRelayFunction"]["Properties"]
    del relay["Role"]
    relay["Policies"] = [
        {"Version": "2012-10-17", "Statement": statements_granting(load_template(), "OutboxRelayFunction")[1:3]}
    ]
    problems = check(
        "OutboxRelayFunction", grants(expand(template), "OutboxRelayFunction"), recorded["OutboxRelayFunction"]
    )
    managed = "arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole"
    assert f"OutboxRelayFunction: managed policy {managed} is not one AWS needs on the function's behalf" in problems


def test_the_suite_wide_recorder_reports_a_call_the_template_does_not_allow(stack: Stack) -> None:
    """tests/conftest.py records every handler's calls across the whole suite; here one without GetItem."""
    template = load_template()
    for statement in statements_granting(template, "CoreBankingFunction"):
        statement["Action"] = [a for a in statement["Action"] if a != "dynamodb:GetItem"] or ["sns:Publish"]
    recorder = SuiteRecorder(template)
    undo = recorder.install()
    try:
        event, context = build_event(
            "openapi", "getBalance", {"account_id": "acc-0001"}, user="u-ana", session="s", text=""
        )
        reply = decode("openapi", stack.call("CoreBankingFunction", event, context, dedicated=False))
    finally:
        undo()
    assert reply.status == 200
    problems = recorder.check()
    assert "CoreBankingFunction: dynamodb.GetItem needs dynamodb:GetItem on AccountsTable: not granted" in problems
    assert SuiteRecorder(load_template()).check() == []  # nothing recorded, nothing to report
