"""The whole-system simulation: replayable, quiet on a healthy system, and it catches three planted bugs."""

from __future__ import annotations

import pytest

from centli.domain.planted import PARTIAL_PUBLISH, PLANTED, REPLAY_AFTER_CRASH, SWEEPER_RACE
from centli.entrypoints import simulate
from centli.entrypoints.cli import main

#: CI's fixed budget on memory (SQLite's is in tests/integration/test_simulation_sqlite.py).
CI_SEEDS = range(1, 11)
STEPS = 200


def test_one_seed_replays_identically() -> None:
    first = simulate.run_seed(7, STEPS)
    second = simulate.run_seed(7, STEPS)
    assert first.ok, first.failure
    assert first.log == second.log and first.digest == second.digest
    assert first.faults_fired > 0  # the run did meet faults
    assert simulate.run_seed(8, STEPS).digest != first.digest


@pytest.mark.parametrize("seed", CI_SEEDS)
def test_a_healthy_system_holds_every_invariant(seed: int) -> None:
    result = simulate.run_seed(seed, STEPS)
    assert result.ok, f"seed {seed}: {result.failure}"


@pytest.mark.parametrize(
    ("bug", "seed", "invariant"),
    [
        # a replay after a crash between commit and acknowledgement commits again
        (REPLAY_AFTER_CRASH, 1, "KEY_COMMITTED_TWICE"),
        # a sweeper void racing a payment, so both take effect
        (SWEEPER_RACE, 14, "AUDIT_ORDER_CANCELLED_NOT_VOIDED"),
        # a partial publish whose lost half is never retried
        (PARTIAL_PUBLISH, 1, "EVENT_LOST"),
    ],
)
def test_each_planted_bug_is_caught_with_its_seed(bug: str, seed: int, invariant: str) -> None:
    caught = simulate.run_seed(seed, STEPS, plant=[bug])
    assert caught.failure is not None and caught.failure.invariant == invariant
    again = simulate.run_seed(seed, STEPS, plant=[bug])
    assert (again.failed_step, again.digest) == (caught.failed_step, caught.digest)  # the seed replays the catch
    assert simulate.run_seed(seed, STEPS).ok  # the same seed without the bug holds
    assert not (
        PLANTED.replay_after_crash_commits_again
        or PLANTED.sweeper_voids_without_fence
        or PLANTED.relay_drops_partial_failures
    )


def test_clock_skew_is_a_normal_fault_and_statements_stay_in_time_order() -> None:
    """Issue 8 fixed: a commit stamps its transfer at commit, never before the previous entry, so a
    skewed clock no longer makes AUDIT_TIME_WENT_BACKWARDS (this seed found it before the fix)."""
    assert simulate.DEFAULT_FAULTS == frozenset(simulate.ALL_FAULTS)
    result = simulate.run_seed(1, STEPS)
    assert result.ok, result.failure
    assert any(" skew=-" in line for line in result.log)  # the clock really ran late


def test_the_command_reports_the_seed_and_seeds_per_minute(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--seed", "1", "--seeds", "2", "--steps", "50"]) == 0
    out = capsys.readouterr().out
    assert "seed 1 on memory: ok" in out and "seed 2 on memory: ok" in out and "seeds/minute" in out
    assert main(["simulate", "--seed", "1", "--steps", str(STEPS), "--plant", REPLAY_AFTER_CRASH]) == 1
    out = capsys.readouterr().out
    assert "FAILED seed 1 on memory at step" in out and "KEY_COMMITTED_TWICE" in out
    assert f"centli simulate --seed 1 --steps {STEPS} --backend memory --plant {REPLAY_AFTER_CRASH}" in out


def test_the_command_refuses_bad_arguments() -> None:
    for argv in (["simulate", "--steps", "0"], ["simulate", "--faults", "gremlins"], ["simulate", "--plant", "x"]):
        with pytest.raises(SystemExit) as usage:
            main(argv)
        assert usage.value.code == 2
    with pytest.raises(ValueError, match="memory or sqlite"):
        simulate.Simulation(1, "dynamodb")
