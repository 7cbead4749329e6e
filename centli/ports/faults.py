"""Named fault points that a simulation or a test can hook to inject failures."""

from __future__ import annotations

from typing import Final, Protocol

#: Before a unit of work applies its writes: raising here means nothing was written.
BEFORE_COMMIT: Final = "uow.before_commit"
#: After the writes are durable but before the caller learns it: an ambiguous timeout.
AFTER_COMMIT: Final = "uow.after_commit"
#: Before a relay hands an event to the publisher.
BEFORE_PUBLISH: Final = "relay.before_publish"


class FaultPoints(Protocol):
    def check(self, point: str) -> None:
        """Return normally, or raise the fault planned for ``point``."""
        ...


class NoFaults:
    """The production default: no fault is ever injected."""

    def check(self, point: str) -> None:
        return None
