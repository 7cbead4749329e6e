"""Cold start: the garbage collector pauses while long-lived objects are built.

Importing the handler module and building the application (settings, store,
the botocore client and its service model) allocate only what lives as long as
the process: modules, classes, functions, the client. The cyclic collector,
run on allocation counts, would scan all of it over and over and find nothing
to free; pausing it there is a measured part of a cold start
(docs/performance.md). Reference counting frees everything else as usual, and
the collector runs again right after.

The Lambda handler module then sets what its import built aside for good
(:func:`set_aside_imports`): one full collection, and everything still alive,
all reachable module state, is frozen out of the collector's later passes, so
no collection during a call scans it again.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


@contextmanager
def paused_collection() -> Iterator[None]:
    """No cyclic garbage collection inside (restored as it was, also on error)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def built_without_collection(build: Callable[P, T]) -> Callable[P, T]:
    """``build`` run with the collector paused (it builds long-lived objects only)."""

    @wraps(build)
    def paused(*args: P.args, **kwargs: P.kwargs) -> T:
        with paused_collection():
            return build(*args, **kwargs)

    return paused


def set_aside_imports() -> None:
    """Collect once, then freeze what is left (``gc.freeze``): module state that lives as long as the process.

    Frozen objects are still freed by reference counting; only the cyclic collector stops scanning them.
    The collection first means no garbage is frozen with them.
    """
    gc.collect()
    gc.freeze()
