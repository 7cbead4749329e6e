"""The unit-of-work skeleton every store shares: buffer guarded writes, apply them in one commit."""

from __future__ import annotations

from types import TracebackType
from typing import Generic, Self, TypeVar

from centli.ports.faults import AFTER_COMMIT, BEFORE_COMMIT, FaultPoints

W = TypeVar("W")


class BufferedUnitOfWork(Generic[W]):
    """Collects write intents; ``commit()`` hands them to ``_apply`` in one atomic step.

    Idempotency and inbox guards are buffered with ``first=True`` and come
    before every other write, so a retry is recognised even when another
    guard of the same command would now fail. Leaving the ``with`` block
    without ``commit()`` discards everything.
    """

    def __init__(self) -> None:
        self._first: list[W] = []
        self._rest: list[W] = []

    def buffer(self, write: W, *, first: bool = False) -> None:
        (self._first if first else self._rest).append(write)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.rollback()

    def commit(self) -> None:
        writes = [*self._first, *self._rest]
        self.rollback()
        if not writes:
            return
        faults = self._fault_points()
        faults.check(BEFORE_COMMIT)
        self._apply(writes)
        faults.check(AFTER_COMMIT)

    def rollback(self) -> None:
        self._first = []
        self._rest = []

    def _fault_points(self) -> FaultPoints:
        raise NotImplementedError

    def _apply(self, writes: list[W]) -> None:
        """Apply every write atomically, or raise the first failing guard's error and write nothing."""
        raise NotImplementedError
