"""The ``centli`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="centli", description="CENTLI action groups")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="a scripted tour of the in-memory demo bank")
    schemas = commands.add_parser("schemas", help="regenerate the committed agent schemas")
    schemas.add_argument("--dir", type=Path, default=Path("schemas"), help="where the schemas live")
    schemas.add_argument("--check", action="store_true", help="fail when a committed schema is stale")
    load = commands.add_parser("load", help="load a bank document (JSON) into the configured backend")
    load.add_argument("file", type=Path)
    tables = commands.add_parser("tables", help="DynamoDB tables (AWS_ENDPOINT_URL is honoured)")
    tables_commands = tables.add_subparsers(dest="tables_command", required=True)
    tables_commands.add_parser("create", help="create every table, index and stream the template declares")
    audit = commands.add_parser(
        "audit", help="reconcile the configured store (exit 0 clean, 1 findings, 2 could not run)"
    )
    audit.add_argument("--json", action="store_true", help="the report as JSON")
    audit.add_argument(
        "--stale-minutes", type=float, default=15.0, help="a pending event older than this is a finding (default 15)"
    )
    trace = commands.add_parser("trace", help="the saga's timeline for an order, transfer or correlation id")
    trace.add_argument("id", help="an order id, transfer id, event id or correlation id")
    trace.add_argument("--json", action="store_true", help="the timeline as JSON")
    sim = commands.add_parser("simulate", help="the deterministic whole-system simulation (memory and SQLite)")
    sim.add_argument("--seed", type=int, default=1, help="the first seed (default 1)")
    sim.add_argument("--seeds", type=int, default=1, help="how many seeds from --seed (default 1)")
    sim.add_argument("--steps", type=int, default=200, help="steps per seed (default 200)")
    sim.add_argument(
        "--backend", action="append", choices=["memory", "sqlite"], help="repeat for both (default memory)"
    )
    sim.add_argument("--faults", default="default", help="'default', 'all' (adds clock skew) or a comma list")
    sim.add_argument("--plant", action="append", default=[], help=argparse.SUPPRESS)  # test-only bugs
    sim.add_argument("--verbose", action="store_true", help="print every step of each run")
    serve = commands.add_parser("serve", help="the local server: the action groups over HTTP")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--load-demo", action="store_true", help="load the demo bank first (idempotent)")
    serve.add_argument("--sweep-interval", type=float, default=30.0, help="seconds between sweeps of stuck orders")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from centli.entrypoints.demo import run_demo

        run_demo()
        return 0
    if args.command == "schemas":
        from centli.entrypoints.commands import schemas_command

        return schemas_command(args.dir, check=args.check)
    if args.command == "load":
        from centli.entrypoints.commands import load_command

        return load_command(args.file)
    if args.command == "audit":
        from centli.entrypoints.commands import audit_command

        return audit_command(as_json=args.json, stale_minutes=args.stale_minutes)
    if args.command == "trace":
        from centli.entrypoints.commands import trace_command

        return trace_command(args.id, as_json=args.json)
    if args.command == "simulate":
        from centli.entrypoints import simulate

        if args.steps < 1 or args.seeds < 1:
            parser.error("--steps and --seeds must be at least 1")
        if args.faults == "default":
            faults = simulate.DEFAULT_FAULTS
        elif args.faults == "all":
            faults = frozenset(simulate.ALL_FAULTS)
        else:
            faults = frozenset(f for f in args.faults.split(",") if f)
            if not faults <= set(simulate.ALL_FAULTS):
                parser.error(f"--faults: known faults are {', '.join(simulate.ALL_FAULTS)}")
        from centli.domain.planted import BUG_NAMES

        if not set(args.plant) <= set(BUG_NAMES):
            parser.error(f"--plant: one of {', '.join(BUG_NAMES)}")
        return simulate.simulate_command(
            args.seed, args.seeds, args.steps, args.backend or ["memory"], faults, args.plant, verbose=args.verbose
        )
    if args.command == "serve":
        from centli.entrypoints.local_server import serve as run_server

        return run_server(args.host, args.port, load_demo=args.load_demo, sweep_interval=args.sweep_interval)
    if args.command == "tables":
        return tables_create()
    parser.error(f"unknown command {args.command}")


def tables_create() -> int:
    """Create the DynamoDB tables from the definitions template.yaml also uses (boto3 loads only here)."""
    from centli.adapters.dynamodb import TableNames, make_dynamodb_client
    from centli.adapters.dynamodb.schema import create_tables

    names = TableNames.from_env()
    created = create_tables(make_dynamodb_client(), names)
    for _, name in names.items():
        print(f"{'created' if name in created else 'exists '} {name}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
