"""The ``centli`` command.

Errors a user can cause (a bad environment, a taken port, a missing file)
print one line and exit non-zero (2); nothing a user does prints a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (0 to 65535; 0 picks a free one)")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < 10**7:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return value


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="centli", description="CENTLI action groups")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="a scripted tour of the in-memory demo bank")
    schemas = commands.add_parser("schemas", help="regenerate the committed agent schemas")
    schemas.add_argument("--dir", type=Path, default=Path("schemas"), help="where the schemas live")
    schemas.add_argument("--check", action="store_true", help="fail when a committed schema is stale")
    schemas.add_argument(
        "--template",
        type=Path,
        default=Path("template.yaml"),
        help="the SAM template whose agent and gateway embed the schemas (skipped when missing)",
    )
    events = commands.add_parser("events", help="regenerate the example agent events in events/")
    events.add_argument("--dir", type=Path, default=Path("events"), help="where the events live")
    events.add_argument("--check", action="store_true", help="fail when a committed event is stale")
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
    sim.add_argument("--faults", default="default", help="'default' or 'all' (every fault, skew too) or a comma list")
    sim.add_argument("--plant", action="append", default=[], help=argparse.SUPPRESS)  # test-only bugs
    sim.add_argument("--verbose", action="store_true", help="print every step of each run")
    serve = commands.add_parser("serve", help="the local runtime: REST, agent events, the Lambda Invoke API")
    serve.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8080, help="TCP port (default 8080; 0 picks a free one)")
    serve.add_argument("--load-demo", action="store_true", help="load the demo bank first (idempotent)")
    serve.add_argument(
        "--sweep-interval", type=_seconds, default=30.0, help="seconds between sweeps of stuck orders (0: none)"
    )
    serve.add_argument("--mcp-user", help="serve /mcp (MCP over streamable HTTP) acting for this customer")
    serve.add_argument(
        "--mcp-confirm",
        choices=("auto", "url"),
        default="auto",
        help="how /mcp asks the customer to confirm a write: auto (in the client when it can, else the bank's "
        "page) or url (always the bank's page)",
    )
    serve.add_argument(
        "--confirm-seconds", type=_seconds, default=300.0, help="how long the customer has to confirm an MCP write"
    )
    mcp = commands.add_parser("mcp", help="the MCP server over stdio, acting for one customer")
    mcp.add_argument("--user", required=True, help="the customer every tool call acts for")
    mcp.add_argument("--load-demo", action="store_true", help="load the demo bank first (idempotent)")
    mcp.add_argument(
        "--confirm-seconds", type=_seconds, default=300.0, help="how long the customer has to confirm a write"
    )
    mcp.add_argument(
        "--sweep-interval", type=_seconds, default=30.0, help="seconds between sweeps of stuck orders (0: none)"
    )
    invoke = commands.add_parser("invoke", help="invoke a Lambda function with an event, like `sam local invoke`")
    invoke.add_argument("function", help="centli-core-banking, centli-marketplace or centli-sweeper (or ARN)")
    invoke.add_argument("--event", "-e", required=True, help="the event: a JSON file, or - for standard input")
    invoke.add_argument("--url", help="invoke through the Lambda Invoke API of a running server instead")
    sweep = commands.add_parser("sweep", help="run the sweeper once now: void purchases stuck PENDING")
    sweep.add_argument(
        "--stuck-after",
        type=_seconds,
        metavar="SECONDS",
        help="treat PENDING orders older than this as stuck (default: CENTLI_PURCHASE_TIMEOUT_SECONDS, 900)",
    )
    sweep.add_argument("--force", action="store_true", help="allow --stuck-after on the dynamodb backend")
    reset = commands.add_parser("reset", help="delete the local SQLite bank, so the next `make run` starts afresh")
    reset.add_argument("--yes", action="store_true", help="do not ask")
    agent = commands.add_parser(
        "agent", help="talk to the deployed Bedrock agent as a customer (confirmations included)"
    )
    agent.add_argument("--agent-id", required=True, help="the stack output AgentId")
    agent.add_argument("--alias-id", required=True, help="the stack output AgentAliasId")
    agent.add_argument("--user", required=True, help="the authenticated customer (sessionAttributes.user_id)")
    agent.add_argument("--session", required=True, help="the conversation id; reuse it to go on talking")
    decision = agent.add_mutually_exclusive_group()
    decision.add_argument("--yes", dest="confirm", action="store_const", const=True, help="confirm every write")
    decision.add_argument("--no", dest="confirm", action="store_const", const=False, help="deny every write")
    agent.add_argument("text", help="what the customer says")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        message = user_error(error)
        if message is None:
            raise
        print(f"centli {args.command}: {message}", file=sys.stderr)
        return 2


def user_error(error: Exception) -> str | None:
    """The one line for an error a user can fix, or None for a bug (which keeps its traceback)."""
    import sqlite3

    from centli.entrypoints.commands import CommandError
    from centli.entrypoints.settings import SettingsError

    if isinstance(error, SettingsError):
        return f"bad configuration: {error}"
    if isinstance(error, CommandError):
        return str(error)
    if isinstance(error, sqlite3.Error):
        return f"SQLite: {error}"
    if isinstance(error, OSError):
        return f"{error.strerror or error}{f': {error.filename}' if error.filename else ''}"
    return None


def run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from centli.entrypoints.demo import run_demo

        run_demo()
        return 0
    if args.command == "schemas":
        from centli.entrypoints.commands import schemas_command

        template = args.template if args.template.exists() else None
        return schemas_command(args.dir, check=args.check, template=template)
    if args.command == "agent":
        from centli.entrypoints.agent_chat import agent_command

        return agent_command(args.agent_id, args.alias_id, args.user, args.session, args.text, args.confirm)
    if args.command == "events":
        from centli.entrypoints.commands import events_command

        return events_command(args.dir, check=args.check)
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
            parser().error("--steps and --seeds must be at least 1")
        if args.faults == "default":
            faults = simulate.DEFAULT_FAULTS
        elif args.faults == "all":
            faults = frozenset(simulate.ALL_FAULTS)
        else:
            faults = frozenset(f for f in args.faults.split(",") if f)
            if not faults <= set(simulate.ALL_FAULTS):
                parser().error(f"--faults: known faults are {', '.join(simulate.ALL_FAULTS)}")
        from centli.domain.planted import BUG_NAMES

        if not set(args.plant) <= set(BUG_NAMES):
            parser().error(f"--plant: one of {', '.join(BUG_NAMES)}")
        return simulate.simulate_command(
            args.seed, args.seeds, args.steps, args.backend or ["memory"], faults, args.plant, verbose=args.verbose
        )
    if args.command == "serve":
        from centli.entrypoints.local_server import serve as run_server

        build_app = None
        if args.mcp_user is not None:
            from centli.entrypoints.mcp.server import app_with_mcp

            build_app = app_with_mcp(
                args.mcp_user,
                sweep_interval=args.sweep_interval,
                confirm_seconds=args.confirm_seconds,
                confirm_mode=args.mcp_confirm,
            )
        return run_server(
            args.host, args.port, load_demo=args.load_demo, sweep_interval=args.sweep_interval, build_app=build_app
        )
    if args.command == "mcp":
        from centli.entrypoints.mcp.server import run_stdio

        return run_stdio(
            args.user,
            load_demo=args.load_demo,
            confirm_seconds=args.confirm_seconds,
            sweep_interval=args.sweep_interval,
        )
    if args.command == "invoke":
        from centli.entrypoints.commands import invoke_command

        return invoke_command(args.function, args.event, url=args.url)
    if args.command == "sweep":
        from centli.entrypoints.commands import sweep_command

        return sweep_command(args.stuck_after, force=args.force)
    if args.command == "reset":
        from centli.entrypoints.commands import reset_command

        return reset_command(yes=args.yes)
    if args.command == "tables":
        return tables_create()
    raise AssertionError(f"unknown command {args.command}")


def tables_create() -> int:
    """Create the DynamoDB tables from the definitions template.yaml also uses (boto3 loads only here)."""
    from centli.adapters.dynamodb import make_dynamodb_client
    from centli.adapters.dynamodb.schema import create_tables
    from centli.entrypoints.settings import Settings

    settings = Settings.from_env()
    names = settings.table_names()
    created = create_tables(make_dynamodb_client(settings.aws_endpoint("dynamodb")), names)
    for _, name in names.items():
        print(f"{'created' if name in created else 'exists '} {name}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
