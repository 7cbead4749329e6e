"""Many threads moving money between a few hot accounts of the in-memory backend."""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from pathlib import Path

from centli.adapters.memory.store import InMemoryStore
from centli.domain.banking import CreateTransfer
from centli.domain.errors import DomainError
from centli.domain.money import Money
from tests.backends import opener
from tests.conftest import make_bank
from tests.unit.helpers import assert_ledger_invariants, transfer_debits

THREADS = 8
TRANSFERS_PER_THREAD = 200
USERS = [f"u-{n}" for n in range(4)]


def hot_bank() -> dict[str, object]:
    return {
        "users": [{"user_id": u} for u in USERS],
        "accounts": [
            {"user_id": u, "account_id": f"acc-{u}-{side}", "opening_balance": "1000.00"}
            for u in USERS
            for side in "ab"
        ],
        "beneficiaries": [
            {"user_id": u, "beneficiary_id": f"ben-{u}", "account_id": f"acc-{USERS[(n + 1) % len(USERS)]}-a"}
            for n, u in enumerate(USERS)
        ],
    }


def request(rng: random.Random, key: str) -> CreateTransfer:
    user = rng.choice(USERS)
    source, other = rng.sample(["a", "b"], 2)
    amount = Money(rng.randint(1, 30_000)).to_decimal_string()
    destination = f"acc-{user}-{other}" if rng.random() < 0.5 else f"ben-{user}"
    return CreateTransfer.parse(user, f"acc-{user}-{source}", amount, key, destination_id=destination)


def test_concurrent_transfers_on_hot_accounts_keep_every_invariant(tmp_path: Path) -> None:
    with opener("memory")(tmp_path) as backend:
        bank = make_bank(backend, hot_bank())
        store: InMemoryStore = backend.extras["store"]
        answers: dict[tuple[str, str], set[str]] = defaultdict(set)
        refusals: dict[str, int] = defaultdict(int)
        lock = threading.Lock()
        start = threading.Barrier(THREADS)
        crashes: list[BaseException] = []

        def worker(thread_no: int) -> None:
            rng = random.Random(thread_no)
            start.wait()
            for i in range(TRANSFERS_PER_THREAD):
                if i % 4 == 0:
                    # Every thread sends this same request under the same key, at about the same time.
                    cmd = request(random.Random(i), f"shared-{i}")
                else:
                    cmd = request(rng, f"t{thread_no}-{i}")
                for _attempt in range(2 if i % 4 == 1 else 1):  # every 4th private request is retried
                    try:
                        done = bank.app.banking.create_transfer(cmd)
                    except DomainError as error:
                        with lock:
                            refusals[error.code] += 1
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
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in threads)
        assert crashes == []

        # One answer per key, however many threads or retries asked.
        assert all(len(ids) == 1 for ids in answers.values())
        succeeded = {next(iter(ids)) for ids in answers.values()}
        debits = transfer_debits(store)
        assert len(succeeded) == len(debits)
        assert succeeded == {d.transfer_id for d in debits}
        assert_ledger_invariants(store)
        # The run really contended: both outcomes happened many times.
        assert len(succeeded) > 200
        assert refusals["INSUFFICIENT_FUNDS"] > 0
        total = sum(a.balance.minor for u in USERS for a in bank.app.banking.list_accounts(u))
        assert total == len(USERS) * 2 * 100_000
