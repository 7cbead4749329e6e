"""The ``centli schemas``, ``load``, ``audit`` and ``trace`` subcommands (imported only when run)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

DEFAULT_SCHEMA_DIR = Path("schemas")


def schemas_command(
    directory: Path = DEFAULT_SCHEMA_DIR,
    *,
    check: bool = False,
    template: Path | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Regenerate the committed agent schemas (and the blocks of ``template`` that embed them);
    with ``check``, fail (1) when any is stale instead."""
    from centli.entrypoints import schemas

    if check:
        stale = [str(directory / name) for name in schemas.stale(directory)]
        if template is not None and schemas.template_is_stale(template):
            stale.append(str(template))
        for name in stale:
            print(f"stale: {name} (run `centli schemas`)", file=out)
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
    if template is not None and schemas.write_template(template):
        print(f"{template}: schema blocks updated", file=out)
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


class CommandError(Exception):
    """Something the user can fix: ``centli`` prints it as one line and exits 2."""


def events_command(directory: Path, *, check: bool = False, out: TextIO = sys.stdout) -> int:
    """Regenerate the example agent events; with ``check``, fail (1) when any is stale instead."""
    from centli.entrypoints import examples

    if check:
        stale = examples.stale(directory)
        for name in stale:
            print(f"stale: {directory / name} (run `centli events`)", file=out)
        return 1 if stale else 0
    changed = examples.write(directory)
    print(f"{len(changed)} event file(s) updated in {directory}", file=out)
    return 0


def read_event(source: str) -> Any:
    """The JSON event in a file, or on standard input for ``-``."""
    text = sys.stdin.read() if source == "-" else Path(source).read_text("utf-8")
    try:
        return json.loads(text)
    except ValueError as error:
        raise CommandError(f"{'standard input' if source == '-' else source} is not JSON: {error}") from None


def invoke_command(function_name: str, source: str, *, url: str | None = None, out: TextIO = sys.stdout) -> int:
    """Invoke a function with an event, in this process or through a server's Invoke API; 1 on a function error."""
    from centli.entrypoints.lambda_functions import FUNCTIONS, find_function, invoke, split_wrapped_event

    event, custom = split_wrapped_event(read_event(source))
    if url is not None:
        payload, function_error = _invoke_url(url, function_name, event, custom)
    else:
        function = find_function(function_name)
        if function is None:
            known = ", ".join(f.name for f in FUNCTIONS)
            raise CommandError(f"no function {function_name!r} here; try one of {known} (or an ARN or logical id)")
        with contextlib.redirect_stdout(sys.stderr):  # the function's log lines; its answer alone goes to out
            result = invoke(function, event, custom)
        payload, function_error = result.payload, result.function_error
    try:
        print(json.dumps(json.loads(payload), indent=2, ensure_ascii=False), file=out)
    except ValueError:
        print(payload.decode("utf-8", "replace"), file=out)
    return 1 if function_error else 0


def _invoke_url(url: str, function_name: str, event: Any, custom: dict[str, Any] | None) -> tuple[bytes, str | None]:
    import base64

    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    client = boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="local",  # signed, as boto3 always does; the local server does not verify it
        aws_secret_access_key="local",  # noqa: S106
        config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=120),
    )
    arguments: dict[str, Any] = {"FunctionName": function_name, "Payload": json.dumps(event).encode("utf-8")}
    if custom is not None:
        arguments["ClientContext"] = base64.b64encode(json.dumps({"custom": custom}).encode()).decode()
    try:
        response = client.invoke(**arguments)
    except EndpointConnectionError:
        raise CommandError(f"cannot reach {url} (is `make run` running?)") from None
    except ClientError as error:
        problem = error.response.get("Error", {})
        raise CommandError(f"{problem.get('Code', 'error')}: {problem.get('Message', '')}") from None
    except (BotoCoreError, ValueError) as error:
        raise CommandError(f"cannot invoke through {url}: {error}") from None
    payload: bytes = response["Payload"].read()
    return payload, response.get("FunctionError")


def sweep_command(stuck_after: float | None, *, force: bool = False, out: TextIO = sys.stdout) -> int:
    """Run the sweeper once; ``stuck_after`` seconds replaces the purchase timeout for this run."""
    from dependency_injector import providers

    from centli.entrypoints import runtime

    settings = runtime.container.settings()
    if stuck_after is not None:
        if settings.backend == "dynamodb" and not force:
            raise CommandError(
                "--stuck-after voids customers' purchases that are still being paid; on the dynamodb backend "
                "add --force if that is really what you want"
            )
        runtime.container.settings.override(
            providers.Object(dataclasses.replace(settings, purchase_timeout_seconds=int(stuck_after)))
        )
    report = runtime.sweep()
    print(
        f"swept ({settings.backend}): {report.voided} stuck order(s) voided, "
        f"{report.republished} overdue event(s) published",
        file=out,
    )
    return 0


def reset_command(*, yes: bool = False, out: TextIO = sys.stdout) -> int:
    """Delete the local SQLite bank (the file and its WAL), so the next ``make run`` starts afresh."""
    from centli.entrypoints.settings import Settings

    settings = Settings.from_env()
    if settings.backend != "sqlite":
        raise CommandError(f"reset deletes the local SQLite bank; CENTLI_BACKEND is {settings.backend}")
    database = Path(settings.sqlite_path)
    files = [p for p in (database, Path(f"{database}-wal"), Path(f"{database}-shm")) if p.exists()]
    if not files:
        print(f"nothing to reset: {database} does not exist", file=out)
        return 0
    if not yes:
        if not sys.stdin.isatty():
            raise CommandError(f"add --yes to delete {database}")
        answer = input(f"Delete {database} with every balance, transfer and order in it? Stop the server first. [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("kept", file=out)
            return 1
    for path in files:
        path.unlink()
    print(f"deleted {database}; the next `make run` loads the demo bank afresh", file=out)
    return 0
