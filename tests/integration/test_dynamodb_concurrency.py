"""Threads moving money between a few hot accounts through the DynamoDB adapter, over HTTP to moto.

Afterwards the tables themselves (read with the raw client, not the adapter)
must show: money conserved, no negative balance, each account item equal to
its ledger head, every history summing to its balance, every transfer one
debit and one credit, daily totals within the limit and equal to what was
sent, and each idempotency key having taken effect exactly once.

The moto server runs one request at a time (see moto_server.py), as DynamoDB
runs each transaction atomically; the threads still interleave their reads
and commits freely.
"""

from __future__ import annotations

import random
import threading
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from centli.adapters.dynamodb import DynamoStore
from centli.adapters.memory import ManualClock, SequentialIds
from centli.domain.application import bootstrap
from centli.domain.banking import CreateTransfer
from centli.domain.errors import InsufficientFunds, LimitExceeded
from centli.domain.ledger import TransferLimits
from centli.domain.loading import parse_bank_document
from centli.domain.money import Money
from centli.domain.policy import BankPolicy
from tests.backends.dynamodb import open_store
from tests.conftest import CURSOR_SECRET, hot_bank

pytestmark = pytest.mark.integration

USERS = 4
THREADS = 4
REQUESTS_PER_THREAD = 20
OPENING = 100_000  # 1,000.00 each
DAILY_LIMIT = Money.of("3000.00")


def scan(store: DynamoStore, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = store.client.scan(**params)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_concurrent_transfers_on_hot_accounts_keep_every_invariant(tmp_path: Path) -> None:
    with open_store() as store:
        clock = ManualClock()
        policy = BankPolicy(limits={"MXN": TransferLimits(Money.of("50000.00"), DAILY_LIMIT)})
        app = bootstrap(store.unit_of_work, clock, SequentialIds(), policy, CURSOR_SECRET, store)
        store.load(parse_bank_document(hot_bank(USERS, "1000.00"), clock.now()))
        answers: dict[tuple[str, str], set[str]] = defaultdict(set)
        refusals: Counter[str] = Counter()
        crashes: list[BaseException] = []
        lock = threading.Lock()
        start = threading.Barrier(THREADS)

        def worker(thread_no: int) -> None:
            rng = random.Random(thread_no)
            start.wait()
            for i in range(REQUESTS_PER_THREAD):
                shared = i % 5 == 0  # every thread sends this one under the same key
                pick = random.Random(i) if shared else rng
                sender, receiver = pick.sample(range(USERS), 2)
                cmd = CreateTransfer.parse(
                    f"u-{sender}",
                    f"acc-{sender}",
                    Money(pick.randint(1, 60_000)).to_decimal_string(),
                    f"shared-{i}" if shared else f"t{thread_no}-{i}",
                    destination_id=f"ben-{receiver}",
                )
                try:
                    done = app.banking.create_transfer(cmd)
                except (InsufficientFunds, LimitExceeded) as refused:
                    with lock:
                        refusals[refused.code] += 1
                    continue
                except BaseException as error:
                    crashes.append(error)
                    raise
                with lock:
                    answers[(cmd.user_id, str(cmd.idempotency_key))].add(done.transfer_id)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(t.is_alive() for t in threads)
        assert crashes == []
        assert all(len(ids) == 1 for ids in answers.values())  # one answer per key
        succeeded = {next(iter(ids)) for ids in answers.values()}
        assert len(succeeded) > 10
        assert refusals  # the run really contended for funds or limits

        t = store.tables
        accounts = {(a["user_id"]["S"], a["account_id"]["S"]): int(a["balance"]["N"]) for a in scan(store, t.accounts)}
        assert sum(accounts.values()) == USERS * OPENING
        assert min(accounts.values()) >= 0
        ledger = scan(store, t.transactions)
        heads = {i["account_key"]["S"]: int(i["balance"]["N"]) for i in ledger if i["entry_key"]["S"] == "~HEAD"}
        entries = [i for i in ledger if i["entry_key"]["S"] != "~HEAD"]
        assert heads == {f"{u}#{a}": b for (u, a), b in accounts.items()}
        sums: Counter[str] = Counter()
        sides: dict[str, list[str]] = defaultdict(list)
        for e in entries:
            amount = int(e["amount"]["N"])
            sums[e["account_key"]["S"]] += amount if e["direction"]["S"] == "CREDIT" else -amount
            sides[e["transfer_id"]["S"]].append(e["direction"]["S"])
        assert dict(sums) == heads
        transfers = {i["transfer_id"]["S"] for i in scan(store, t.transfers)}
        assert transfers == succeeded
        assert all(sorted(sides[tid]) == ["CREDIT", "DEBIT"] for tid in transfers)
        # Each history, read through the adapter, walks back to the opening balance.
        for (user, account_id), balance in accounts.items():
            history = app.banking.list_transactions(user, account_id, 50).entries
            assert history[0].balance_after.minor == balance
            assert history[-1].entry_id == f"open-{account_id}"
            assert history[-1].balance_after.minor == OPENING
        sent: Counter[str] = Counter()
        for e in entries:
            if e["direction"]["S"] == "DEBIT":
                sent[e["user_id"]["S"]] += int(e["amount"]["N"])
        totals = {i["user_id"]["S"]: int(i["total"]["N"]) for i in scan(store, t.daily_limits)}
        assert {u: v for u, v in totals.items() if v} == dict(sent)
        assert max(totals.values()) <= DAILY_LIMIT.minor
        claimed = scan(store, t.idempotency)
        assert len(claimed) == len(answers)
