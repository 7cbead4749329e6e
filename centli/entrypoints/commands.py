"""The ``centli schemas`` and ``centli load`` subcommands (imported only when run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

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
