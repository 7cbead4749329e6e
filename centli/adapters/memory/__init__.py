"""In-memory adapters: the store, its unit of work, and test/simulation clocks and ids."""

from centli.adapters.memory.clock import ManualClock, SequentialIds
from centli.adapters.memory.store import InMemoryStore, InMemoryUnitOfWork

__all__ = ["InMemoryStore", "InMemoryUnitOfWork", "ManualClock", "SequentialIds"]
