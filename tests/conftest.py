"""Shared fixtures: a deterministic application over any storage backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from centli.adapters.memory import ManualClock, SequentialIds
from centli.domain.application import Application, bootstrap
from centli.domain.loading import parse_bank_document
from centli.domain.policy import BankPolicy
from centli.entrypoints.demo import demo_bank
from tests.backends import Backend, backend_names, opener

CURSOR_SECRET = b"test-cursor-secret-0123456789"


@dataclass
class Bank:
    """An application wired to one backend, with a clock the test moves."""

    app: Application
    backend: Backend
    clock: ManualClock

    def settle(self) -> int:
        """Deliver every committed event (the saga) in-process."""
        return self.app.settle()


def make_bank(backend: Backend, document: dict[str, Any] | None = None, policy: BankPolicy | None = None) -> Bank:
    clock = ManualClock()
    app = bootstrap(backend.uow, clock, SequentialIds(), policy or BankPolicy(), CURSOR_SECRET, backend.outbox)
    backend.load(parse_bank_document(document or demo_bank(), clock.now()), None)
    return Bank(app, backend, clock)


@pytest.fixture
def bank_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(json.dumps(demo_bank()))
    return document


@pytest.fixture
def memory_bank(tmp_path: Path) -> Iterator[Bank]:
    with opener("memory")(tmp_path) as backend:
        yield make_bank(backend)


@pytest.fixture(params=backend_names())
def any_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Every storage backend in tests/backends, one after another."""
    with opener(request.param)(tmp_path) as backend:
        yield backend
