"""getBalance, listTransactions and createTransfer on every storage adapter, side by side in one run.

    .venv/bin/python bench/storage.py [--ops 100]

Adapters: memory; SQLite when ``centli.adapters.sqlite`` imports; DynamoDB over
HTTP to a moto server this script starts on 127.0.0.1. Operations are
interleaved round-robin across adapters so they share the machine's state.
Prints p50/p99 (ms) per operation and adapter, and for DynamoDB the HTTP
requests sent per operation (counted with a botocore ``before-send`` hook).

moto is a functional fake, not DynamoDB: its latencies are its own Python
code (it deep-copies every table a transaction touches, so writes slow down as
tables grow) and say nothing about AWS. The request counts are what carry over.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import statistics
import tempfile
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


def sqlite(workdir: Path) -> Subject | None:
    try:
        from centli.adapters.sqlite import SqliteStore
    except ImportError:
        return None
    store = SqliteStore(workdir / "bench.db")
    return Subject("sqlite", store.unit_of_work, store.load)


def dynamodb() -> Subject:
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    from centli.adapters.dynamodb import DynamoStore, TableNames, make_dynamodb_client
    from centli.adapters.dynamodb.schema import create_tables

    for name, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }.items():
        os.environ.setdefault(name, value)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    client = make_dynamodb_client(f"http://127.0.0.1:{port}")
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


def run(ops: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subjects = [s for s in (memory(), sqlite(Path(tmp)), dynamodb()) if s is not None]
        for n in range(ops):
            source, target = ("acc-0001", "acc-0003") if n % 2 == 0 else ("acc-0003", "acc-0001")
            for subject in subjects:
                banking = subject.app.banking
                subject.measure("getBalance", lambda b=banking: b.get_balance("u-ana", "acc-0001"))
                subject.measure("listTransactions", lambda b=banking: b.list_transactions("u-ana", "acc-0001", 20))
                command = CreateTransfer("u-ana", source, "1.00", f"bench-{n}", to_account_id=target)
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--ops", type=int, default=100)
    run(parser.parse_args().ops)
