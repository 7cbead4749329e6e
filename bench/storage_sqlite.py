"""Latency of getBalance, listTransactions and createTransfer: memory vs SQLite, side by side in one run.

    .venv/bin/python bench/storage_sqlite.py [--ops 500] [--threads 4]

Prints p50/p99 per operation and adapter (single thread), the ratio of SQLite's
p50 to memory's, and the throughput of concurrent transfers on SQLite.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from centli.adapters.memory import InMemoryStore, ManualClock
from centli.adapters.sqlite import SqliteStore
from centli.adapters.system import UlidGenerator
from centli.domain.application import Application, bootstrap
from centli.domain.banking import CreateTransfer
from centli.domain.loading import parse_bank_document
from centli.domain.policy import BankPolicy
from centli.entrypoints.demo import demo_bank

SECRET = b"bench-cursor-secret-0123456789"
ANA = "u-ana"


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(ops: int, call: Callable[[int], object]) -> list[float]:
    samples = []
    for i in range(ops):
        start = time.perf_counter()
        call(i)
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


def transfer(i: int, prefix: str) -> CreateTransfer:
    # Back and forth between Ana's two accounts, so funds never run out.
    source, target = ("acc-0001", "acc-0003") if i % 2 == 0 else ("acc-0003", "acc-0001")
    return CreateTransfer(ANA, source, "1.00", f"{prefix}-{i}", to_account_id=target)


def measure(name: str, app: Application, ops: int) -> dict[str, list[float]]:
    banking = app.banking
    results = {
        "createTransfer": timed(ops, lambda i: banking.create_transfer(transfer(i, name))),
        "getBalance": timed(ops, lambda _i: banking.get_balance(ANA, "acc-0001")),
        "listTransactions": timed(ops, lambda _i: banking.list_transactions(ANA, "acc-0001", 20)),
    }
    return results


def concurrent_throughput(app: Application, threads: int, per_thread: int) -> float:
    def work(index: int) -> None:
        for i in range(per_thread):
            app.banking.create_transfer(transfer(i, f"c{index}"))

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return threads * per_thread / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=500)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    policy = BankPolicy()
    with tempfile.TemporaryDirectory() as workdir:
        stores: dict[str, InMemoryStore | SqliteStore] = {
            "memory": InMemoryStore(),
            "sqlite-full": SqliteStore(Path(workdir) / "full.db", synchronous="FULL"),
            "sqlite-normal": SqliteStore(Path(workdir) / "normal.db", synchronous="NORMAL"),
        }
        apps = {}
        for name, store in stores.items():
            clock = ManualClock()
            store.load(parse_bank_document(demo_bank(), clock.now()))
            apps[name] = bootstrap(store.unit_of_work, clock, UlidGenerator(), policy, SECRET, None)
        measured = {name: measure(name, app, args.ops) for name, app in apps.items()}
        print(f"{'operation':<18}{'adapter':<15}{'p50 us':>10}{'p99 us':>10}{'p50 vs memory':>15}")
        for operation in ("getBalance", "listTransactions", "createTransfer"):
            base = statistics.median(measured["memory"][operation])
            for name in stores:
                samples = measured[name][operation]
                p50 = statistics.median(samples)
                print(f"{operation:<18}{name:<15}{p50:>10.1f}{percentile(samples, 0.99):>10.1f}{p50 / base:>14.1f}x")
        for name in ("sqlite-full", "sqlite-normal"):
            rate = concurrent_throughput(apps[name], args.threads, args.ops // args.threads)
            print(f"concurrent createTransfer on {name}, {args.threads} threads: {rate:.0f}/s")
        for store in stores.values():
            if isinstance(store, SqliteStore):
                store.close()


if __name__ == "__main__":
    main()
