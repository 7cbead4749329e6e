"""The simulation on SQLite: CI's fixed budget, and the same seed makes the same run as on memory."""

from __future__ import annotations

import pytest

from centli.domain.planted import SWEEPER_RACE
from centli.entrypoints import simulate

STEPS = 150


@pytest.mark.parametrize("seed", [1, 2])
def test_sqlite_holds_and_runs_exactly_as_memory_does(seed: int) -> None:
    on_sqlite = simulate.run_seed(seed, STEPS, backend="sqlite")
    assert on_sqlite.ok, f"seed {seed}: {on_sqlite.failure}"
    assert on_sqlite.log == simulate.run_seed(seed, STEPS, backend="memory").log


def test_sqlite_catches_a_planted_bug_with_its_seed() -> None:
    caught = simulate.run_seed(14, 200, backend="sqlite", plant=[SWEEPER_RACE])
    assert caught.failure is not None and caught.failure.invariant == "AUDIT_ORDER_CANCELLED_NOT_VOIDED"
