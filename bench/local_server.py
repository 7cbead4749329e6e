"""The local runtime over HTTP beside a trivial stdlib server, in one run: req/s, p50 and p99.

    .venv/bin/python bench/local_server.py [--duration 10] [--connections 8] [--threads 2] [--rounds 1]

Starts ``centli serve`` (SQLite, INFO logs: one JSON line per request, to a
file) and ``bench/trivial_server.py`` (stdlib ThreadingHTTPServer on SQLite,
buffered writes, no logs), each on a fresh database, then drives both with
wrk (``apt-get install wrk``: a C load generator, so the client is not the
bottleneck) for getBalance (``GET /accounts/acc-0001/balance``) and
createTransfer (``POST /transfers``, a new Idempotency-Key per request, 0.01
between two own accounts). Rounds alternate the servers; figures are medians.
The ratio column is centli / trivial for req/s.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
TRANSFER_LUA = """
local counter = 0
local prefix = ""
function setup(thread)
  thread:set("id", tostring(math.random(1, 1000000000)))
end
function init(args)
  prefix = "bench-RUN-" .. id .. "-"
end
request = function()
  counter = counter + 1
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["X-Centli-User"] = "u-ana"
  headers["Idempotency-Key"] = prefix .. counter
  return wrk.format("POST", "/transfers", headers,
    '{"from_account_id":"acc-0001","destination_id":"acc-0003","amount":"0.01"}')
end
"""


@contextmanager
def process(command: list[str], env: dict[str, str], log: Path) -> Iterator[str]:
    with log.open("wb") as sink:
        child = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = re.search(r"http://127\.0\.0\.1:\d+", log.read_text("utf-8", "replace"))
            if found:
                wait_ready(found.group(0))
                yield found.group(0)
                break
            if child.poll() is not None:
                raise RuntimeError(log.read_text("utf-8", "replace"))
            time.sleep(0.1)
        else:
            raise RuntimeError(f"{command} did not start")
    finally:
        child.terminate()
        child.wait(30)


def wait_ready(base: str) -> None:
    request = urllib.request.Request(f"{base}/accounts/acc-0001/balance", headers={"X-Centli-User": "u-ana"})
    for _ in range(100):
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                response.read()
                return
        except OSError:
            time.sleep(0.1)


def wrk(base: str, path: str, args: argparse.Namespace, script: str | None) -> tuple[float, float, float]:
    command = ["taskset", "-c", "0"] if args.pin else []
    command += ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--latency"]
    command += ["-H", "X-Centli-User: u-ana"]
    if script:  # a new key prefix per run: every transfer is new, never an idempotent replay
        lua = Path(tempfile.mkstemp(suffix=".lua")[1])
        lua.write_text(script.replace("RUN", uuid.uuid4().hex[:12]))
        command += ["-s", str(lua)]
    output = subprocess.run([*command, base + path], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non2xx or rate == 0:
        raise RuntimeError(f"{base}{path}: error answers\n{output}")
    errors = re.search(r"Socket errors: .*", output)
    if errors:  # wrk gives up on a request after 2 s: the slowest answers, counted out of p99
        print(f"note: {base}{path}: {errors.group(0)}", file=sys.stderr)
    return rate, latency(output, "50%"), latency(output, "99%")


def latency(output: str, percentile: str) -> float:
    value, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", output).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--pin",
        action="store_true",
        help="run each server on CPU 1 and wrk on CPU 0 (taskset): the same CPU for both servers, whatever else runs",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/local_server.py needs wrk (Debian: apt-get install -y wrk)")
    results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {**os.environ, "CENTLI_BACKEND": "sqlite", "CENTLI_SQLITE_PATH": str(work / "centli.db")}
        env["CENTLI_LOG_LEVEL"] = "INFO"
        pin = ["taskset", "-c", "1"] if args.pin else []
        centli = [*pin, PYTHON, "-m", "centli.entrypoints.cli", "serve", "--port", "0", "--load-demo"]
        trivial = [*pin, PYTHON, str(HERE / "trivial_server.py"), str(work / "trivial.db")]
        with process(centli, env, work / "centli.log") as centli_base, process(trivial, env, work / "t.log") as base:
            servers = {"trivial": base, "centli": centli_base}
            for _ in range(args.rounds):
                for operation, path, lua in (
                    ("getBalance", "/accounts/acc-0001/balance", None),
                    ("createTransfer", "/transfers", TRANSFER_LUA),
                ):
                    for name, url in servers.items():
                        results.setdefault((operation, name), []).append(wrk(url, path, args, lua))
            lines = sum(1 for _ in (work / "centli.log").open())
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, {args.rounds} round(s), medians"
        f"{', servers on CPU 1, wrk on CPU 0' if args.pin else ''}; "
        f"centli logged {lines} lines\n"
    )
    print(f"{'operation':<16}{'server':<9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'× trivial':>11}")
    for operation in ("getBalance", "createTransfer"):
        trivial_rate = statistics.median(r[0] for r in results[(operation, "trivial")])
        for name in ("trivial", "centli"):
            runs = results[(operation, name)]
            rate = statistics.median(r[0] for r in runs)
            p50 = statistics.median(r[1] for r in runs)
            p99 = statistics.median(r[2] for r in runs)
            print(f"{operation:<16}{name:<9}{rate:>9.0f}{p50:>9.2f}{p99:>9.2f}{rate / trivial_rate:>11.2f}")


if __name__ == "__main__":
    main()
