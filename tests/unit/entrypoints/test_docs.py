"""The operator's error table lists every code an agent can receive, with its status."""

from __future__ import annotations

import re
from pathlib import Path

from centli.domain.errors import DomainError
from centli.entrypoints.pipeline import ResponseTooLarge

DOC = Path(__file__).resolve().parents[3] / "docs" / "operations.md"


def every_error() -> list[type[DomainError]]:
    found: list[type[DomainError]] = []
    queue: list[type[DomainError]] = [DomainError]
    while queue:
        cls = queue.pop()
        queue.extend(cls.__subclasses__())
        if cls.code != DomainError.code:
            found.append(cls)
    return found


def test_every_error_code_is_documented_with_its_status() -> None:
    table = {
        m.group(1): int(m.group(2)) for m in re.finditer(r"^\| `([A-Z_]+)` \| (\d{3}) \|", DOC.read_text("utf-8"), re.M)
    }
    codes = {cls.code: cls.status for cls in every_error()}
    assert ResponseTooLarge.code in codes
    assert {code: table.get(code) for code in codes} == codes
    assert table["INTERNAL_ERROR"] == 500
