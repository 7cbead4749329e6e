"""The local server over real HTTP: `centli serve` in its own process on a SQLite file."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.entrypoints.conftest import example


class Server:
    def __init__(self, db: Path) -> None:
        env = {**os.environ, "CENTLI_BACKEND": "sqlite", "CENTLI_SQLITE_PATH": str(db), "PYTHONUNBUFFERED": "1"}
        # Output goes to a file: a pipe nobody reads would block the server once it filled up.
        self.log = db.with_suffix(".log")
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "centli.entrypoints.cli", "serve", "--port", "0", "--load-demo"],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        self.base = ""
        while time.monotonic() < deadline and self.process.poll() is None:
            found = re.search(r"http://(127\.0\.0\.1:\d+)", self.log.read_text("utf-8", errors="replace"))
            if found:
                self.base = f"http://{found.group(1)}"
                break
            time.sleep(0.05)
        if not self.base:
            self.process.kill()
            raise RuntimeError(f"the local server did not start: {self.log.read_text('utf-8', errors='replace')}")

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "centli.db")
    try:
        yield running
    finally:
        running.stop()


ANA = {"X-Centli-User": "u-ana"}


def balance(server: Server, account_id: str) -> str:
    status, body = server.call("GET", f"/accounts/{account_id}/balance", headers=ANA)
    assert status == 200
    return str(body["balance"])


def test_health_and_accounts_of_the_demo_bank(server: Server) -> None:
    assert server.call("GET", "/health") == (200, {"status": "ok"})
    status, body = server.call("GET", "/accounts", headers=ANA)
    assert status == 200
    assert {(a["account_id"], a["balance"], a["currency"]) for a in body["accounts"]} == {
        ("acc-0001", "25000.00", "MXN"),
        ("acc-0003", "1000.00", "MXN"),
    }


def test_transfer_is_exact_and_happens_once_per_idempotency_key(server: Server) -> None:
    headers = {**ANA, "Idempotency-Key": "local-1", "Content-Type": "application/json"}
    # A JSON number with decimals must stay exact (never a float on the way in).
    payload = b'{"from_account_id": "acc-0001", "destination_id": "ben-mama", "amount": 500.10}'
    first = server.call("POST", "/transfers", payload, headers)
    again = server.call("POST", "/transfers", payload, headers)
    assert first[0] == again[0] == 200
    assert first[1]["transfer_id"] == again[1]["transfer_id"]
    assert (first[1]["replayed"], again[1]["replayed"]) == (False, True)
    assert first[1]["amount"] == "500.10"
    assert balance(server, "acc-0001") == "24499.90"
    different = dict(json.loads(payload), amount="20.00")
    status, body = server.call("POST", "/transfers", different, headers)
    assert (status, body["error"]["code"]) == (409, "IDEMPOTENCY_CONFLICT")


def test_purchase_is_settled_by_the_saga(server: Server) -> None:
    headers = {**ANA, "Idempotency-Key": "local-buy-1"}
    status, order = server.call(
        "POST", "/purchases", {"product_id": "p-100", "quantity": 2, "account_id": "acc-0001"}, headers
    )
    assert (status, order["status"], order["total"]) == (200, "PENDING", "998.00")
    status, settled = server.call("GET", f"/orders/{order['order_id']}", headers=ANA)
    assert (status, settled["status"]) == (200, "CONFIRMED")
    assert balance(server, "acc-0001") == "24002.00"
    status, product = server.call("GET", "/products/p-100", headers=ANA)
    assert product["available"] == 8


def test_agent_events_are_answered_like_lambda(server: Server) -> None:
    event = example("bedrock-openapi-getBalance.json")
    status, response = server.call("POST", "/agent/core-banking", event)
    assert status == 200
    assert response["response"]["httpStatusCode"] == 200
    body = json.loads(response["response"]["responseBody"]["application/json"]["body"])
    assert (body["account_id"], body["balance"]) == ("acc-0001", "25000.00")
    gateway = example("agentcore-gateway-getBalance.json")
    status, refused = server.call("POST", "/agent/core-banking", gateway)
    assert refused["error"]["code"] == "UNAUTHENTICATED"


def test_each_request_line_carries_the_calls_correlation_id(server: Server) -> None:
    server.call("GET", "/accounts/acc-0001/balance", headers=ANA)
    for event in (example("bedrock-openapi-getBalance.json"), example("agentcore-gateway-getBalance.json")):
        server.call("POST", "/agent/core-banking", event)
    deadline = time.monotonic() + 10
    while True:
        lines = [json.loads(x) for x in server.log.read_text("utf-8").splitlines() if x.startswith("{")]
        requests = [r for r in lines if r.get("message") == "http request"]
        if len(requests) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    calls = [r for r in lines if r.get("message") in ("operation finished", "operation refused")]
    assert len(requests) == len(calls) == 3
    # One id per call, and the request line names the same one as the call's own lines.
    assert [r["correlation_id"] for r in requests] == [c["correlation_id"] for c in calls]
    assert requests[2]["correlation_id"] == "req-123"  # the gateway's request id in the AgentCore example


def test_identity_and_bad_requests(server: Server) -> None:
    status, body = server.call("GET", "/accounts")
    assert (status, body["error"]["code"]) == (401, "UNAUTHENTICATED")
    assert "X-Centli-User" in body["error"]["message"]  # where the local server expects the identity
    status, body = server.call("GET", "/accounts/acc-0002/balance", headers=ANA)  # Luis's account
    assert status == 404
    status, body = server.call("POST", "/transfers", b"{not json", ANA)
    assert (status, body["error"]["code"]) == (400, "INVALID_INPUT")
    status, body = server.call("GET", "/nowhere", headers=ANA)
    assert status == 404
    status, body = server.call("POST", "/transfers", b"{}", {**ANA, "Content-Length": "-1"})
    assert (status, body["error"]["code"]) == (400, "INVALID_INPUT")
    # A page on another site that rebinds its name to 127.0.0.1 still sends its own Host.
    status, body = server.call("GET", "/accounts", headers={**ANA, "Host": "attacker.example:8080"})
    assert (status, body["error"]["code"]) == (400, "INVALID_INPUT")


def test_the_server_refuses_to_listen_beyond_loopback() -> None:
    from centli.entrypoints.local_server import make_server

    for host in ("0.0.0.0", "192.0.2.10"):
        with pytest.raises(ValueError, match="loopback"):
            make_server(host, 0)
    make_server("127.0.0.1", 0).server_close()


def test_state_survives_a_restart_and_the_demo_load_is_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "centli.db"
    first = Server(db)
    try:
        status, _ = first.call(
            "POST",
            "/transfers",
            {"from_account_id": "acc-0001", "destination_id": "acc-0003", "amount": "100.00"},
            {**ANA, "Idempotency-Key": "restart-1"},
        )
        assert status == 200
    finally:
        first.stop()
    second = Server(db)
    try:
        assert balance(second, "acc-0001") == "24900.00"
        assert balance(second, "acc-0003") == "1100.00"
    finally:
        second.stop()
