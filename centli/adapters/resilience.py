"""Generic resilience for calls to a remote dependency: a circuit breaker and a jittered retry.

The breaker is per dependency and thread-safe. It is *closed* while calls
succeed; after ``failure_threshold`` consecutive failures it *opens* and every
call fails fast with :class:`DependencyUnavailable` (503) without touching the
dependency. After ``reset_timeout`` seconds it lets exactly one *half-open*
probe through: success closes it, failure opens it again. The clock is
injectable so tests move time by hand.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Literal, TypeVar

from centli.domain.backoff import jittered
from centli.domain.errors import DependencyUnavailable

T = TypeVar("T")
State = Literal["closed", "open", "half-open"]


def _always(_: BaseException) -> bool:
    return True


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or reset_timeout <= 0:
            raise ValueError("failure_threshold must be >= 1 and reset_timeout > 0")
        self.name = name
        self._threshold = failure_threshold
        self._reset_timeout = reset_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None  # None while closed
        self._probing = False  # the half-open probe is out

    @property
    def state(self) -> State:
        with self._lock:
            return self._state()

    def _state(self) -> State:
        if self._opened_at is None:
            return "closed"
        return "open" if self._clock() - self._opened_at < self._reset_timeout else "half-open"

    def call(self, operation: Callable[[], T], *, is_failure: Callable[[BaseException], bool] = _always) -> T:
        """Run ``operation`` through the breaker.

        An exception for which ``is_failure`` is False (a business answer such
        as a failed condition) proves the dependency is up and counts as a success.
        """
        probe = self._admit()
        try:
            result = operation()
        except BaseException as error:
            self._record(probe, failed=is_failure(error))
            raise
        self._record(probe, failed=False)
        return result

    def _admit(self) -> bool:
        """True when this call is the half-open probe; raises while open or while the probe is out."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return False
            if state == "open" or self._probing:
                raise DependencyUnavailable()
            self._probing = True
            return True

    def _record(self, probe: bool, *, failed: bool) -> None:
        """A success closes the circuit; a failure opens it at the threshold, or at once while probing."""
        with self._lock:
            if failed:
                self._failures += 1
                if probe or self._probing or self._failures >= self._threshold:
                    self._opened_at = self._clock()
            else:
                self._failures = 0
                self._opened_at = None
            self._probing = False  # whichever call reported, the half-open question is settled


def retry_with_jitter(
    operation: Callable[[], T],
    *,
    should_retry: Callable[[BaseException], bool],
    attempts: int = 4,
    base_delay: float = 0.01,
    max_delay: float = 0.25,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
) -> T:
    """Run ``operation`` up to ``attempts`` times, retrying what ``should_retry`` accepts after full-jitter backoff."""
    for attempt in range(attempts - 1):
        try:
            return operation()
        except Exception as error:
            if not should_retry(error):
                raise
        sleep(jittered(attempt, base_delay, max_delay, rng))
    return operation()
