"""Cold start variants of the Lambda handler module (import, warm-up, first-call build, SnapStart priming) next to a bare boto3 handler.

The virtualenv holds only the runtime dependencies of ``centli`` (the closure of
``project.dependencies``), copied file by file from the installed
distributions, so it works offline; dev tools that change import behaviour
(pydantic-settings, werkzeug, moto...) are absent, as in a Lambda package.

Every run is a fresh interpreter. Measured, as medians of ``--runs`` runs, all
variants interleaved so they share the machine's conditions:

- ``init``: the handler module's import time (what Lambda's INIT phase does);
- ``process``: the whole interpreter run, start to exit;

for

- ``bare``: a handler module that imports boto3 and creates a DynamoDB client;
- ``centli-import``: ``centli.entrypoints.aws_lambda`` imported (the app is built lazily);
- ``centli-warmup``: imported, then one warm-up event handled;
- ``centli-build``: imported, then what the first real call builds on the DynamoDB
  backend (settings, container, store, the same DynamoDB client as ``bare``);
  no request is sent;
- ``centli-primed``: imported, SnapStart's priming hook run (``prime``: before the
  snapshot, so its time is paid when a version is published, not by a customer),
  then what the first real call builds (``+after``: what is left to do after a restore).

Usage: ``.venv/bin/python bench/cold_start.py [--runs 9] [--keep]``
"""

# ruff: noqa: S603  (subprocesses run our own interpreters with fixed arguments)
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cold_start import build_virtualenv as build_runtime_virtualenv  # bench/ is on sys.path when run

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ["boto3", "pydantic", "dependency-injector", "aws-lambda-powertools", "tzdata", "snapshot-restore-py"]
# snapshot-restore-py: not bundled (Lambda's Python runtimes provide it), copied here as the runtime has it.

BARE_HANDLER = """
import boto3
dynamodb = boto3.client("dynamodb")

def handler(event, context):
    return {}
"""

PROBE = """
import json, sys, time
started = time.perf_counter()
import {module} as handler_module
init = time.perf_counter() - started
mark = time.perf_counter()
{prime}
prime = time.perf_counter() - mark
mark = time.perf_counter()
{after}
print(json.dumps({{"init": init, "prime": prime, "after": time.perf_counter() - mark}}))
"""
PRIME = "from centli.entrypoints.snapstart import prime as prime_hook; prime_hook(handler_module.container)"

BUILD = """
app = handler_module.container.application()
assert type(handler_module.container.store()).__name__ == "DynamoStore"
"""

VARIANTS = {  # name: (module, priming code, after code)
    "bare": ("bare_handler", "", ""),
    "centli-import": ("centli.entrypoints.aws_lambda", "", ""),
    "centli-warmup": (
        "centli.entrypoints.aws_lambda",
        "",
        'assert handler_module.core_banking_handler({"source": "warmup"}, None) == {"warmed": True}',
    ),
    "centli-build": ("centli.entrypoints.aws_lambda", "", BUILD),
    "centli-primed": ("centli.entrypoints.aws_lambda", PRIME, BUILD),
}


def build_virtualenv(where: Path) -> Path:
    """The runtime-only virtualenv of bench/cold_start.py, plus the snapshot-restore module and a bare handler."""
    python, names = build_runtime_virtualenv(where, RUNTIME)
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "bare_handler.py").write_text(BARE_HANDLER, "utf-8")
    print(f"virtualenv {where}: {len(names)} runtime distributions: " + ", ".join(names))
    return python


def run_once(python: Path, variant: str, env: dict[str, str]) -> dict[str, float]:
    module, prime, after = VARIANTS[variant]
    started = time.perf_counter()
    completed = subprocess.run(
        [str(python), "-I", "-c", PROBE.format(module=module, prime=prime, after=after)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    process = time.perf_counter() - started
    figures: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return {"init": figures["init"], "prime": figures["prime"], "after": figures["after"], "process": process}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--keep", action="store_true", help="keep the virtualenv and print its path")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="centli-cold-start-"))
    try:
        python = build_virtualenv(workdir / "venv")
        env = {
            "PATH": os.environ.get("PATH", ""),
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",  # dummy credentials, never used
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # closed port: nothing leaves the machine
            "AWS_MAX_ATTEMPTS": "1",
            "CENTLI_BACKEND": "dynamodb",
            "CENTLI_CURSOR_SECRET": "bench-cursor-secret-0123456789",
        }
        for variant in VARIANTS:  # compile bytecode once, outside the measurements
            run_once(python, variant, env)
        samples: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
        for _ in range(args.runs):
            for variant in VARIANTS:
                samples[variant].append(run_once(python, variant, env))
        bare_init = statistics.median(s["init"] for s in samples["bare"])
        bare_process = statistics.median(s["process"] for s in samples["bare"])
        print(f"\nmedians of {args.runs} fresh interpreters (python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
        header = f"{'variant':<20}{'init ms':>10}{'x bare':>8}{'prime ms':>10}{'+after ms':>11}{'process ms':>12}"
        print(header + f"{'x bare':>8}")
        for variant, runs in samples.items():
            init = statistics.median(s["init"] for s in runs)
            prime = statistics.median(s["prime"] for s in runs)
            after = statistics.median(s["after"] for s in runs)
            process = statistics.median(s["process"] for s in runs)
            print(
                f"{variant:<20}{init * 1000:>10.1f}{init / bare_init:>8.2f}{prime * 1000:>10.1f}{after * 1000:>11.1f}"
                f"{process * 1000:>12.1f}{process / bare_process:>8.2f}"
            )
        if args.keep:
            print(f"\nkept: {workdir}")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
