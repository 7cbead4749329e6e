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
CATS = [
    ("log line: Powertools Logger (format, JSON)", ("aws_lambda_powertools/logging", "logging/__init__.py")),
    ("SQLite read (store, sqlite3)", ("adapters/sqlite",)),
    ("domain rules (banking, money, policy)", ("centli/domain",)),
    ("pydantic validation and serialisation", ("pydantic",)),
    ("operation table (execute, fit, JSON size)", ("entrypoints/operations.py", "json/")),
    ("runtime.run (bind keys, settle check)", ("entrypoints/runtime.py", "entrypoints/logs.py")),
    ("local app: Guard, endpoint, response", ("entrypoints/local_app.py",)),
    ("Starlette (middleware, routing, Request)", ("starlette/",)),
    ("uvicorn HTTP protocol (httptools)", ("uvicorn/",)),
    ("one send per answer (coalescing)", ("local_server.py",)),
    ("event loop, sockets (uvloop, asyncio)", ("asyncio", "uvloop", "<module>")),
]
total = 0
counts = collections.Counter()
for line in open(sys.argv[1]):
    stack, _, n = line.rstrip().rpartition(" ")
    n = int(n)
    frames = stack.split(";")
    if not frames[0].startswith("<module>"):
        counts["other threads (log writer, relay, sweeper)"] += n
        total += n
        continue
    total += n
    for frame in reversed(frames):
        hit = next((label for label, pats in CATS if any(p in frame for p in pats)), None)
        if hit:
            counts[hit] += n
            break
    else:
        counts["other"] += n
for label, n in counts.most_common():
    print(f"| {label} | {100 * n / total:.0f}% |")
print("samples", total)
