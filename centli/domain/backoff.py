"""The one exponential backoff: with full jitter for retries of a call, without for the sweeper's schedule."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

Delay = TypeVar("Delay", float, timedelta)


def exponential(attempt: int, base: Delay, cap: Delay) -> Delay:
    """``base * 2**attempt``, at most ``cap`` (attempt 0 waits ``base``); never overflows, however many attempts."""
    delay = base
    for _ in range(attempt):
        if delay >= cap:
            break
        delay = delay * 2
    return min(cap, delay)


def jittered(attempt: int, base: float, cap: float, rng: Callable[[], float] = random.random) -> float:
    """Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): uniform in [0, exponential)."""
    return rng() * exponential(attempt, base, cap)
