"""`centli serve`, `invoke`, `sweep` and `reset` as a user runs them: clear one-line errors, never a traceback."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from tests.integration.local_runtime import REPO, centli, sqlite_env

pytestmark = pytest.mark.integration


def refused(result: subprocess.CompletedProcess[str], command: str, *fragments: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(f"centli {command}:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[-1], result.stderr


def test_serve_refuses_a_bad_environment_in_one_line(tmp_path: Path) -> None:
    result = centli("serve", "--port", "0", env={"CENTLI_BACKEND": "oracle"})
    refused(result, "serve", "bad configuration", "CENTLI_BACKEND")
    assert len(result.stderr.strip().splitlines()) == 1
    result = centli("serve", "--port", "0", env={"CENTLI_BACKEND": "dynamodb", "CENTLI_CURSOR_SECRET": ""})
    refused(result, "serve", "CENTLI_CURSOR_SECRET is required")
    result = centli("serve", "--port", "0", env=sqlite_env(tmp_path / "db", CENTLI_LIMIT_DAILY="lots"))
    refused(result, "serve", "CENTLI_LIMIT_DAILY")


def test_serve_refuses_a_taken_or_bad_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = centli("serve", "--port", str(port), env=sqlite_env(tmp_path / "c.db"))
    refused(result, "serve", "already in use", str(port))
    for bad in ("70000", "http", "-1"):
        result = centli("serve", "--port", bad, env=sqlite_env(tmp_path / "c.db"))
        refused(result, "serve", "not a TCP port")
    refused(centli("serve", "--host", "0.0.0.0", env=sqlite_env(tmp_path / "c.db")), "serve", "loopback")


def test_invoke_runs_an_events_file_in_process() -> None:
    result = centli(
        "invoke",
        "centli-core-banking",
        "--event",
        "events/bedrock-openapi/getBalance.json",
        env={"CENTLI_BACKEND": "memory"},
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    body = json.loads(answer["response"]["responseBody"]["application/json"]["body"])
    assert (body["account_id"], body["balance"]) == ("acc-0001", "25000.00")
    event = (REPO / "events" / "bedrock-function" / "listAccounts.json").read_text()
    result = subprocess.run(
        [*_centli_argv(), "invoke", "CoreBankingFunction", "--event", "-"],
        input=event,
        capture_output=True,
        text=True,
        env=_env({"CENTLI_BACKEND": "memory"}),
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0 and '"functionResponse"' in result.stdout


def test_invoke_errors_are_one_line(tmp_path: Path) -> None:
    memory = {"CENTLI_BACKEND": "memory"}
    event = "events/bedrock-openapi/getBalance.json"
    refused(
        centli("invoke", "centli-nope", "--event", event, env=memory), "invoke", "no function", "centli-core-banking"
    )
    refused(
        centli("invoke", "centli-core-banking", "--event", str(tmp_path / "missing.json"), env=memory),
        "invoke",
        "missing.json",
    )
    (tmp_path / "broken.json").write_text("{not json")
    refused(
        centli("invoke", "centli-core-banking", "--event", str(tmp_path / "broken.json"), env=memory),
        "invoke",
        "not JSON",
    )
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    result = centli("invoke", "centli-core-banking", "--event", event, "--url", f"http://127.0.0.1:{port}")
    refused(result, "invoke", "cannot reach")


def test_sweep_with_stuck_after_is_refused_on_dynamodb_unless_forced() -> None:
    env = {"CENTLI_BACKEND": "dynamodb", "CENTLI_CURSOR_SECRET": "a-long-enough-cursor-secret"}
    refused(centli("sweep", "--stuck-after", "0", env=env), "sweep", "--force")


def test_reset_deletes_the_local_bank_only_when_asked(tmp_path: Path) -> None:
    db = tmp_path / "bank" / "centli.db"
    env = sqlite_env(db)
    assert centli("reset", env=env).stdout.startswith("nothing to reset")
    loaded = centli("load", "centli/demo/bank.json", env=env)
    assert loaded.returncode == 0, loaded.stderr
    assert db.exists()
    refused(centli("reset", env=env), "reset", "--yes")  # no terminal to ask on
    assert db.exists()
    result = centli("reset", "--yes", env=env)
    assert result.returncode == 0 and "deleted" in result.stdout
    assert not db.exists() and not Path(f"{db}-wal").exists()
    refused(centli("reset", "--yes", env={"CENTLI_BACKEND": "memory"}), "reset", "SQLite")


def _centli_argv() -> list[str]:
    import sys

    return [sys.executable, "-m", "centli.entrypoints.cli"]


def _env(extra: dict[str, str]) -> dict[str, str]:
    import os

    return {**os.environ, **extra}
