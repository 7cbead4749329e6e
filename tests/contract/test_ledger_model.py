"""Contract, property-based: random transfers through ``ledger.post`` agree with a plain model.

Examples are few on slow backends (each DynamoDB commit is an HTTP round trip).
Every example opens fresh accounts in the same backend, so no per-example setup is needed.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from centli.domain.errors import InsufficientFunds
from centli.domain.ledger import AccountRef, Transfer
from centli.domain.money import Money
from tests.backends import Backend
from tests.contract.conftest import account, at, balance, commit, full_history

pytestmark = pytest.mark.contract

EXAMPLES = {"memory": 40, "sqlite": 15}
SLOW_BACKEND_EXAMPLES = 4
USERS = ["u-p0", "u-p1"]

moves = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(1, 60_000)).filter(lambda m: m[0] != m[1]),
    min_size=1,
    max_size=8,
)


def test_random_posts_agree_with_a_model(any_backend: Backend) -> None:
    runs = itertools.count()

    @settings(max_examples=EXAMPLES.get(any_backend.name, SLOW_BACKEND_EXAMPLES), deadline=None, database=None)
    @given(moves=moves, page=st.integers(1, 4))
    def check(moves: list[tuple[int, int, int]], page: int) -> None:
        run = next(runs)
        # Three accounts: two of one user, one of another; ids unique to this example.
        refs = [AccountRef(USERS[i // 2], f"acc-r{run}-{i}") for i in range(3)]
        model = dict.fromkeys(refs, 100000)
        commit(
            any_backend,
            *(lambda uow, ref=ref: uow.accounts.open(account(ref.user_id, ref.account_id)) for ref in refs),
        )
        for n, (source, target, minor) in enumerate(moves):
            sent = Transfer(
                f"trf-r{run}-{n}",
                refs[source].user_id,
                refs[source].account_id,
                refs[target],
                Money(minor),
                "",
                at(n + 1),
            )
            if model[refs[source]] >= minor:
                commit(any_backend, lambda uow: uow.ledger.post(sent))
                model[refs[source]] -= minor
                model[refs[target]] += minor
            else:
                with pytest.raises(InsufficientFunds), any_backend.uow() as uow:
                    uow.ledger.post(sent)
                    uow.commit()
        for ref in refs:
            assert balance(any_backend, ref.user_id, ref.account_id).minor == model[ref]
            entries = full_history(any_backend, ref.user_id, ref.account_id, page=page)
            running = 0
            for entry in reversed(entries):
                running += entry.signed_minor
                assert entry.balance_after.minor == running
            assert running == model[ref]
        assert sum(model.values()) == 300_000

    check()
