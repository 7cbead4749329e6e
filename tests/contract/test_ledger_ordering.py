"""History is in commit order, and its timestamps agree with it: a commit stamps its transfer when it
commits, never earlier than the previous entry of either account (DESIGN, "A statement reads in time order")."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

import pytest

from centli.domain.ledger import LedgerEntry
from tests.backends import Backend
from tests.contract.conftest import ANA, LUIS, account, at, balance, commit, full_history, transfer

pytestmark = pytest.mark.contract


def assert_consistent(backend: Backend, user: str, account_id: str, page: int) -> list[LedgerEntry]:
    """Newest first, each balance_after the previous one minus the previous entry's amount, down to the
    opening, and no entry older in time than one committed before it."""
    history = full_history(backend, user, account_id, page)
    assert history[0].balance_after == balance(backend, user, account_id)
    for newer, older in pairwise(history):
        assert older.balance_after.minor == newer.balance_after.minor - newer.signed_minor
        assert newer.timestamp >= older.timestamp, (newer, older)
    assert history[-1].direction == "CREDIT"
    assert history[-1].transfer_id == history[-1].entry_id  # the opening entry
    assert history[-1].balance_after == history[-1].amount
    assert all(e.balance_after.minor >= 0 for e in history)
    return history


@pytest.mark.parametrize("page", [1, 2, 50])
def test_a_transfer_stamped_earlier_but_committed_later_comes_first(any_backend: Backend, page: int) -> None:
    commit(any_backend, lambda uow: uow.accounts.open(account(ANA, "acc-a1", "100.00")))
    commit(any_backend, lambda uow: uow.accounts.open(account(LUIS, "acc-l1", "0.00")))
    # B (stamped later) moves all of Ana's 100 to Luis; then A (stamped earlier) moves 60 back.
    # Sorted by stamp, Ana's history would show -60 after A.
    late_stamp = transfer("trf-b", "100.00", minute=2)
    early_stamp = transfer("trf-a", "60.00", user=LUIS, source="acc-l1", to=(ANA, "acc-a1"), minute=1)
    any_backend.clock.advance(timedelta(minutes=2))
    b_committed = commit(any_backend, lambda uow: uow.ledger.post(late_stamp))
    any_backend.clock.advance(timedelta(minutes=-1))  # A's commit reads a clock running a minute late
    a_committed = commit(any_backend, lambda uow: uow.ledger.post(early_stamp))

    ana = assert_consistent(any_backend, ANA, "acc-a1", page)
    luis = assert_consistent(any_backend, LUIS, "acc-l1", page)
    assert [e.transfer_id for e in ana[:-1]] == ["trf-a", "trf-b"]
    assert [e.transfer_id for e in luis[:-1]] == ["trf-a", "trf-b"]
    assert [e.balance_after.to_decimal_string() for e in ana] == ["60.00", "0.00", "100.00"]
    assert [e.balance_after.to_decimal_string() for e in luis] == ["40.00", "100.00", "0.00"]
    # Changed on purpose (issue 8): the displayed timestamp is no longer the transfer's own created_at
    # but its commit's stamp. B's is the clock at its commit; A's late clock read 2 minutes past T0 less
    # one, earlier than B's entries, so A takes the time of the previous entry instead: never earlier.
    assert (b_committed, a_committed) == (at(2), at(2))
    assert [e.timestamp for e in ana] == [at(2), at(2), at(0)]
    with any_backend.uow() as uow:
        assert uow.ledger.get_transfer(LUIS, "trf-a") == early_stamp.stamped(a_committed)
        assert uow.ledger.get_transfer(ANA, "trf-b") == late_stamp.stamped(b_committed)


def test_many_transfers_committed_in_reverse_stamp_order(any_backend: Backend) -> None:
    commit(any_backend, lambda uow: uow.accounts.open(account(ANA, "acc-a1", "50.00")))
    commit(any_backend, lambda uow: uow.accounts.open(account(LUIS, "acc-l1", "50.00")))
    committed: list[str] = []
    for n in range(6):
        if n % 2 == 0:
            posted = transfer(f"trf-{n}", f"{10 + n}.00", minute=60 - n)
        else:
            posted = transfer(f"trf-{n}", f"{10 + n}.00", user=LUIS, source="acc-l1", to=(ANA, "acc-a1"), minute=60 - n)
        any_backend.clock.advance(timedelta(seconds=1 if n % 2 else -3))  # a clock skewed back and forth
        commit(any_backend, lambda uow, t=posted: uow.ledger.post(t))
        committed.append(posted.transfer_id)
    for user, account_id in [(ANA, "acc-a1"), (LUIS, "acc-l1")]:
        history = assert_consistent(any_backend, user, account_id, 4)
        assert [e.transfer_id for e in history[:-1]] == committed[::-1]
