"""Drive the Lambda handlers with real-format events over the in-memory backend (providers overridden)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import SecretStr

from centli.adapters.bedrock.identity import IDENTITY_ARGUMENT, issue_assertion
from centli.adapters.memory import InMemoryStore, ManualClock, SequentialIds
from centli.domain.application import Application
from centli.domain.loading import parse_bank_document
from centli.entrypoints import aws_lambda
from centli.entrypoints.demo import demo_bank
from centli.entrypoints.operations import BY_ID, CORE_BANKING
from centli.entrypoints.settings import Settings
from tests.containers import overridden

#: The tests' own copies of the contract's example events (tests never read ../shared).
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
IDENTITY_SECRET = "test-agentcore-identity-secret"
FORMATS = ("openapi", "function", "agentcore")
NOW_EPOCH = 1_795_000_000


def example(name: str) -> dict[str, Any]:
    """A sample event from tests/examples (a fresh copy: tests may change it)."""
    loaded: dict[str, Any] = json.loads((EXAMPLES / name).read_text("utf-8"))
    return loaded


def bank_document() -> dict[str, Any]:
    """The demo bank plus a second account and a beneficiary for Luis, so he has every kind of data."""
    document = copy.deepcopy(demo_bank())
    document["accounts"].append(
        {"user_id": "u-luis", "account_id": "acc-0004", "alias": "Ahorro", "currency": "MXN", "opening_balance": "300"}
    )
    document["beneficiaries"].append(
        {"user_id": "u-luis", "beneficiary_id": "ben-ana", "alias": "Ana", "account_id": "acc-0001"}
    )
    return document


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    state: str | None
    raw: dict[str, Any]


@dataclass
class Harness:
    store: InMemoryStore
    clock: ManualClock

    @property
    def app(self) -> Application:
        app: Application = aws_lambda.container.application()
        return app

    def call(
        self,
        fmt: str,
        operation: str,
        params: dict[str, Any] | None = None,
        *,
        user: str | None = "u-ana",
        session: str = "sess-0001",
        text: str = "¿Cuánto tengo?",
    ) -> Reply:
        event, context = build_event(fmt, operation, params or {}, user=user, session=session, text=text)
        return self.send(fmt, BY_ID[operation].action_group, event, context)

    def send(self, fmt: str, action_group: str, event: Any, context: Any = None) -> Reply:
        handler = aws_lambda.core_banking_handler if action_group == CORE_BANKING else aws_lambda.marketplace_handler
        return decode(fmt, handler(event, context))

    def snapshot(self) -> dict[str, Any]:
        """Everything a rejected call must leave untouched."""
        with self.store.lock:
            return {
                "tables": copy.deepcopy(self.store.tables),
                "entries": sum(len(v) for v in self.store.entries.values()),
            }


def lambda_context(custom: dict[str, Any] | None = None, request_id: str = "lambda-req-1") -> SimpleNamespace:
    client_context = None if custom is None else SimpleNamespace(custom=custom)
    return SimpleNamespace(client_context=client_context, aws_request_id=request_id)


def agentcore_context(tool: str, target: str = "centli-core-banking") -> SimpleNamespace:
    return lambda_context(
        {
            "bedrockAgentCoreToolName": f"{target}___{tool}",
            "bedrockAgentCoreMessageVersion": "1.0",
            "bedrockAgentCoreAwsRequestId": "gw-req-1",
            "bedrockAgentCoreMcpMessageId": "msg-1",
            "bedrockAgentCoreGatewayId": "gw-1",
            "bedrockAgentCoreTargetId": "tgt-1",
        }
    )


def assertion(
    user: str,
    now: int | None = None,
    ttl: int = 60,
    *,
    tool: str = "getBalance",
    arguments: dict[str, Any] | None = None,
    message_id: str = "msg-1",
    request_id: str | None = "gw-req-1",
    target: str | None = None,
) -> str:
    """What the interceptor writes for one call of ``tool`` with ``arguments`` (agentcore_context's ids)."""
    import time

    return issue_assertion(
        IDENTITY_SECRET.encode(),
        user,
        int(time.time()) if now is None else now,
        ttl,
        tool=f"{target or 'centli-' + BY_ID[tool].action_group}___{tool}",
        arguments=arguments or {},
        message_id=message_id,
        request_id=request_id,
    )


def build_event(
    fmt: str, operation: str, params: dict[str, Any], *, user: str | None, session: str, text: str
) -> tuple[dict[str, Any], Any]:
    op = BY_ID[operation]
    if fmt == "agentcore":
        event = dict(params)
        if user is not None:
            event[IDENTITY_ARGUMENT] = assertion(user, tool=operation, arguments=params)
        return event, agentcore_context(operation, f"centli-{op.action_group}")
    as_list = [{"name": k, "type": "string", "value": str(v)} for k, v in params.items()]
    event: dict[str, Any] = {
        "messageVersion": "1.0",
        "agent": {"name": "centli-assistant", "id": "AGENT12345", "alias": "TSTALIASID", "version": "DRAFT"},
        "inputText": text,
        "sessionId": session,
        "actionGroup": op.action_group,
        "sessionAttributes": {} if user is None else {"user_id": user},
        "promptSessionAttributes": {},
    }
    if fmt == "function":
        event.update(function=operation, parameters=as_list)
    elif op.method == "GET":
        event.update(apiPath=op.path, httpMethod="GET", parameters=as_list)
    else:
        event.update(
            apiPath=op.path,
            httpMethod=op.method,
            parameters=[],
            requestBody={"content": {"application/json": {"properties": as_list}}},
        )
    return event, lambda_context()


def decode(fmt: str, raw: Any) -> Reply:
    """Check the envelope of ``fmt`` strictly and return status, body and REPROMPT/FAILURE state."""
    assert isinstance(raw, dict)
    json.dumps(raw)  # the runtime must be able to serialise it
    if fmt == "agentcore":
        if "error" in raw:
            assert set(raw) == {"error"} and set(raw["error"]) == {"code", "message", "status"}
            return Reply(
                raw["error"]["status"], {"error": {k: raw["error"][k] for k in ("code", "message")}}, None, raw
            )
        return Reply(200, raw, None, raw)
    assert set(raw) == {"messageVersion", "response", "sessionAttributes", "promptSessionAttributes"}
    assert raw["messageVersion"] == "1.0"
    response = raw["response"]
    if fmt == "function":
        assert set(response) == {"actionGroup", "function", "functionResponse"}
        function_response = response["functionResponse"]
        assert set(function_response) <= {"responseState", "responseBody"}
        assert set(function_response["responseBody"]) == {"TEXT"}
        body = json.loads(function_response["responseBody"]["TEXT"]["body"])
        state = function_response.get("responseState")
        assert state in (None, "REPROMPT", "FAILURE")
        status = _status_of(body)
        return Reply(status, body, state, raw)
    assert set(response) == {"actionGroup", "apiPath", "httpMethod", "httpStatusCode", "responseBody"}
    assert set(response["responseBody"]) == {"application/json"}
    body = json.loads(response["responseBody"]["application/json"]["body"])
    assert isinstance(body, dict)
    return Reply(response["httpStatusCode"], body, None, raw)


_STATUS_BY_CODE = {
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "IDEMPOTENCY_CONFLICT": 409,
    "CONCURRENCY_CONFLICT": 409,
    "INSUFFICIENT_FUNDS": 422,
    "LIMIT_EXCEEDED": 422,
    "OUT_OF_STOCK": 422,
    "CURRENCY_MISMATCH": 422,
    "INTERNAL_ERROR": 500,
    "DEPENDENCY_UNAVAILABLE": 503,
}


def _status_of(body: dict[str, Any]) -> int:
    """Function-details responses carry no HTTP status: infer it from the error code."""
    if "error" not in body:
        return 200
    code = body["error"]["code"]
    if code in _STATUS_BY_CODE:
        return _STATUS_BY_CODE[code]
    return 404 if code.endswith("NOT_FOUND") else 400


@pytest.fixture
def harness() -> Iterator[Harness]:
    with open_harness() as opened:
        yield opened


@contextmanager
def open_harness(document: dict[str, Any] | None = None) -> Iterator[Harness]:
    """The Lambda module's container pointed at a fresh in-memory bank, a manual clock and counted ids."""
    container = aws_lambda.container
    clock = ManualClock()
    store = InMemoryStore(clock=clock)
    store.load(parse_bank_document(document or bank_document(), clock.now()))
    settings = Settings(backend="memory", agentcore_identity_secret=SecretStr(IDENTITY_SECRET))
    with overridden(container, settings=settings, store=store, clock=clock, ids=SequentialIds()):
        yield Harness(store, clock)


@pytest.fixture
def seeded(harness: Harness) -> dict[str, str]:
    """A transfer and a settled order for each of Ana and Luis."""
    ids: dict[str, str] = {}
    for user, source, target, account in (
        ("u-ana", "acc-0001", "ben-mama", "acc-0001"),
        ("u-luis", "acc-0002", "ben-ana", "acc-0002"),
    ):
        transfer = harness.call(
            "openapi",
            "createTransfer",
            {"from_account_id": source, "destination_id": target, "amount": "10.00", "idempotency_key": f"t-{user}"},
            user=user,
        )
        order = harness.call(
            "openapi",
            "createPurchase",
            {"product_id": "p-100", "quantity": "1", "account_id": account, "idempotency_key": f"o-{user}"},
            user=user,
        )
        assert transfer.status == 200 and order.status == 200, (transfer, order)
        ids[f"{user}:transfer"] = transfer.body["transfer_id"]
        ids[f"{user}:order"] = order.body["order_id"]
    return ids
