"""Three subtle bugs, planted behind switches that only the simulation's tests set.

``centli simulate`` must catch each of them with its seed (tests/unit/test_simulation.py).
The code consults a switch at the exact spot where the bug would live; every
switch is off unless :func:`planted` turns one on for the length of a run.
A normal run, a Lambda or the local server never sets one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

#: Command-line names of the bugs (``centli simulate --plant NAME``).
REPLAY_AFTER_CRASH = "replay-after-crash"
SWEEPER_RACE = "sweeper-race"
PARTIAL_PUBLISH = "partial-publish"


@dataclass
class PlantedBugs:
    #: A transfer retried after its commit crashed before the caller heard back commits a second time.
    replay_after_crash_commits_again: bool = False
    #: The sweeper voids a stuck order after *reading* that its payment is undecided, without claiming
    #: the payment fence, so a payment arriving later also takes effect.
    sweeper_voids_without_fence: bool = False
    #: The relay marks a whole batch published when the publisher reports only part of it failed.
    relay_drops_partial_failures: bool = False
    #: (user_id, key) of transfers whose commit raised (bug 1's memory of "failed" attempts).
    crashed_keys: set[tuple[str, str]] = field(default_factory=set)


PLANTED = PlantedBugs()

_SWITCHES = {
    REPLAY_AFTER_CRASH: "replay_after_crash_commits_again",
    SWEEPER_RACE: "sweeper_voids_without_fence",
    PARTIAL_PUBLISH: "relay_drops_partial_failures",
}
BUG_NAMES = tuple(_SWITCHES)


@contextmanager
def planted(*names: str) -> Iterator[None]:
    """Turn the named bugs on for the block (tests and ``centli simulate --plant`` only)."""
    unknown = set(names) - set(_SWITCHES)
    if unknown:
        raise ValueError(f"no planted bug named {sorted(unknown)}; known: {', '.join(BUG_NAMES)}")
    try:
        for name in names:
            setattr(PLANTED, _SWITCHES[name], True)
        yield
    finally:
        for switch in _SWITCHES.values():
            setattr(PLANTED, switch, False)
        PLANTED.crashed_keys.clear()
