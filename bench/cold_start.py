"""Cold start: a fresh process to the first answered getBalance, next to a bare boto3 process doing the same GetItem.

Both run in a runtime-only virtualenv: the closure of ``project.dependencies``
(no dev tools; pydantic-settings or werkzeug would change what
dependency-injector imports), copied file by file from the locked install,
so the versions are requirements.lock's, built for this machine, as
``make lambda-package`` bundles them for Lambda's. Both talk to the same
local moto server (started here, tables created and the demo bank loaded),
with the same environment.

- ``bare``: ``import boto3``, a DynamoDB client, one consistent GetItem of the account;
- ``bare-botocore``: the same on a botocore session (shown beside it: the adapters build clients this way);
- ``centli``: ``import centli.entrypoints.aws_lambda`` and one OpenAPI-style getBalance event through
  ``core_banking_handler`` (settings, container, store, client, the GetItem, the rendered answer and its
  INFO log line);
- ``centli-import``: the handler module imported only (what Lambda's INIT phase does).

Every run is a fresh interpreter; variants are interleaved so they share the
machine's conditions; medians of ``--runs``. The figure is the ratio of whole
process times (start to exit).

    PYTHONPATH=. .venv/bin/python bench/cold_start.py [--runs 15] [--markdown] [--importtime]
"""

# ruff: noqa: S603  (subprocesses run our own interpreters with fixed arguments)
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RUNTIME = ["boto3", "pydantic", "dependency-injector", "aws-lambda-powertools", "tzdata"]
PREFIX = "cold-"
TARGET = 1.3

BARE = """
import boto3
client = boto3.client("dynamodb")
found = client.get_item(
    TableName="{table}", Key={{"user_id": {{"S": "u-ana"}}, "account_id": {{"S": "acc-0001"}}}}, ConsistentRead=True
)
assert found["Item"]["balance"]["N"]
"""

#: The same GetItem on botocore alone (what ``boto3.client`` builds, without boto3's own import): the adapters
#: build their clients this way, so this row shows how much of the margin that choice is.
BARE_BOTOCORE = """
import botocore.session
client = botocore.session.get_session().create_client("dynamodb")
found = client.get_item(
    TableName="{table}", Key={{"user_id": {{"S": "u-ana"}}, "account_id": {{"S": "acc-0001"}}}}, ConsistentRead=True
)
assert found["Item"]["balance"]["N"]
"""

CENTLI = """
from centli.entrypoints.aws_lambda import core_banking_handler
event = {{
    "messageVersion": "1.0", "agent": {{"name": "a", "id": "A", "alias": "x", "version": "1"}},
    "inputText": "saldo", "sessionId": "s-1", "actionGroup": "core-banking",
    "apiPath": "/accounts/{{account_id}}/balance", "httpMethod": "GET",
    "parameters": [{{"name": "account_id", "type": "string", "value": "acc-0001"}}],
    "sessionAttributes": {{"user_id": "u-ana"}}, "promptSessionAttributes": {{}},
}}
class Context:  # what Lambda passes: a request id (no client context outside AgentCore)
    aws_request_id = "c0ffee00-0000-4000-8000-000000000001"
    client_context = None
answer = core_banking_handler(event, Context())
assert answer["response"]["httpStatusCode"] == 200, answer
"""

IMPORT_ONLY = "import centli.entrypoints.aws_lambda\n"


def runtime_closure(names: list[str]) -> list[metadata.Distribution]:
    """The installed distributions ``names`` need at run time (no extras), each once."""
    seen: dict[str, metadata.Distribution] = {}
    queue = list(names)
    while queue:
        name = queue.pop()
        dist = metadata.distribution(name)
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in seen:
            continue
        seen[key] = dist
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                queue.append(requirement.name)
    return sorted(seen.values(), key=lambda d: d.metadata["Name"].lower())


def build_virtualenv(where: Path, runtime: list[str] = RUNTIME) -> tuple[Path, list[str]]:
    """A virtualenv holding only ``runtime``'s closure and the package, as the Lambda bundle does."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    dists = runtime_closure(runtime)
    for dist in dists:
        for file in dist.files or []:
            if file.parts[0] == ".." or "__pycache__" in file.parts:
                continue
            source = Path(str(dist.locate_file(file)))
            if source.is_file():
                target = site / file
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
    shutil.copytree(ROOT / "centli", site / "centli", ignore=shutil.ignore_patterns("__pycache__"))
    names = [f"{d.metadata['Name']} {d.version}" for d in dists]
    return python, names


def start_bank() -> tuple[str, dict[str, str]]:
    """A moto server with the tables and the demo bank; returns its URL and the tables' environment."""
    from centli.adapters.dynamodb import DynamoStore, TableNames, make_dynamodb_client
    from centli.adapters.dynamodb.schema import create_tables
    from centli.domain.loading import parse_bank_document
    from centli.entrypoints.demo import demo_bank
    from tests.integration.moto_server import moto_endpoint

    url = moto_endpoint()
    client = make_dynamodb_client(url)
    names = TableNames().with_prefix(PREFIX)
    create_tables(client, names, wait=False)
    DynamoStore(client, names).load(parse_bank_document(demo_bank(), datetime.now(UTC)))
    return url, {f"CENTLI_TABLE_{field.upper()}": name for field, name in names.items()}


def run_once(python: Path, code: str, env: dict[str, str], importtime: bool = False) -> tuple[float, float, str]:
    """One fresh interpreter: (wall seconds, CPU seconds of the child (user + system), its stderr)."""
    flags = ["-X", "importtime"] if importtime else []
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen([str(python), "-I", *flags, "-c", code], stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read()
        if child.returncode != 0:
            raise RuntimeError(f"probe failed ({child.returncode}): {stderr[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, stderr


def importtime_self(stderr: str) -> dict[str, float]:
    """Self import time (ms) per top-level package (``centli`` per subpackage), from ``-X importtime``."""
    totals: dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line.split(":", 1)[1].split("|")
        parts = name.strip().split(".")
        top = ".".join(parts[:2]) if parts[0] == "centli" else parts[0]
        totals[top] = totals.get(top, 0.0) + int(self_us) / 1000
    return totals


def importtime_table(python: Path, variants: dict[str, str], env: dict[str, str], runs: int = 5) -> list[str]:
    """Median self import time per package of the centli and bare processes (``runs`` runs each), largest first.

    ``-X importtime`` slows imports down and the machine is noisy: read it for where the time goes, not for
    the ratio (the CPU times above are that).
    """
    samples: dict[str, list[dict[str, float]]] = {"centli": [], "bare": []}
    for _ in range(runs):
        for name, found in samples.items():
            found.append(importtime_self(run_once(python, variants[name], env, importtime=True)[2]))
    packages = {p for runs_of in samples.values() for run in runs_of for p in run}
    median = {
        name: {p: statistics.median(run.get(p, 0.0) for run in runs_of) for p in packages}
        for name, runs_of in samples.items()
    }
    rows = sorted(packages, key=lambda p: -median["centli"][p])
    lines = [f"{'package':<28}{'centli ms':>10}{'bare ms':>10}"]
    lines += [
        f"{p:<28}{median['centli'][p]:>10.1f}{median['bare'][p]:>10.1f}" for p in rows if median["centli"][p] >= 1
    ]
    totals = {name: sum(median[name].values()) for name in median}
    lines.append(f"{'(all, sum of medians)':<28}{totals['centli']:>10.1f}{totals['bare']:>10.1f}")
    return lines


def measure(runs: int, importtime: bool) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="centli-cold-start-"))
    try:
        python, dists = build_virtualenv(workdir / "venv")
        url, tables = start_bank()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",  # dummy credentials for the local server
            "AWS_ENDPOINT_URL": url,
            "CENTLI_BACKEND": "dynamodb",
            "CENTLI_CURSOR_SECRET": "bench-cursor-secret-0123456789",
            "CENTLI_LOG_LEVEL": "INFO",
            **tables,
        }
        variants = {
            "bare": BARE.format(table=tables["CENTLI_TABLE_ACCOUNTS"]),
            "bare-botocore": BARE_BOTOCORE.format(table=tables["CENTLI_TABLE_ACCOUNTS"]),
            "centli": CENTLI.format(),
            "centli-import": IMPORT_ONLY,
        }
        for code in variants.values():  # bytecode compiled once, outside the measurements
            run_once(python, code, env)
        walls: dict[str, list[float]] = {name: [] for name in variants}
        cpus: dict[str, list[float]] = {name: [] for name in variants}
        load = os.getloadavg()[0]
        for _ in range(runs):
            for name, code in variants.items():
                wall, cpu, _ = run_once(python, code, env)
                walls[name].append(wall)
                cpus[name].append(cpu)
        top = importtime_table(python, variants, env) if importtime else []
        return {
            "wall": {name: statistics.median(values) for name, values in walls.items()},
            "cpu": {name: statistics.median(values) for name, values in cpus.items()},
            # each round's own ratio (the variants of one round ran back to back): how much the figure moves
            "rounds": sorted(c / b for c, b in zip(cpus["centli"], cpus["bare"], strict=True)),
            "runs": runs,
            "dists": dists,
            "importtime": top,
            "load": (load + os.getloadavg()[0]) / 2,
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def markdown(result: dict[str, Any]) -> str:
    wall, cpu = result["wall"], result["cpu"]
    ratio_cpu = cpu["centli"] / cpu["bare"]
    ratio_wall = wall["centli"] / wall["bare"]
    lines = [
        "## Cold start (DynamoDB backend, runtime-only environment)",
        "",
        "A fresh process to the first answered getBalance, against a bare boto3 process making the same "
        f"consistent GetItem; both on the same local moto server; medians of {result['runs']} interleaved runs "
        f"(`bench/cold_start.py`). Environment: {', '.join(result['dists'])}.",
        "",
        "| process | CPU time × bare | wall time × bare |",
        "|---|---|---|",
        "| bare boto3: import, client, GetItem | 1.00 | 1.00 |",
        f"| centli: import the handler module, then one getBalance event answered | **{ratio_cpu:.2f}** | "
        f"{ratio_wall:.2f} |",
        f"| centli: import the handler module only (Lambda's INIT) | {cpu['centli-import'] / cpu['bare']:.2f} | "
        f"{wall['centli-import'] / wall['bare']:.2f} |",
        f"| bare botocore: the same GetItem without importing boto3 | {cpu['bare-botocore'] / cpu['bare']:.2f} | "
        f"{wall['bare-botocore'] / wall['bare']:.2f} |",
        "",
        "The adapters build their clients on a botocore session (what `boto3.client` returns, without boto3's "
        "resource and transfer layers): against that bare botocore process, the first getBalance is "
        f"{cpu['centli'] / cpu['bare-botocore']:.2f}× (CPU) — the cost of the container, the domain, the logger "
        "and the handler themselves.",
        "",
        "CPU time is the child's user + system time: the work a cold start does, which is what a Lambda's "
        "dedicated vCPU spends. Wall time also counts waiting for a CPU on this shared machine (load average "
        f"{result['load']:.1f} during the run on {os.cpu_count()} CPUs) and the moto server's own time, so it "
        "is shown beside it, not used for the target.",
        "",
        f"Target ≤ {TARGET}× (CPU time): **{'met' if ratio_cpu <= TARGET else 'NOT met'}** ({ratio_cpu:.2f}×; "
        f"wall time {ratio_wall:.2f}×). The rounds' own CPU ratios (centli ÷ bare, run back to back) span "
        f"{_spread(result['rounds'])}.",
    ]
    return "\n".join(lines)


def _spread(ratios: list[float]) -> str:
    """Quartiles and extremes of sorted ratios."""
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    return f"{ratios[0]:.2f}–{ratios[-1]:.2f} (quartiles {quartiles[0]:.2f}, {quartiles[1]:.2f}, {quartiles[2]:.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--markdown", action="store_true", help="print the BENCHMARKS.md section")
    parser.add_argument("--importtime", action="store_true", help="also print where centli's import time goes")
    args = parser.parse_args()
    result = measure(args.runs, args.importtime)
    print(markdown(result))
    if args.importtime:
        print("\nself import time by package, medians of 5 runs each (-X importtime):", file=sys.stderr)
        for line in result["importtime"]:  # type: ignore[attr-defined]
            print(f"  {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
