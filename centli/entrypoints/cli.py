"""The ``centli`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="centli", description="CENTLI action groups")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="a scripted tour of the in-memory demo bank")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from centli.entrypoints.demo import run_demo

        run_demo()
        return 0
    parser.error(f"unknown command {args.command}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
