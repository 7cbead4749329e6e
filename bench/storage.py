"""getBalance, listTransactions and createTransfer on every storage adapter, side by side in one run.

    PYTHONPATH=. .venv/bin/python bench/storage.py [--ops 100] [--threads 4] [--per-thread 50] [--markdown]

Adapters: memory, SQLite, and DynamoDB over HTTP to a moto server this script
starts on 127.0.0.1. Operations are interleaved round-robin across adapters so
they share the machine's state. Reports p50/p99 per operation and adapter as
ratios to memory's p50, for DynamoDB the HTTP requests sent per operation
(counted with a botocore ``before-send`` hook), the throughput of transfers
under contention (several threads moving money between the same two hot
accounts) as a ratio, and, for DynamoDB, requests per contended transfer and
the retries TransactionConflict causes, injected below the adapter.

moto is a functional fake, not DynamoDB: its latencies are its own Python
code (it deep-copies every table a transaction touches, so writes slow down as
tables grow) and say nothing about AWS. The request counts are what carry over.
"""

from __future__ import annotations

import argparse
import logging
import random
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
from centli.domain.errors import ConcurrencyConflict
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
    return CreateTransfer.parse("u-ana", source, "1.00", key, destination_id=target)


def throughput(subject: Subject, threads: int, per_thread: int) -> tuple[float, int]:
    """(Transfers committed per second, how many committed) with ``threads`` threads contending for two accounts.

    A transfer refused (a conflict after the adapter's retries) is counted out, not silently divided by.
    """
    done: list[int] = []

    def work(worker: int) -> None:
        for i in range(per_thread):
            try:
                subject.app.banking.create_transfer(transfer(i % 2 == 0, f"contend-{worker}-{i}"))
            except ConcurrencyConflict:
                continue
            done.append(1)  # list.append is atomic under the GIL

    workers = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    started = perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return len(done) / (perf_counter() - started), len(done)


class ConflictingClient:
    """A real client whose TransactWriteItems is cancelled by a TransactionConflict, at a seeded rate.

    moto never conflicts; this is the fault-injection harness's view of contention on DynamoDB.
    """

    def __init__(self, client: Any, rate: float, seed: int = 1) -> None:
        self._client = client
        self._rate = rate
        self._random = random.Random(seed)  # noqa: S311 - a benchmark's seeded faults, not secrecy
        self._lock = threading.Lock()
        self.conflicts = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name != "transact_write_items":
            return attr

        def call(**params: Any) -> Any:
            with self._lock:
                conflict = self._random.random() < self._rate
                self.conflicts += conflict
            if conflict:
                from botocore.exceptions import ClientError

                reasons = [{"Code": "None"} for _ in params["TransactItems"]]
                reasons[0] = {"Code": "TransactionConflict", "Message": "injected"}
                raise ClientError(
                    {
                        "Error": {"Code": "TransactionCanceledException", "Message": "injected"},
                        "CancellationReasons": reasons,
                        "ResponseMetadata": {"HTTPStatusCode": 400},
                    },
                    "TransactWriteItems",
                )
            return attr(**params)

        return call


def conflict_retries(rate: float, transfers: int) -> tuple[float, float]:
    """(TransactWriteItems sent per transfer, share of transfers answered 409) when ``rate`` of them conflict."""
    from centli.adapters.dynamodb import DynamoStore, TableNames, make_dynamodb_client
    from centli.adapters.dynamodb.schema import create_tables
    from tests.integration.moto_server import moto_endpoint

    real = make_dynamodb_client(moto_endpoint())
    tables = TableNames().with_prefix(f"bench-conflict-{int(rate * 100)}-")
    create_tables(real, tables, wait=False)
    client = ConflictingClient(real, rate)
    store = DynamoStore(client, tables)  # type: ignore[arg-type]
    store.sleep = lambda _seconds: None  # the backoff's waits are not what is measured here
    subject = Subject("dynamodb (moto)", store.unit_of_work, store.load)
    sent: Counter[str] = Counter()
    real.meta.events.register("before-send.dynamodb", lambda request, **_: sent.update(["request"]))
    refused = 0
    for i in range(transfers):
        try:
            subject.app.banking.create_transfer(transfer(i % 2 == 0, f"conflict-{i}"))
        except ConcurrencyConflict:
            refused += 1
    return (sent["request"] + client.conflicts) / transfers, refused / transfers


def run(ops: int, threads: int, per_thread: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        subjects = [memory(), sqlite(Path(tmp)), dynamodb()]
        for n in range(ops):
            for subject in subjects:
                banking = subject.app.banking
                subject.measure("getBalance", lambda b=banking: b.get_balance("u-ana", "acc-0001"))
                subject.measure("listTransactions", lambda b=banking: b.list_transactions("u-ana", "acc-0001", 20))
                command = transfer(n % 2 == 0, f"bench-{n}")
                subject.measure("createTransfer", lambda b=banking, c=command: b.create_transfer(c))
        latency = {
            subject.name: {
                op: (percentile(subject.timings[op], 0.5), percentile(subject.timings[op], 0.99)) for op in OPERATIONS
            }
            for subject in subjects
        }
        requests = {op: statistics.mean(subjects[2].sent[op]) for op in OPERATIONS}
        contention = {subject.name: throughput(subject, threads, per_thread)[0] for subject in subjects[:2]}
        dynamo_contention: dict[str, float] = {}
        if subjects[2].requests is not None:
            subjects[2].requests.clear()
            _, committed = throughput(subjects[2], threads, max(1, per_thread // 5))
            dynamo_contention["requests"] = sum(subjects[2].requests.values()) / max(1, committed)
            dynamo_contention["refused"] = threads * max(1, per_thread // 5) - committed
        retries = {rate: conflict_retries(rate, max(20, per_thread)) for rate in (0.1, 0.3)}
    return {
        "ops": ops,
        "threads": threads,
        "per_thread": per_thread,
        "latency": latency,
        "requests": requests,
        "contention": contention,
        "dynamo_contention": dynamo_contention,
        "retries": retries,
    }


def markdown(result: dict[str, Any]) -> str:
    latency = result["latency"]
    base = latency["memory"]
    lines = [
        "## Storage: warm latency per operation and backend, contention",
        "",
        f"`bench/storage.py`: {result['ops']} calls of each operation per backend, interleaved round-robin; the "
        "domain service called directly. Each figure is a ratio to memory's p50 for the same operation.",
        "",
        "| operation | memory p50 / p99 | SQLite p50 / p99 | DynamoDB on moto p50 / p99 | DynamoDB requests |",
        "|---|---|---|---|---|",
    ]
    for op in OPERATIONS:
        cells = []
        for name in ("memory", "sqlite", "dynamodb (moto)"):
            p50, p99 = latency[name][op]
            cells.append(f"{p50 / base[op][0]:.2f} / {p99 / base[op][0]:.2f}")
        lines.append(f"| {op} | {' | '.join(cells)} | {result['requests'][op]:.0f} |")
    contention = result["contention"]
    lines += [
        "",
        f"Transfers under contention ({result['threads']} threads moving money between the same two accounts): "
        f"SQLite sustains **{contention['sqlite'] / contention['memory']:.2f}×** memory's transfers per second.",
        "",
        "On DynamoDB, moto's latency and its absence of conflicts say nothing about AWS, so only counts are reported: "
        f"under the same contention, {result['dynamo_contention'].get('requests', float('nan')):.2f} requests per "
        f"committed transfer ({result['dynamo_contention'].get('refused', 0):.0f} refused; moto, wire-counted); "
        "with TransactionConflict injected below the adapter (seeded), "
        "TransactWriteItems attempts per transfer and the share answered 409 after the adapter's retries:",
        "",
        "| injected conflict rate | attempts per transfer | answered 409 |",
        "|---|---|---|",
    ]
    for rate, (attempts, refused) in result["retries"].items():
        lines.append(f"| {rate:.0%} | {attempts:.2f} | {refused:.1%} |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--ops", type=int, default=100)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--per-thread", type=int, default=50)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    print(markdown(run(args.ops, args.threads, args.per_thread)))
