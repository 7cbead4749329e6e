"""The offline commands of docs/deployment.md, run as written: build, lint, package, the local moto flow.

The blocks are read from the document itself, so a command edited there is the command tested here.
The commands that need an AWS account (``sam deploy``, ``centli agent``, the DLQ recipes) are not run.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "deployment.md"


def shell_block(heading: str) -> str:
    """The first ```sh block under the section whose heading starts with ``heading``."""
    text = DOC.read_text("utf-8")
    section = text[text.index(f"\n## {heading}") :]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, f"no sh block under {heading!r}"
    return match.group(1)


def run(script: str, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    # A shell as a developer has it: the venv on PATH, none of this test process's AWS or CENTLI settings.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CENTLI_"))}
    environment = {**inherited, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}", **(env or {})}
    completed = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert completed.returncode == 0, f"{script}\n--- stdout\n{completed.stdout}\n--- stderr\n{completed.stderr}"
    return completed.stdout + completed.stderr


def test_check_and_build_as_documented() -> None:
    """`make deploy-check` and `make lambda-package`: the bundle holds the handlers and no dev tool."""
    block = shell_block("1. Check and build (offline)")
    assert "make deploy-check" in block and "make lambda-package" in block
    run(block)
    bundle = ROOT / "build" / "lambda"
    assert (bundle / "centli" / "entrypoints" / "aws_lambda.py").is_file()
    assert (bundle / "centli" / "entrypoints" / "agentcore_interceptor.py").is_file()
    for runtime in ("boto3", "pydantic", "dependency_injector", "aws_lambda_powertools"):
        assert (bundle / runtime).is_dir(), runtime
    for dev_only in ("moto", "pytest", "cfnlint", "samtranslator", "snapshot_restore_py", "hypothesis"):
        assert not (bundle / dev_only).exists(), f"{dev_only} does not belong in the Lambda bundle"
    native = [p.name for p in bundle.rglob("_pydantic_core*.so")]
    assert native and all("aarch64" in name for name in native)  # arm64, as the template's Architectures


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_local_moto_flow_as_documented(tmp_path: Path) -> None:
    block = shell_block("Try it against a local DynamoDB endpoint (moto)")
    port = str(free_port())
    script = "trap 'kill $(jobs -p) 2>/dev/null' EXIT\n" + block.replace("5000", port)
    out = run(script, env={"TMPDIR": str(tmp_path)}, timeout=300)
    assert "created centli-accounts" in out
    assert re.search(r"loaded into dynamodb: \d+ accounts", out), out
