from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from centli.adapters.memory import ManualClock
from centli.adapters.sqlite import SqliteStore
from tests.backends import Backend


@contextmanager
def open_backend(workdir: Path) -> Iterator[Backend]:
    path = workdir / "sqlite" / "centli.db"
    clock = ManualClock()
    store = SqliteStore(path, synchronous="NORMAL", clock=clock)  # tests need no power-loss durability
    try:
        yield Backend("sqlite", store.unit_of_work, store.load, store, clock, {"store": store, "path": path})
    finally:
        store.close()
