"""Machine instructions per request of the local runtime's ASGI app, in-process: a figure load does not move.

    .venv/bin/python bench/app_instructions.py [--path /accounts/acc-0001/balance] [--compare DIR ...]

Runs the app that ``centli serve`` serves (SQLite, the demo bank, INFO logs to
/dev/null) under valgrind's callgrind twice, answering 100 and then 500
requests called straight into the ASGI app (no uvicorn, no sockets), and
prints (instructions of the second - the first) / 400: what one request costs
our code, start-up excluded. Unlike req/s on a shared machine, the count is
the same from run to run (to within a fraction of a percent), so it shows what a
change saves; the HTTP benchmark (bench/local_server.py) says what that is worth
beside the trivial server. ``--compare DIR`` counts another source tree too
(say ``git archive main`` unpacked in DIR). Needs valgrind (``apt-get install
valgrind``); each count takes about a minute.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: The child: build the app as `centli serve` does and call it ``n`` times.
CHILD = r"""
import asyncio, logging, os, sys, tempfile
source, n, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sys.path.insert(0, source)
work = tempfile.mkdtemp()
os.environ.update(CENTLI_BACKEND="sqlite", CENTLI_SQLITE_PATH=f"{work}/centli.db", CENTLI_LOG_LEVEL="INFO")
from centli.domain.loading import parse_bank_document
from centli.entrypoints import runtime
from centli.entrypoints.demo import demo_bank
from centli.entrypoints.local_app import LocalSite, create_app
runtime.container.store().load(parse_bank_document(demo_bank(), runtime.container.clock().now()), None)
logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False  # as centli serve
logging._srcfile = None
sys.stdout = open(os.devnull, "w")
app = create_app(site=LocalSite("127.0.0.1", 8080), sweep_interval=0, relay_interval=0)
runtime.container.application()
headers = [(b"host", b"127.0.0.1:8080"), (b"user-agent", b"wrk"), (b"x-centli-user", b"u-ana")]
scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "http", "method": "GET",
         "server": ("127.0.0.1", 8080), "client": ("127.0.0.1", 50000), "root_path": "", "path": path,
         "raw_path": path.encode(), "query_string": b"", "headers": headers}
answers = []
async def receive(): return {"type": "http.request", "body": b"", "more_body": False}
async def send(message): answers.append(message)
async def main():
    for _ in range(n):
        await app({**scope, "state": {}}, receive, send)
asyncio.run(main())
assert answers[0]["status"] == 200, answers[:2]
"""


def instructions(source: Path, requests: int, path: str) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    command += [sys.executable, "-c", CHILD, str(source), str(requests), path]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stderr
    return int(re.search(r"Collected : (\d+)", output).group(1))  # type: ignore[union-attr]


def per_request(source: Path, path: str) -> int:
    return (instructions(source, 500, path) - instructions(source, 100, path)) // 400


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--path", default="/accounts/acc-0001/balance", help="a GET path of the REST mirror")
    parser.add_argument("--compare", metavar="DIR", action="append", default=[], help="another source tree")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("bench/app_instructions.py needs valgrind (Debian: apt-get install -y valgrind)")
    sources = {"centli": HERE.parent, **{f"compare {d}": Path(d).resolve() for d in args.compare}}
    counts = {name: per_request(source, args.path) for name, source in sources.items()}
    first = counts["centli"]
    print(f"GET {args.path}, in-process ASGI app, instructions per request (callgrind)")
    for name, count in counts.items():
        print(f"{name:<40}{count:>10,}{count / first:>8.2f}x")


if __name__ == "__main__":
    main()
