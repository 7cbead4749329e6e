"""Shared fixtures: a deterministic application over any storage backend; the session's least-privilege recorder."""

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
    clock = backend.clock  # the store stamps commits with the application's clock
    app = bootstrap(backend.uow, clock, SequentialIds(), policy or BankPolicy(), CURSOR_SECRET, backend.outbox)
    backend.load(parse_bank_document(document or demo_bank(), clock.now()), None)
    return Bank(app, backend, clock)


def hot_bank(users: int, opening: str) -> dict[str, Any]:
    """Customers u-0, u-1, ... with one account each (acc-N) and every other customer saved as a
    beneficiary (ben-N): few accounts, many writers, for concurrency tests."""
    ids = [f"u-{i}" for i in range(users)]
    return {
        "users": [{"user_id": u} for u in ids],
        "accounts": [{"user_id": u, "account_id": f"acc-{i}", "opening_balance": opening} for i, u in enumerate(ids)],
        "beneficiaries": [
            {"user_id": ids[i], "beneficiary_id": f"ben-{j}", "account_id": f"acc-{j}"}
            for i in range(users)
            for j in range(users)
            if i != j
        ],
    }


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


# Least privilege across the whole suite: every AWS call made inside a deployed function's handler, by any
# test, must be allowed by that function's policy in template.yaml (tests/integration/least_privilege.py).
_suite_recorder: list[Any] = []
_suite_problems: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    from tests.integration.least_privilege import SuiteRecorder, load_template

    recorder = SuiteRecorder(load_template())
    recorder.install()
    _suite_recorder.append(recorder)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _suite_recorder or exitstatus not in (0, 1):
        return
    _suite_problems[:] = _suite_recorder[0].check()
    if _suite_problems:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _suite_recorder or not _suite_recorder[0].requests:
        return
    recorder = _suite_recorder[0]
    calls = sum(len(requests) for requests in recorder.requests.values())
    terminalreporter.write_sep("-", f"least privilege: {calls} distinct calls of {len(recorder.requests)} functions")
    if _suite_problems:
        terminalreporter.write_sep("=", "least privilege: calls template.yaml does not allow", red=True)
        for problem in _suite_problems:
            terminalreporter.write_line(problem)
