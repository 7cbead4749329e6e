"""`centli mcp --user u-ana` in its own process over stdio, driven by the official MCP client.

Both protocol eras the SDK speaks: ``legacy`` (the initialize handshake, 2025-11-25: the server asks
over the back channel mid-call) and ``auto`` (2026-07-28: the question rides an input_required result).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.integration.mcp_support import (
    ERAS,
    Human,
    check_confirmed_purchase,
    check_confirmed_writes,
    check_listing_and_reads,
    check_refusals,
    check_refused_without_elicitation,
    transfer,
)

pytestmark = pytest.mark.integration


def server_parameters(db: Path, *, level: str = "INFO") -> StdioServerParameters:
    env = {
        "CENTLI_BACKEND": "sqlite",
        "CENTLI_SQLITE_PATH": str(db),
        "CENTLI_LOG_LEVEL": level,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    args = ["-m", "centli.entrypoints.cli", "mcp", "--user", "u-ana", "--load-demo"]
    return StdioServerParameters(command=sys.executable, args=args, env=env)


@asynccontextmanager
async def connected(db: Path, mode: str, human: Human | None) -> AsyncIterator[Client]:
    with db.with_suffix(".stderr").open("w") as errlog:
        transport = stdio_client(server_parameters(db), errlog=errlog)
        async with Client(transport, mode=mode, elicitation_callback=human) as client:
            assert client.protocol_version == ERAS[mode]
            yield client


def test_tools_listed_with_schemas_and_annotations_and_every_read_answers(tmp_path: Path) -> None:
    async def scenario() -> None:
        human = Human()
        async with connected(tmp_path / "bank.db", "auto", human) as client:
            await check_listing_and_reads(client)
            await check_refusals(client, human)

    anyio.run(scenario)


@pytest.mark.parametrize("mode", list(ERAS))
def test_writes_commit_once_when_the_human_accepts_and_never_otherwise(tmp_path: Path, mode: str) -> None:
    async def scenario() -> None:
        human = Human()
        async with connected(tmp_path / "bank.db", mode, human) as client:
            await check_confirmed_writes(client, human)
            await check_confirmed_purchase(client, human)

    anyio.run(scenario)


@pytest.mark.parametrize("mode", list(ERAS))
def test_a_client_without_elicitation_is_refused_and_nothing_moves(tmp_path: Path, mode: str) -> None:
    async def scenario() -> None:
        async with connected(tmp_path / "bank.db", mode, None) as client:
            await check_refused_without_elicitation(client)

    anyio.run(scenario)


def test_stdout_carries_only_protocol_messages_even_at_debug(tmp_path: Path) -> None:
    """Raw JSON-RPC over the pipes: every stdout line is a protocol message; the logs went to stderr."""
    params = server_parameters(tmp_path / "bank.db", level="DEBUG")
    write = transfer()
    messages: list[dict[str, Any]] = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "raw-test", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "listAccounts", "arguments": {}}},
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "createTransfer", "arguments": write}},
        {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "getBalance", "arguments": {}}},
    ]
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [params.command, *params.args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env={**os.environ, **(params.env or {})},
        )
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write("".join(json.dumps(message) + "\n" for message in messages).encode())
        process.stdin.flush()
        raw_lines: list[bytes] = []
        watchdog = threading.Timer(60, process.kill)  # a hung server fails the test instead of hanging it
        watchdog.start()
        try:
            while len([line for line in raw_lines if b'"id"' in line]) < 5:
                line = process.stdout.readline()
                if not line:
                    break
                raw_lines.append(line)
        finally:
            process.stdin.close()
            raw_lines.extend(process.stdout.read().splitlines(keepends=True))
            process.wait(timeout=30)
            watchdog.cancel()
    lines = [line.decode() for line in raw_lines if line.strip()]
    answers = [json.loads(line) for line in lines]  # a log line here would not even parse
    assert all(answer.get("jsonrpc") == "2.0" for answer in answers)
    assert sorted(answer["id"] for answer in answers if "id" in answer) == [1, 2, 3, 4, 5]
    by_id = {answer["id"]: answer for answer in answers if "id" in answer}
    assert by_id[3]["result"]["structuredContent"]["accounts"][0]["account_id"] == "acc-0001"
    assert by_id[4]["result"]["isError"] is True
    assert by_id[4]["result"]["structuredContent"]["error"]["code"] == "CONFIRMATION_UNAVAILABLE"
    logs = [json.loads(line) for line in stderr_path.read_text("utf-8").splitlines() if line.startswith("{")]
    assert any(line.get("message") == "mcp server starting" for line in logs)  # logged before the SDK owns fd 1
    assert any(line.get("message") == "operation finished" for line in logs)
    assert any(line.get("code") == "CONFIRMATION_UNAVAILABLE" for line in logs)
    for private in ("acc-0001", "150.25", "25000", "Nómina", "Mamá", "Renta", "u-ana"):  # no customer data, at DEBUG
        assert private not in stderr_path.read_text("utf-8"), private
