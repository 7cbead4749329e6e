"""The hexagon's walls: the domain and the ports import only the standard library and each other."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import centli

PACKAGE = Path(centli.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Every absolute module a file imports, at any depth (lazy imports inside functions included)."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: use absolute imports"
            assert node.module is not None
            modules.add(node.module)
    return modules


def foreign_imports(root: Path, allowed: tuple[str, ...]) -> dict[str, set[str]]:
    """Per file under ``root``: imports outside the standard library and the ``allowed`` packages."""
    found: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        bad = {
            module
            for module in imported_modules(path)
            if module.split(".")[0] not in sys.stdlib_module_names
            and not any(module == a or module.startswith(a + ".") for a in allowed)
        }
        if bad:
            found[str(path.relative_to(root))] = bad
    return found


@pytest.mark.parametrize(
    ("layer", "allowed"),
    [
        ("domain", ("centli.domain", "centli.ports")),
        ("ports", ("centli.ports", "centli.domain")),
    ],
)
def test_layer_imports_only_the_standard_library_and_the_core(layer: str, allowed: tuple[str, ...]) -> None:
    assert list((PACKAGE / layer).rglob("*.py")), f"no files found under {layer}"
    assert foreign_imports(PACKAGE / layer, allowed) == {}


def test_the_check_catches_a_foreign_import(tmp_path: Path) -> None:
    (tmp_path / "sample.py").write_text(
        "import json\nfrom centli.ports import clock\n"
        "def f():\n    import boto3\n    from pydantic import BaseModel\n    from centli.adapters import memory\n"
    )
    assert foreign_imports(tmp_path, ("centli.domain", "centli.ports")) == {
        "sample.py": {"boto3", "pydantic", "centli.adapters"}
    }


def test_the_marketplace_does_not_load_core_banking() -> None:
    """The two bounded contexts share the idempotency rules (domain/idempotency.py), not each other's code."""
    import subprocess

    probe = "import sys, centli.domain.marketplace; print('centli.domain.banking' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout == "False\n"
