"""Least privilege, checked against what the functions really do.

- :func:`expand` turns template.yaml into plain CloudFormation with aws-sam-translator (SAM's own
  transform), so the policies checked are the roles SAM really creates, managed policies included.
- :class:`CallRecorder` hooks every botocore client made while it is installed (the parameters of
  each call, ``before-parameter-build``) and
  records, for the function currently acting, each AWS call as the IAM actions and resources it
  needs (:func:`iam_requests`). Calls made outside a function (test setup) are not recorded.
- :func:`check` compares one function's recorded requests with its expanded policy: every request
  allowed, no granted (action, resource) that no request used (except the calls AWS makes on the
  function's behalf, :data:`ON_BEHALF`), no ``Resource: "*"`` except where AWS requires it.

Resources are compared by logical id: a table's ARN is its logical id (``OrdersTable``), an index
``OrdersTable/index/<name>``, a stream ``OutboxTable/stream``; the test maps the names it created
on moto back to those ids.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.session
from cfnlint.decode import cfn_yaml
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"

#: Calls AWS makes with a function's role on its behalf: they never pass through the function's code,
#: so no flow can record them. (function, action, logical resource) -> why.
ON_BEHALF: dict[tuple[str, str, str], str] = {
    **{
        ("OutboxRelayFunction", action, "OutboxTable/stream"): "Lambda's event source mapping polls the outbox stream"
        for action in (
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
            "dynamodb:ListStreams",
        )
    },
    ("OutboxRelayFunction", "sqs:SendMessage", "EventsDeadLetterQueue"): "Lambda sends a failed batch to the "
    "stream mapping's on-failure destination",
    ("SagaFunction", "sqs:SendMessage", "EventsDeadLetterQueue"): "Lambda's dead-letter queue of failed "
    "asynchronous invocations",
    ("OutboxRelayFunction", "logs:CreateLogStream", "OutboxRelayLogGroup"): "Lambda writes the function's logs",
    ("OutboxRelayFunction", "logs:PutLogEvents", "OutboxRelayLogGroup"): "Lambda writes the function's logs",
    ("OutboxRelayFunction", "xray:PutTraceSegments", "*"): "Tracing: Active (X-Ray has no resource-level permissions)",
    ("OutboxRelayFunction", "xray:PutTelemetryRecords", "*"): "Tracing: Active (X-Ray has no resource-level "
    "permissions)",
}
#: Grants only a failure moto cannot produce reaches (it simulates no TransactionConflict): an idempotency
#: claim cancelled without the stored record (ReturnValuesOnConditionCheckFailure returns nothing for a
#: conflict) is read with GetItem (centli/adapters/dynamodb/repositories.py, ``Idempotency.claim``).
#: (function, action, logical resource) -> why.
FAILURE_ONLY: dict[tuple[str, str, str], str] = {
    (function, "dynamodb:GetItem", "IdempotencyTable"): "an idempotency claim cancelled by a TransactionConflict"
    for function in ("CoreBankingFunction", "MarketplaceFunction", "SagaFunction", "SweeperFunction")
}
#: AWS managed policies SAM attaches to the roles it generates: logs and traces, written by Lambda.
MANAGED_ON_BEHALF = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": "Lambda writes the function's logs",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": "Tracing: Active",
}
#: The only actions granted on Resource "*": X-Ray supports no resource-level permissions.
STAR_REQUIRED = frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"})

_TRANSACT_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}
_SINGLE_TABLE = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "DescribeTable"}


# the template ----------------------------------------------------------------------------------------
def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(cfn_yaml.loads(path.read_text("utf-8"))))
    return loaded


def expand(template: Mapping[str, Any], region: str = "us-east-1") -> dict[str, Any]:
    """The SAM template as plain CloudFormation (``sam package`` would have set an S3 CodeUri).

    No managed policy is named in ``Policies``, so SAM needs no name -> ARN map (it would ask IAM).
    """
    sam = copy.deepcopy(dict(template))
    sam["Globals"]["Function"]["CodeUri"] = "s3://centli-artifacts/lambda.zip"
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    expanded: dict[str, Any] = translator.translate(sam, parameter_values={}, get_managed_policy_map=dict)
    return expanded


def logical(node: Any) -> str:
    """A policy resource as a logical name: ``OrdersTable``, ``OrdersTable/index/x``, ``OutboxTable/stream``, ``*``."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and "Ref" in node:
        return str(node["Ref"])
    if isinstance(node, dict) and "Fn::GetAtt" in node:
        target, attribute = node["Fn::GetAtt"]
        return {"Arn": target, "StreamArn": f"{target}/stream"}.get(attribute, f"{target}.{attribute}")
    if isinstance(node, dict) and "Fn::Sub" in node and isinstance(node["Fn::Sub"], str):

        def name(match: re.Match[str]) -> str:
            return logical({"Fn::GetAtt": match.group(1).split(".", 1)}) if "." in match.group(1) else match.group(1)

        return re.sub(r"\$\{([^}]+)\}", name, node["Fn::Sub"])
    raise AssertionError(f"cannot name the policy resource {node!r}")


@dataclass
class Grants:
    """One function's role: (action, logical resource) pairs of its Allow statements, and its managed policies."""

    role: str
    pairs: set[tuple[str, str]] = field(default_factory=set)
    managed: list[str] = field(default_factory=list)
    star_actions: set[str] = field(default_factory=set)

    def allows(self, action: str, resource: str) -> bool:
        return any(
            fnmatch.fnmatchcase(action.lower(), a.lower()) and fnmatch.fnmatchcase(resource, r) for a, r in self.pairs
        )


def grants(expanded: Mapping[str, Any], function: str) -> Grants:
    resources = expanded["Resources"]
    role_ref = resources[function]["Properties"]["Role"]
    role = role_ref["Fn::GetAtt"][0]
    properties = resources[role]["Properties"]
    documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
    documents += [
        r["Properties"]["PolicyDocument"]
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"].get("Roles", [])
    ]
    found = Grants(role, managed=[logical(arn) for arn in properties.get("ManagedPolicyArns", [])])
    for document in documents:
        statements = document["Statement"]
        for statement in statements if isinstance(statements, list) else [statements]:
            assert statement["Effect"] == "Allow", (function, statement)
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for action in actions:
                for target in targets:
                    name = logical(target)
                    found.pairs.add((action, name))
                    if name == "*":
                        found.star_actions.add(action)
    return found


# recording -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    """One IAM authorization a call needs: the action on a (logical) resource, and the call it came from."""

    action: str
    resource: str
    call: str


NameOf = Callable[[str, str], str]  # (kind: table, bus, secret or queue; physical name or ARN) -> logical id


def iam_requests(service: str, operation: str, params: Mapping[str, Any], name_of: NameOf) -> list[Request]:
    """The IAM (action, resource) pairs one API call is authorized against (``name_of``: physical -> logical)."""
    call = f"{service}.{operation}"

    def table(name: str, index: str | None = None) -> str:
        return name_of("table", name) + (f"/index/{index}" if index else "")

    if service == "dynamodb" and operation in _SINGLE_TABLE:
        return [Request(f"dynamodb:{operation}", table(params["TableName"], params.get("IndexName")), call)]
    if service == "dynamodb" and operation == "TransactWriteItems":
        return [
            Request(_TRANSACT_ACTIONS[kind], table(body["TableName"]), call)
            for item in params["TransactItems"]
            for kind, body in item.items()
        ]
    if service == "dynamodb" and operation == "TransactGetItems":
        return [Request("dynamodb:GetItem", table(item["Get"]["TableName"]), call) for item in params["TransactItems"]]
    if service == "dynamodb" and operation in ("BatchWriteItem", "BatchGetItem"):
        return [Request(f"dynamodb:{operation}", table(name), call) for name in params["RequestItems"]]
    if service == "events" and operation == "PutEvents":
        buses = {entry.get("EventBusName", "default") for entry in params["Entries"]}
        return [Request("events:PutEvents", name_of("bus", bus), call) for bus in sorted(buses)]
    if service == "secretsmanager" and operation == "GetSecretValue":
        return [Request("secretsmanager:GetSecretValue", name_of("secret", params["SecretId"]), call)]
    if service == "sqs" and operation == "SendMessage":
        return [Request("sqs:SendMessage", name_of("queue", params["QueueUrl"]), call)]
    raise AssertionError(f"no IAM mapping for {call}: add it to iam_requests")


class CallRecorder:
    """Records the IAM requests of every AWS call made while a function acts (see :meth:`acting_as`)."""

    def __init__(self, name_of: NameOf) -> None:
        self._name_of = name_of
        self._local = threading.local()
        self.requests: dict[str, set[Request]] = {}

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Hook every botocore client created from now on."""
        original = botocore.session.Session.create_client
        recorder = self

        def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            service = client.meta.service_model.service_name
            client.meta.events.register("before-parameter-build", recorder._hook(service))
            return client

        botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
        try:
            yield
        finally:
            botocore.session.Session.create_client = original  # type: ignore[method-assign]

    def _hook(self, service: str) -> Callable[..., None]:
        def before_parameter_build(model: Any, params: Mapping[str, Any], **_: Any) -> None:
            function = getattr(self._local, "function", None)
            if function is None:
                return
            for request in iam_requests(service, model.name, params, self._name_of):
                self.requests.setdefault(function, set()).add(request)

        return before_parameter_build

    @contextmanager
    def acting_as(self, function: str) -> Iterator[None]:
        self._local.function = function
        _dedicated.append(function)
        try:
            yield
        finally:
            _dedicated.pop()
            self._local.function = None


_dedicated: list[str] = []  # the functions a CallRecorder is recording now (the suite recorder stands aside)


class SuiteRecorder:
    """Every AWS call that any test makes inside a deployed function's handler, attributed by handler.

    Installed for the whole pytest session (tests/conftest.py): each handler named by template.yaml's
    ``Handler`` properties is wrapped, so whichever test calls it (the saga, the DynamoDB handlers, the
    faults...), its calls are recorded and, at the end, checked to be allowed by that function's
    policy. (Unused grants are judged by test_least_privilege.py, which runs every flow.) Tests
    name their tables with a prefix and their buses freely: a table maps to its template logical id
    by its default name's suffix, a bus to the template's one bus.
    """

    def __init__(self, template: Mapping[str, Any]) -> None:
        self.template = template
        self.requests: dict[str, set[Request]] = {}
        self.errors: list[str] = []  # calls that could not be named or mapped to IAM actions
        self._local = threading.local()

    def name_of(self, kind: str, physical: str) -> str:
        from centli.adapters.dynamodb import TableNames
        from centli.adapters.dynamodb.schema import LOGICAL_IDS

        if kind == "table":
            for field_name, default in TableNames().items():
                if physical.endswith(default):
                    return LOGICAL_IDS[field_name]
        if kind == "bus":
            (bus,) = [n for n, r in self.template["Resources"].items() if r["Type"] == "AWS::Events::EventBus"]
            return str(bus)
        if kind == "secret":
            secrets = [n for n, r in self.template["Resources"].items() if r["Type"] == "AWS::SecretsManager::Secret"]
            for secret in secrets:
                if secret in physical:
                    return secret
        return f"unknown {kind}:{physical}"

    def install(self) -> Callable[[], None]:
        """Hook every botocore client created from now on, and wrap every handler of the template;
        returns what undoes it."""
        import importlib

        original = botocore.session.Session.create_client
        recorder = self

        def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            client.meta.events.register(
                "before-parameter-build", recorder._hook(client.meta.service_model.service_name)
            )
            return client

        botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
        wrapped: list[tuple[Any, str, Any]] = []
        for name, resource in self.template["Resources"].items():
            if resource["Type"] != "AWS::Serverless::Function":
                continue
            module_name, _, attribute = resource["Properties"]["Handler"].rpartition(".")
            module = importlib.import_module(module_name)
            wrapped.append((module, attribute, getattr(module, attribute)))
            setattr(module, attribute, self._wrap(name, getattr(module, attribute)))

        def undo() -> None:
            botocore.session.Session.create_client = original  # type: ignore[method-assign]
            for module, attribute, handler in wrapped:
                setattr(module, attribute, handler)

        return undo

    def _wrap(self, function: str, handler: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            previous = getattr(self._local, "function", None)
            self._local.function = function
            try:
                return handler(*args, **kwargs)
            finally:
                self._local.function = previous

        recorded.__wrapped__ = handler  # type: ignore[attr-defined]
        return recorded

    def _hook(self, service: str) -> Callable[..., None]:
        def before_parameter_build(model: Any, params: Mapping[str, Any], **_: Any) -> None:
            function = getattr(self._local, "function", None)
            if function is None or _dedicated:
                return
            try:
                for request in iam_requests(service, model.name, params, self.name_of):
                    self.requests.setdefault(function, set()).add(request)
            except Exception as error:  # never break the test that made the call: report it at the end
                self.errors.append(f"{function}: {service}.{model.name}: {error}")

        return before_parameter_build

    def check(self) -> list[str]:
        """Every recorded call not allowed by its function's policy (and every call that could not be named)."""
        if not self.requests and not self.errors:
            return []
        expanded = expand(self.template)
        problems = list(self.errors)
        for function, requests in sorted(self.requests.items()):
            found = grants(expanded, function)
            for request in sorted(requests, key=lambda r: (r.action, r.resource)):
                if not found.allows(request.action, request.resource):
                    problems.append(
                        f"{function}: {request.call} needs {request.action} on {request.resource}: not granted"
                    )
        return problems


# checking --------------------------------------------------------------------------------------------
def check(function: str, found: Grants, requests: set[Request]) -> list[str]:
    """Every problem of one function's policy against what its flows did; empty when least privilege holds."""
    problems = []
    for request in sorted(requests, key=lambda r: (r.action, r.resource)):
        if not found.allows(request.action, request.resource):
            problems.append(f"{function}: {request.call} needs {request.action} on {request.resource}: not granted")
    for action, resource in sorted(found.pairs):
        used = any(
            fnmatch.fnmatchcase(r.action.lower(), action.lower()) and fnmatch.fnmatchcase(r.resource, resource)
            for r in requests
        )
        if not used and (function, action, resource) not in ON_BEHALF | FAILURE_ONLY:
            problems.append(f"{function}: {action} on {resource} is granted but no flow uses it")
    for action in sorted(found.star_actions - STAR_REQUIRED):
        problems.append(f"{function}: {action} on Resource '*' (AWS does not require it)")
    for arn in found.managed:
        if arn not in MANAGED_ON_BEHALF:
            problems.append(f"{function}: managed policy {arn} is not one AWS needs on the function's behalf")
    return problems
