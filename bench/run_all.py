"""``make bench``: run every benchmark in bench/ and write BENCHMARKS.md (machine, date, commit).

Each benchmark is a script that prints its BENCHMARKS.md section (markdown,
every figure a ratio measured side by side in its one run) when given
``--markdown``. Adding one is a line in :data:`BENCHMARKS`. A listed script
that is not in this checkout is reported as missing, never silently dropped.

    PYTHONPATH=. .venv/bin/python bench/run_all.py [--quick] [--output BENCHMARKS.md]
"""

# ruff: noqa: S603, S607  (subprocesses: our own interpreter and git, fixed arguments)
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: (script, arguments for a full run, arguments for --quick). A script given ``--markdown`` prints its
#: own section; any other's output is quoted as it prints it.
BENCHMARKS: tuple[tuple[str, list[str], list[str]], ...] = (
    ("cold_start.py", ["--markdown", "--runs", "21"], ["--markdown", "--runs", "5"]),
    ("warm_handler.py", ["--markdown", "--calls", "6000"], ["--markdown", "--calls", "1000"]),
    (
        "storage.py",
        ["--markdown", "--ops", "100", "--threads", "4", "--per-thread", "50"],
        ["--markdown", "--ops", "20", "--per-thread", "10"],
    ),
    ("saga.py", ["--markdown", "--purchases", "300"], ["--markdown", "--purchases", "50"]),
    # issue 9; the model's own defaults take over 12 minutes on a loaded 2-CPU box: a smaller sample
    (
        "capacity.py",
        ["--customers", "60", "--transfers", "100", "--purchases", "80"],
        ["--customers", "20", "--transfers", "30", "--purchases", "20"],
    ),
    # issue 10 (needs wrk and taskset): both servers on one CPU, wrk on the other, so neither server's
    # threads are helped or hurt by whatever else the box runs (unpinned, the trivial server's threads thrash)
    ("local_server.py", ["--rounds", "3", "--duration", "5", "--pin"], ["--duration", "2", "--pin"]),
)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.system()} {platform.release()} ({platform.machine()}), {cpu}, {os.cpu_count()} CPUs, "
        f"load average {load:.1f} at start; Python {platform.python_version()}"
    )


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    dirty = " (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else ""
    return f"{git('rev-parse', '--short', 'HEAD')}{dirty} on branch {git('rev-parse', '--abbrev-ref', 'HEAD')}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer runs: a smoke test, not figures to publish")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    started = datetime.now(UTC)
    header = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`bench/run_all.py`); do not edit by hand. Every figure is a ratio of two "
        "measurements taken side by side in one run of one script on one machine: compare ratios, not "
        "absolute times, across runs. See docs/performance.md for what each one means.",
        "",
        f"- machine: {machine()}",
        f"- date: {started.isoformat(timespec='seconds')}",
        f"- commit: {commit()}",
        f"- mode: {'quick (smoke test)' if args.quick else 'full'}",
        "",
    ]
    sections: list[str] = []
    failed = False
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for script, full, quick in BENCHMARKS:
        path = ROOT / "bench" / script
        if not path.exists():
            sections.append(f"## bench/{script}\n\nNot in this checkout yet: no figures.")
            continue
        print(f"running bench/{script} ...", file=sys.stderr, flush=True)
        began = time.perf_counter()
        arguments = quick if args.quick else full
        done = subprocess.run(
            [sys.executable, str(path), *arguments],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        took = time.perf_counter() - began
        if done.returncode != 0:
            failed = True
            sections.append(f"## bench/{script}\n\nFAILED (exit {done.returncode}):\n\n```\n{done.stderr[-3000:]}\n```")
        elif "--markdown" in arguments:
            sections.append(done.stdout.strip() + f"\n\n_(bench/{script}, {took:.0f} s)_")
        else:
            sections.append(f"## bench/{script}\n\n```\n{done.stdout.strip()}\n```\n\n_({took:.0f} s)_")
    args.output.write_text("\n".join(header) + "\n" + "\n\n".join(sections) + "\n", "utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
