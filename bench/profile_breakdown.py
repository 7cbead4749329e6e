"""Where the local runtime's time goes: py-spy samples of `centli serve` grouped by layer.

    .venv/bin/centli serve --port 8731 &                      # the server under test
    wrk -t2 -c8 -d12s -H 'X-Centli-User: u-ana' http://127.0.0.1:8731/accounts/acc-0001/balance &
    py-spy record -p <pid of centli serve> -d 8 -r 200 -f raw -o samples.txt
    python bench/profile_breakdown.py samples.txt

py-spy (``pip install py-spy``) samples without slowing the server the way
cProfile does. Each sample of the event-loop thread is charged to the
innermost frame that belongs to one of the layers below.
"""

import collections
import sys
# Each sample goes to the innermost frame from one of these places (first match from the leaf up).
# Whole subtrees: a sample anywhere below one of these frames is charged to it.
SUBTREES = [
    ("the log line (Powertools Logger: record, JSON formatting)", ("aws_lambda_powertools/logging", "logging/__init__.py")),
    ("SQLite read (pool, unit of work, sqlite3)", ("adapters/sqlite",)),
    ("send of the answer (system call)", ("_flush (centli/entrypoints/local_server.py",)),
]
# Otherwise the innermost frame of one of these layers (json encoding counts for its caller).
LAYERS = [
    ("domain rules (banking, money, policy)", ("centli/domain",)),
    ("pydantic validation and serialisation", ("pydantic",)),
    ("operation table (execute, fit, body size)", ("entrypoints/operations.py", "entrypoints/pipeline.py", "entrypoints/wire.py")),
    ("runtime.run (log keys, settle check)", ("entrypoints/runtime.py", "entrypoints/logs.py")),
    ("local app (Guard, endpoint, response)", ("entrypoints/local_app.py",)),
    ("Starlette (middleware, routing, Request)", ("starlette/",)),
    ("uvicorn HTTP protocol (httptools)", ("uvicorn/", "local_server.py")),
    ("event loop and recv (uvloop, asyncio)", ("asyncio", "uvloop", "<module>")),
]
total = other = 0
counts: collections.Counter[str] = collections.Counter()
for line in open(sys.argv[1]):
    stack, _, n = line.rstrip().rpartition(" ")
    frames = stack.split(";")
    if frames[0].startswith("Thread._bootstrap"):  # (a stack py-spy could not read whole starts elsewhere)
        other += int(n)  # the log writer, relay, sweeper and thread pool: mostly waiting
        continue
    total += int(n)
    label = next((name for name, pats in SUBTREES if any(p in f for f in frames for p in pats)), None)
    if label is None:
        label = next(
            (name for f in reversed(frames) for name, pats in LAYERS if any(p in f for p in pats)), "other"
        )
    counts[label] += int(n)
for label, n in counts.most_common():
    print(f"| {label} | {100 * n / total:.0f}% |")
print(f"event-loop thread samples {total} (shares above); other threads {other}")
