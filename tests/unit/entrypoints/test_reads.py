"""The first reads answered without the wire models (centli.entrypoints.reads) answer exactly as the wire models do.

Every input is sent twice through the same handler: once as it runs, and once
with the direct path switched off, so the wire models (pydantic) decide. The
two answers must be the same bytes, errors included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from centli.entrypoints import pipeline
from centli.entrypoints.operations import BY_ID
from centli.entrypoints.reads import READS, plan
from tests.unit.entrypoints.conftest import Harness

#: Parameter sets for each direct read: canonical ones (taken directly) and every kind of odd one.
CASES: dict[str, list[dict[str, Any]]] = {
    "getBalance": [
        {"account_id": "acc-0001"},  # Ana's
        {"account_id": "acc-0003"},  # Ana's second account
        {"account_id": "acc-0002"},  # Luis's: 404, as a missing one
        {"account_id": "acc-9999"},
        {"account_id": "x" * 64},
        {"account_id": "x" * 65},
        {"account_id": ""},
        {"account_id": "   "},
        {"account_id": " acc-0001 "},
        {"account_id": "acc 0001"},
        {"account_id": "acc-0001\n"},
        {"account_id": "ácc-0001"},
        {"account_id": 1},
        {"account_id": None},
        {},
        {"accountId": "acc-0001"},
        {"account_id": "acc-0001", "limit": "5"},
        {"account_id": "acc-0001", "user_id": "u-ana"},  # naming the caller is dropped
        {"account_id": "acc-0001", "user_id": "u-luis"},  # naming another customer is refused
    ],
    "listAccounts": [{}, {"limit": "5"}, {"user_id": "u-ana"}, {"customer": "u-luis"}],
}
#: The canonical ones (the domain still answers 404 for another customer's or a missing account).
DIRECT = {("getBalance", account) for account in ("acc-0001", "acc-0003", "acc-0002", "acc-9999", "x" * 64)}


def _both(harness: Harness, monkeypatch: pytest.MonkeyPatch, fmt: str, operation: str, params: dict[str, Any]) -> Any:
    direct = harness.call(fmt, operation, params)
    with monkeypatch.context() as patched:
        patched.setattr(pipeline, "plan_read", lambda *_: None)
        modelled = harness.call(fmt, operation, params)
    return direct, modelled


@pytest.mark.parametrize("fmt", ["openapi", "function"])
@pytest.mark.parametrize(
    ("operation", "params"), [(op, params) for op, cases in CASES.items() for params in cases], ids=repr
)
def test_a_direct_read_answers_exactly_as_the_wire_models(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, fmt: str, operation: str, params: dict[str, Any]
) -> None:
    direct, modelled = _both(harness, monkeypatch, fmt, operation, params)
    assert json.dumps(direct.raw) == json.dumps(modelled.raw)  # same bytes: fields, order, status, errors


def test_only_canonical_parameters_take_the_direct_path() -> None:
    taken = {
        (op, str(params.get("account_id", "")))
        for op, cases in CASES.items()
        for params in cases
        if plan(op, params) is not None
    }
    assert taken == DIRECT | {("listAccounts", "")}
    assert plan("listTransactions", {"account_id": "acc-0001"}) is None  # not a direct read


def test_the_direct_reads_declare_their_wire_models_parameters_and_never_page() -> None:
    for operation_id, read in READS.items():
        op = BY_ID[operation_id]
        fields = op.request.model_fields
        assert [name for name, _ in read.parameters] == list(fields)
        assert all(field.is_required() for field in fields.values())
        assert not op.write and not op.paged


def test_a_fresh_process_answers_get_balance_without_pydantic_and_still_writes() -> None:
    """The cold path: no pydantic until a call needs the wire models (here a write, which then works)."""
    script = """
import json, sys
from centli.entrypoints.aws_lambda import core_banking_handler
def event(method, path, parameters, body=None):
    found = {
        "messageVersion": "1.0", "agent": {"name": "a", "id": "A", "alias": "x", "version": "1"},
        "inputText": "saldo", "sessionId": "s-1", "actionGroup": "core-banking", "apiPath": path,
        "httpMethod": method, "parameters": [{"name": k, "type": "string", "value": v} for k, v in parameters.items()],
        "sessionAttributes": {"user_id": "u-ana"}, "promptSessionAttributes": {},
    }
    if body:
        properties = [{"name": k, "type": "string", "value": v} for k, v in body.items()]
        found["requestBody"] = {"content": {"application/json": {"properties": properties}}}
    return found
balance = core_banking_handler(event("GET", "/accounts/{account_id}/balance", {"account_id": "acc-0001"}), None)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {"pydantic", "boto3", "yaml"})
body = {"from_account_id": "acc-0001", "destination_id": "acc-0003", "amount": "1.00", "idempotency_key": "k-1"}
transfer = core_banking_handler(event("POST", "/transfers", {}, body), None)
print(json.dumps([balance["response"]["httpStatusCode"], loaded, transfer["response"]["httpStatusCode"]]))
"""
    env = {**os.environ, "CENTLI_BACKEND": "memory", "CENTLI_LOG_LEVEL": "ERROR"}
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=root, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [200, [], 200]
