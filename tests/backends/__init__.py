"""Storage backends under test: every module here opens one for the contract suite.

A backend module defines ``open_backend(workdir: pathlib.Path) -> ContextManager[Backend]``.
The contract suite (tests/contract) runs unchanged against every module found.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from centli.adapters.memory.clock import ManualClock
from centli.domain.loading import BankData, LoadReport, Progress
from centli.ports.messaging import OutboxReader
from centli.ports.unit_of_work import UnitOfWorkFactory


@dataclass
class Backend:
    name: str
    uow: UnitOfWorkFactory
    load: Callable[[BankData, Progress | None], LoadReport]
    #: Where committed events wait (on AWS a stream relays DynamoDB's; its store still reads them).
    outbox: OutboxReader
    #: The store's clock: what a commit stamps its transfers with (the application shares it).
    clock: ManualClock = field(default_factory=ManualClock)
    #: Backend-specific handles a test may inspect (a client, a connection).
    extras: dict[str, Any] = field(default_factory=dict)


BackendOpener = Callable[[Path], AbstractContextManager[Backend]]


def backend_names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def opener(name: str) -> BackendOpener:
    module = importlib.import_module(f"{__name__}.{name}")
    open_backend: BackendOpener = module.open_backend
    return open_backend
