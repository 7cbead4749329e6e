"""The ``centli schemas``, ``load``, ``audit`` and ``trace`` subcommands (imported only when run)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

DEFAULT_SCHEMA_DIR = Path("schemas")


def schemas_command(directory: Path = DEFAULT_SCHEMA_DIR, *, check: bool = False, out: TextIO = sys.stdout) -> int:
    """Regenerate the committed agent schemas; with ``check``, fail (1) when any is stale instead."""
    from centli.entrypoints import schemas

    if check:
        stale = schemas.stale(directory)
        for name in stale:
            print(f"stale: {directory / name} (run `centli schemas`)", file=out)
        breaches = schemas.platform_breaches(directory)
        for breach in breaches:
            print(f"over a platform limit: {breach}", file=out)
        return 1 if stale or breaches else 0
    breaches = schemas.platform_breaches()
    for breach in breaches:
        print(f"over a platform limit: {breach}", file=out)
    if breaches:
        return 1  # never write a schema the console or the API would refuse
    changed = schemas.write(directory)
    print(f"{len(changed)} schema file(s) updated in {directory}", file=out)
    return 0


def load_command(path: Path, *, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Load a bank document into the configured backend, showing progress on a terminal."""
    from centli.domain.errors import InvalidInput
    from centli.domain.loading import parse_bank_document
    from centli.entrypoints.container import Container

    container = Container()
    try:
        document = json.loads(path.read_text("utf-8"))
        if not isinstance(document, dict):
            raise InvalidInput("the document must be a JSON object")
        data = parse_bank_document(document, container.clock().now())
    except (OSError, ValueError, InvalidInput) as error:
        print(f"centli load: {path}: {error}", file=err)
        return 2
    interactive = err.isatty()

    def progress(done: int, total: int) -> None:
        if interactive:
            print(f"\rloading {done}/{total} records", end="", file=err, flush=True)

    report = container.store().load(data, progress)
    if interactive:
        print(file=err)
    backend = container.settings().backend
    print(
        f"loaded into {backend}: {report.accounts} accounts, {report.beneficiaries} beneficiaries, "
        f"{report.products} products",
        file=out,
    )
    return 0


def _progress_printer(err: TextIO) -> Callable[[str, int], None] | None:
    """Progress on a terminal only (stderr), so redirected output stays clean."""
    if not err.isatty():
        return None

    def progress(what: str, count: int) -> None:
        print(f"\rreading {what}: {count} records ", end="", file=err, flush=True)

    return progress


def audit_command(
    *, as_json: bool = False, stale_minutes: float = 15.0, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Reconcile the configured store: 0 when clean, 1 with findings, 2 when the audit could not run."""
    out = out or sys.stdout
    err = err or sys.stderr
    from datetime import timedelta

    from centli.domain.audit import AuditOptions, audit
    from centli.entrypoints.container import Container
    from centli.entrypoints.settings import SettingsError

    if stale_minutes <= 0:
        print("centli audit: --stale-minutes must be greater than zero", file=err)
        return 2
    container = Container()
    try:
        store = container.store()
        progress = _progress_printer(err)
        snapshot = store.audit_snapshot(progress)
        if progress is not None:
            print(file=err)
    except (SettingsError, OSError) as error:
        print(f"centli audit: {error}", file=err)
        return 2
    except Exception as error:  # the store is unreachable: say so, never claim it clean or not
        print(f"centli audit: could not read the store: {type(error).__name__}: {error}", file=err)
        return 2
    report = audit(snapshot, container.clock().now(), AuditOptions(stale_after=timedelta(minutes=stale_minutes)))
    backend = container.settings().backend
    if as_json:
        print(json.dumps({"backend": backend, **report.to_dict()}, indent=2, sort_keys=True), file=out)
    else:
        print(render_audit(backend, report.to_dict()), file=out)
    return 0 if report.clean else 1


def render_audit(backend: str, report: dict[str, Any]) -> str:
    summary = report["summary"]
    lines = [
        f"centli audit ({backend}) at {report['checked_at']}: {'CLEAN' if report['clean'] else 'FINDINGS'}",
        f"  accounts {summary['accounts']}, entries {summary['entries']}, transfers {summary['transfers']}, "
        f"orders {summary['orders']}, idempotency records {summary['idempotency_records']}",
        f"  events {summary['events']}, pending {summary['pending_events']}"
        + (
            f" (oldest {summary['oldest_pending_age_seconds']} s)"
            if summary["oldest_pending_age_seconds"] is not None
            else ""
        ),
        f"  balances (minor units) {summary['balances_minor']}; in transit to sellers {summary['in_transit']}",
    ]
    for finding in report["findings"]:
        lines.append(f"{finding['code']} {finding['subject']}: {finding['message']} {json.dumps(finding['details'])}")
    return "\n".join(lines)


def trace_command(subject: str, *, as_json: bool = False, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Print the saga's timeline for an order, transfer or correlation id: 0 found, 1 nothing found, 2 could not run."""
    from centli.domain.trace import render, trace
    from centli.entrypoints.container import Container
    from centli.entrypoints.settings import SettingsError

    out = out or sys.stdout
    err = err or sys.stderr
    if not subject.strip():
        print("centli trace: give an order, transfer or correlation id", file=err)
        return 2
    container = Container()
    try:
        store = container.store()
        result = trace(subject.strip(), store, store.unit_of_work)
    except (SettingsError, OSError) as error:
        print(f"centli trace: {error}", file=err)
        return 2
    except Exception as error:  # the store is unreachable: say so
        print(f"centli trace: could not read the store: {type(error).__name__}: {error}", file=err)
        return 2
    if as_json:
        print(json.dumps(result.to_dict(), indent=2, sort_keys=True), file=out)
    else:
        print(render(result) if result.found else f"nothing found for {subject.strip()}", file=out)
    return 0 if result.found else 1
