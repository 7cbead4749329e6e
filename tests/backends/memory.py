from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from centli.adapters.memory import InMemoryStore, ManualClock
from tests.backends import Backend


@contextmanager
def open_backend(workdir: Path) -> Iterator[Backend]:
    clock = ManualClock()
    store = InMemoryStore(clock=clock)
    yield Backend("memory", store.unit_of_work, store.load, store, clock, {"store": store})
