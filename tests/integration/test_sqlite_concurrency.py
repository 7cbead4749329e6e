"""Concurrent transfers against a real SQLite file: threads sharing a store, and separate processes.

Afterwards the file itself (read with a plain sqlite3 connection, not the
adapter) must show: money conserved, no negative balance, every history
summing to its balance with a consistent balance_after, every transfer one
debit and one credit, daily totals within the limit, and each idempotency key
having taken effect at most once.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import sqlite3
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from centli.adapters.memory import ManualClock
from centli.adapters.sqlite import SqliteStore
from centli.adapters.system import UlidGenerator
from centli.domain.application import Application, bootstrap
from centli.domain.banking import CreateTransfer
from centli.domain.errors import IdempotencyConflict, InsufficientFunds, LimitExceeded
from centli.domain.ledger import TransferLimits
from centli.domain.loading import parse_bank_document
from centli.domain.money import Money
from centli.domain.policy import BankPolicy
from tests.conftest import CURSOR_SECRET

pytestmark = pytest.mark.integration

USERS = 4
OPENING = "1000.00"
DAILY_LIMIT = Money.of("15000.00")
EXPECTED_ERRORS = (InsufficientFunds, LimitExceeded, IdempotencyConflict)


def hot_bank() -> dict[str, Any]:
    """Four hot accounts; every user may pay every other one through a saved beneficiary."""
    users = [f"u-{i}" for i in range(USERS)]
    return {
        "users": [{"user_id": u} for u in users],
        "accounts": [
            {"user_id": u, "account_id": f"acc-{i}", "alias": "Principal", "opening_balance": OPENING}
            for i, u in enumerate(users)
        ],
        "beneficiaries": [
            {"user_id": users[i], "beneficiary_id": f"ben-{j}", "alias": f"to {j}", "account_id": f"acc-{j}"}
            for i in range(USERS)
            for j in range(USERS)
            if i != j
        ],
        "products": [],
    }


def policy() -> BankPolicy:
    return BankPolicy(limits={"MXN": TransferLimits(per_transfer=Money.of("50000.00"), daily_total=DAILY_LIMIT)})


def open_app(path: Path) -> tuple[SqliteStore, Application]:
    store = SqliteStore(path, synchronous="NORMAL")
    app = bootstrap(store.unit_of_work, ManualClock(), UlidGenerator(), policy(), CURSOR_SECRET, store)
    return store, app


@dataclass(frozen=True)
class Request:
    sender: int
    receiver: int
    amount: str
    key: str

    def command(self) -> CreateTransfer:
        return CreateTransfer.parse(
            user_id=f"u-{self.sender}",
            from_account_id=f"acc-{self.sender}",
            amount=self.amount,
            idempotency_key=self.key,
            destination_id=f"ben-{self.receiver}",
        )


def make_requests(count: int, seed: int) -> list[Request]:
    """Mostly fresh keys; about one in five repeats an earlier request exactly (a retry), a few reuse
    a key with a different amount (a conflict)."""
    rng = random.Random(seed)
    requests: list[Request] = []
    while len(requests) < count:
        roll = rng.random()
        if requests and roll < 0.2:
            requests.append(rng.choice(requests))
        elif requests and roll < 0.25:
            earlier = rng.choice(requests)
            requests.append(Request(earlier.sender, earlier.receiver, f"{rng.randint(1, 300)}.01", earlier.key))
        else:
            sender = rng.randrange(USERS)
            receiver = rng.choice([j for j in range(USERS) if j != sender])
            requests.append(
                Request(
                    sender, receiver, f"{rng.randint(1, 300)}.{rng.randint(0, 99):02d}", f"k-{seed}-{len(requests)}"
                )
            )
    rng.shuffle(requests)
    return requests


Outcome = tuple[Request, str]  # (request, transfer_id or error code)


def run_requests(app: Application, requests: list[Request]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for request in requests:
        try:
            outcomes.append((request, app.banking.create_transfer(request.command()).transfer_id))
        except EXPECTED_ERRORS as error:
            outcomes.append((request, error.code))
    return outcomes


def run_threads(app: Application, requests: list[Request], threads: int) -> list[Outcome]:
    chunks = [requests[i::threads] for i in range(threads)]
    results: list[list[Outcome]] = [[] for _ in range(threads)]
    failures: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def work(index: int) -> None:
        barrier.wait()
        try:
            results[index] = run_requests(app, chunks[index])
        except BaseException as error:  # surfaced below: an unexpected error fails the test
            failures.append(error)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not failures, failures
    return [outcome for chunk in results for outcome in chunk]


def assert_file_invariants(path: Path, outcomes: list[Outcome]) -> None:
    db = sqlite3.connect(path)
    try:
        balances = dict(db.execute("SELECT account_id, balance_minor FROM accounts").fetchall())
        entries = db.execute(
            "SELECT account_id, transfer_id, direction, amount_minor, balance_after_minor FROM entries ORDER BY seq"
        ).fetchall()
        transfers = dict(db.execute("SELECT transfer_id, user_id FROM transfers").fetchall())
        sent = db.execute("SELECT user_id, SUM(amount_minor) FROM transfers GROUP BY user_id").fetchall()
        daily = dict(db.execute("SELECT user_id, total_minor FROM daily_totals").fetchall())
        keys = db.execute("SELECT key, result FROM idempotency WHERE operation = 'createTransfer'").fetchall()
    finally:
        db.close()

    opening = Money.of(OPENING).minor
    assert sum(balances.values()) == USERS * opening, "money is conserved"
    assert all(balance >= 0 for balance in balances.values()), balances
    running: dict[str, int] = defaultdict(int)
    for account_id, _, direction, amount, balance_after in entries:
        running[account_id] += amount if direction == "CREDIT" else -amount
        assert balance_after == running[account_id], "balance_after follows the history"
    assert dict(running) == balances, "every history sums to its balance"
    sides = Counter((transfer_id, direction) for _, transfer_id, direction, _, _ in entries if transfer_id in transfers)
    assert all(sides[(t, "DEBIT")] == 1 and sides[(t, "CREDIT")] == 1 for t in transfers)
    assert len(entries) == USERS + 2 * len(transfers)
    for user_id, total in sent:
        assert daily[user_id] == total <= DAILY_LIMIT.minor

    # Each key took effect at most once, and every caller holding a transfer_id saw the stored one.
    stored = {key: json.loads(result)["transfer_id"] for key, result in keys}
    assert len(stored) == len(transfers) and set(stored.values()) == set(transfers)
    returned: dict[str, set[str]] = defaultdict(set)
    for request, outcome in outcomes:
        if outcome.startswith("trf-"):
            returned[request.key].add(outcome)
    assert {key: {stored[key]} for key in returned} == dict(returned)
    assert set(returned) == set(stored)
    codes = Counter(outcome if not outcome.startswith("trf-") else "OK" for _, outcome in outcomes)
    assert codes["OK"] > len(outcomes) // 4, codes  # the test really moved money


def test_threads_share_one_store(tmp_path: Path) -> None:
    path = tmp_path / "bank.db"
    store, app = open_app(path)
    try:
        store.load(parse_bank_document(hot_bank(), ManualClock().now()))
        requests = make_requests(800, seed=7)
        outcomes = run_threads(app, requests, threads=8)
    finally:
        store.close()
    assert len(outcomes) == 800
    assert any(outcome == "LIMIT_EXCEEDED" for _, outcome in outcomes)
    assert any(outcome == "IDEMPOTENCY_CONFLICT" for _, outcome in outcomes)
    assert any(outcome == "INSUFFICIENT_FUNDS" for _, outcome in outcomes)
    assert_file_invariants(path, outcomes)


def process_worker(path: str, requests: list[Request], queue: Any) -> None:
    """One process with its own store and connections, two threads inside it."""
    try:
        store, app = open_app(Path(path))
        try:
            queue.put(("ok", run_threads(app, requests, threads=2)))
        finally:
            store.close()
    except BaseException as error:
        queue.put(("error", repr(error)))


def test_processes_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "bank.db"
    store, _ = open_app(path)
    store.load(parse_bank_document(hot_bank(), ManualClock().now()))
    store.close()
    requests = make_requests(300, seed=11)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=process_worker, args=(str(path), requests[i::3], queue)) for i in range(3)]
    for process in processes:
        process.start()
    results = [queue.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    assert all(status == "ok" for status, _ in results), results
    outcomes: list[Outcome] = [outcome for _, chunk in results for outcome in chunk]
    assert len(outcomes) == 300
    assert_file_invariants(path, outcomes)


def test_the_invariant_check_catches_a_corrupted_file(tmp_path: Path) -> None:
    path = tmp_path / "bank.db"
    store, app = open_app(path)
    try:
        store.load(parse_bank_document(hot_bank(), ManualClock().now()))
        outcomes = run_requests(app, make_requests(40, seed=3))
    finally:
        store.close()
    assert_file_invariants(path, outcomes)
    db = sqlite3.connect(path)
    db.execute("UPDATE accounts SET balance_minor = balance_minor + 1 WHERE account_id = 'acc-1'")
    db.commit()
    db.close()
    with pytest.raises(AssertionError, match="money is conserved"):
        assert_file_invariants(path, outcomes)
