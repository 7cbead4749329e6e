"""Under 8 concurrent writers, every statement reads in time order (DESIGN, "A statement reads in time order").

The clock runs: each reading is a millisecond after the one before, and the
reader is then delayed (it yields to the other writers), as a Lambda or a
thread is between taking a timestamp and committing. A store that stamps a
transfer before its write is serialized lets a later commit carry an earlier
time (issue 8 found 19 such inversions in one account on SQLite). A store that
stamps at commit, never before the previous entry, keeps every history newest
first in both order and time, its ``balance_after`` chained entry to entry.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import datetime, timedelta
from itertools import pairwise

import pytest

from centli.domain.banking import CreateTransfer
from centli.domain.errors import ConcurrencyConflict, InsufficientFunds
from centli.domain.ledger import Transfer
from tests.backends import Backend
from tests.conftest import hot_bank, make_bank
from tests.contract.conftest import balance, full_history

pytestmark = pytest.mark.contract

WRITERS = 8
TRANSFERS_EACH = 12
USERS = 4


def test_concurrent_writers_keep_every_statement_in_time_order(
    any_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    bank = make_bank(any_backend, hot_bank(USERS, "500.00"))
    readings = iter(range(1, 1_000_000))
    reading_lock = threading.Lock()
    start = bank.clock.now()

    def running_clock() -> datetime:
        with reading_lock:
            moment = start + timedelta(milliseconds=next(readings))
        time.sleep(0)  # the reader is delayed after taking the time: other writers may commit first
        return moment

    monkeypatch.setattr(bank.clock, "now", running_clock)  # the clock the application and the store share
    answered: list[tuple[CreateTransfer, Transfer]] = []
    crashes: list[BaseException] = []
    answers_lock = threading.Lock()
    go = threading.Barrier(WRITERS)

    def writer(number: int) -> None:
        rng = random.Random(number)
        go.wait()
        for i in range(TRANSFERS_EACH):
            sender, receiver = rng.sample(range(USERS), 2)
            cmd = CreateTransfer.parse(
                f"u-{sender}", f"acc-{sender}", f"{rng.randint(1, 40)}.00", f"w{number}-{i}", f"ben-{receiver}"
            )
            try:
                done = bank.app.banking.create_transfer(cmd)
            except (InsufficientFunds, ConcurrencyConflict):  # a refusal, or a 409 the agent may retry
                continue
            except BaseException as error:
                crashes.append(error)
                raise
            with answers_lock:
                answered.append((cmd, done))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    assert crashes == []
    assert len(answered) > WRITERS * TRANSFERS_EACH // 2

    inversions: dict[str, int] = {}
    stamps: dict[str, datetime] = {}
    for i in range(USERS):
        history = full_history(any_backend, f"u-{i}", f"acc-{i}", 7)
        assert history[0].balance_after == balance(any_backend, f"u-{i}", f"acc-{i}")
        assert history[-1].entry_id == f"open-acc-{i}" and history[-1].balance_after == history[-1].amount
        for newer, older in pairwise(history):
            assert older.balance_after.minor == newer.balance_after.minor - newer.signed_minor, (older, newer)
        inversions[f"acc-{i}"] = sum(newer.timestamp < older.timestamp for newer, older in pairwise(history))
        stamps.update((entry.transfer_id, entry.timestamp) for entry in history)
    assert inversions == dict.fromkeys(inversions, 0), f"entries newer in commit order but older in time: {inversions}"
    # The answer each writer got carries the very stamp its entries show, and the stored transfer has it too.
    for cmd, done in answered:
        assert done.created_at == stamps[done.transfer_id]
        assert bank.app.banking.get_transfer(done.user_id, done.transfer_id) == done
    # A retry answers exactly what the first call answered: the idempotency record holds the stamp too.
    for cmd, done in answered[:: len(answered) // 5]:
        assert bank.app.banking.create_transfer(cmd) == done
