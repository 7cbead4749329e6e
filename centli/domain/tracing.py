"""The correlation id of the saga step running now, for every log line the step writes.

Pure standard library (a ``ContextVar``): the domain marks which order's
saga a piece of work belongs to, and the entrypoints' log setup stamps that
id on each line (``centli.entrypoints.logs``), whichever thread or request
happens to run the step.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_CURRENT: ContextVar[str | None] = ContextVar("centli_correlation_id", default=None)


@contextmanager
def correlation(correlation_id: str) -> Iterator[None]:
    """Everything logged inside belongs to ``correlation_id`` (nested scopes restore the outer one)."""
    token = _CURRENT.set(correlation_id or None)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current_correlation() -> str | None:
    return _CURRENT.get()
