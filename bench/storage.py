"""getBalance, listTransactions and createTransfer on every storage adapter, side by side in one run.

    PYTHONPATH=. .venv/bin/python bench/storage.py [--ops 100] [--threads 4] [--per-thread 50]

Adapters: memory, SQLite, and DynamoDB over HTTP to a moto server this script
starts on 127.0.0.1. Operations are interleaved round-robin across adapters so
they share the machine's state. Prints p50/p99 (ms) per operation and adapter,
for DynamoDB the HTTP requests sent per operation (counted with a botocore
``before-send`` hook), and the throughput of transfers under contention
(several threads moving money between the same two hot accounts).

moto is a functional fake, not DynamoDB: its latencies are its own Python
code (it deep-copies every table a transaction touches, so writes slow down as
tables grow) and say nothing about AWS. The request counts are what carry over.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from time import perf_counter
from typing import Any

from centli.adapters.memory import InMemoryStore, ManualClock
from centli.adapters.system import UlidGenerator
from centli.domain.application import Application, bootstrap
from centli.domain.banking import CreateTransfer
from centli.domain.loading import BankData, LoadReport, Progress, parse_bank_document
from centli.domain.policy import BankPolicy
from centli.entrypoints.demo import demo_bank
from centli.ports.unit_of_work import UnitOfWorkFactory

SECRET = b"bench-cursor-secret-0123456789"
OPERATIONS = ("getBalance", "listTransactions", "createTransfer")


class Subject:
    def __init__(
        self,
        name: str,
        uow: UnitOfWorkFactory,
        load: Callable[[BankData, Progress | None], LoadReport],
        requests: Counter[str] | None = None,
    ) -> None:
        clock = ManualClock()
        self.name = name
        self.app: Application = bootstrap(uow, clock, UlidGenerator(), BankPolicy(), SECRET)
        load(parse_bank_document(demo_bank(), clock.now()), None)
        self.requests = requests
        self.timings: dict[str, list[float]] = defaultdict(list)
        self.sent: dict[str, list[int]] = defaultdict(list)

    def measure(self, operation: str, action: Callable[[], Any]) -> None:
        if self.requests is not None:
            self.requests.clear()
        started = perf_counter()
        action()
        self.timings[operation].append((perf_counter() - started) * 1000)
        if self.requests is not None:
            self.sent[operation].append(sum(self.requests.values()))


def memory() -> Subject:
    store = InMemoryStore()
    return Subject("memory", store.unit_of_work, store.load)


def sqlite(workdir: Path) -> Subject:
    from centli.adapters.sqlite import SqliteStore

    store = SqliteStore(workdir / "bench.db")
    return Subject("sqlite", store.unit_of_work, store.load)


def dynamodb() -> Subject:
    # The tests' moto server: one request at a time, as moto is not thread-safe (see its docstring).
    from centli.adapters.dynamodb import DynamoStore, TableNames, make_dynamodb_client
    from centli.adapters.dynamodb.schema import create_tables
    from tests.integration.moto_server import moto_endpoint

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    client = make_dynamodb_client(moto_endpoint())
    requests: Counter[str] = Counter()
    client.meta.events.register(
        "before-send.dynamodb", lambda request, **_: requests.update([request.headers.get("X-Amz-Target", b"")])
    )
    tables = TableNames().with_prefix("bench-")
    create_tables(client, tables, wait=False)
    store = DynamoStore(client, tables)
    return Subject("dynamodb (moto)", store.unit_of_work, store.load, requests)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def transfer(source_first: bool, key: str) -> CreateTransfer:
    source, target = ("acc-0001", "acc-0003") if source_first else ("acc-0003", "acc-0001")
    return CreateTransfer("u-ana", source, "1.00", key, destination_id=target)


def throughput(subject: Subject, threads: int, per_thread: int) -> float:
    """Transfers per second with ``threads`` threads contending for the same two accounts."""

    def work(worker: int) -> None:
        for i in range(per_thread):
            subject.app.banking.create_transfer(transfer(i % 2 == 0, f"contend-{worker}-{i}"))

    workers = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    started = perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return threads * per_thread / (perf_counter() - started)


def run(ops: int, threads: int, per_thread: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subjects = [memory(), sqlite(Path(tmp)), dynamodb()]
        for n in range(ops):
            for subject in subjects:
                banking = subject.app.banking
                subject.measure("getBalance", lambda b=banking: b.get_balance("u-ana", "acc-0001"))
                subject.measure("listTransactions", lambda b=banking: b.list_transactions("u-ana", "acc-0001", 20))
                command = transfer(n % 2 == 0, f"bench-{n}")
                subject.measure("createTransfer", lambda b=banking, c=command: b.create_transfer(c))
        print(f"{ops} operations of each kind per adapter, interleaved; latency in ms")
        print(f"{'operation':<18}{'adapter':<18}{'p50':>9}{'p99':>9}{'requests/op':>13}")
        for operation in OPERATIONS:
            for subject in subjects:
                timings = subject.timings[operation]
                sent = subject.sent.get(operation)
                calls = f"{statistics.mean(sent):.2f}" if sent else "-"
                print(
                    f"{operation:<18}{subject.name:<18}{percentile(timings, 0.5):>9.3f}"
                    f"{percentile(timings, 0.99):>9.3f}{calls:>13}"
                )
        base = {op: statistics.median(subjects[0].timings[op]) for op in OPERATIONS}
        for subject in subjects[1:]:
            ratios = ", ".join(f"{op} x{statistics.median(subject.timings[op]) / base[op]:.0f}" for op in OPERATIONS)
            print(f"p50 of {subject.name} vs memory: {ratios}")
        print(f"transfers under contention ({threads} threads x {per_thread}, two hot accounts):")
        for subject in subjects:
            print(f"  {subject.name:<18}{throughput(subject, threads, per_thread):>10.0f} transfers/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--ops", type=int, default=100)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--per-thread", type=int, default=50)
    args = parser.parse_args()
    run(args.ops, args.threads, args.per_thread)
