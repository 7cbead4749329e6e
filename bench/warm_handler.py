"""Warm getBalance through our Lambda handler, next to a Powertools ``BedrockAgentResolver`` handler.

Both run in this process, on the memory backend, at log level INFO, calling
the same domain function (``BankingService.get_balance`` of the same
application) for the same OpenAPI-style event and writing one JSON log line
per call to the same sink (``/dev/null``). The Powertools handler is what a
team would write with the library instead of our one operation table: a
route, ``Query()`` validation (its default ``enable_validation=True``), the
answer as a dict, and one ``logger.info`` line.

Calls alternate in blocks so both share the machine's state; p50 and p99 of
per-call times, and the ratio ours / Powertools (target <= 1.0).

    PYTHONPATH=. .venv/bin/python bench/warm_handler.py [--calls 4000] [--markdown]
"""

# No `from __future__ import annotations`: Powertools resolves the route's annotations at run time.

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Annotated, Any

TARGET = 1.0
EVENT: dict[str, Any] = {
    "messageVersion": "1.0",
    "agent": {"name": "centli", "id": "AGENT", "alias": "live", "version": "1"},
    "inputText": "¿Cuál es mi saldo?",
    "sessionId": "session-1",
    "actionGroup": "core-banking",
    "apiPath": "/accounts/{account_id}/balance",
    "httpMethod": "GET",
    "parameters": [{"name": "account_id", "type": "string", "value": "acc-0001"}],
    "sessionAttributes": {"user_id": "u-ana"},
    "promptSessionAttributes": {},
}


class Context:
    """What Lambda passes every call: a request id (no client context outside AgentCore)."""

    aws_request_id = "c0ffee00-0000-4000-8000-000000000001"
    client_context = None
    function_name = "centli-core-banking"


CONTEXT = Context()
#: Powertools reads the braces of a templated apiPath as a path parameter that the event never fills, so its
#: route takes account_id as a query parameter (Bedrock's ``parameters``); the event differs only in apiPath.
POWERTOOLS_EVENT: dict[str, Any] = {**EVENT, "apiPath": "/accounts/balance"}


def handlers() -> tuple[Callable[[dict[str, Any], Any], Any], Callable[[dict[str, Any], Any], Any]]:
    os.environ["CENTLI_BACKEND"] = "memory"
    os.environ["CENTLI_LOG_LEVEL"] = "INFO"
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "bench")
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.event_handler import BedrockAgentResolver
    from aws_lambda_powertools.event_handler.openapi.params import Query

    from centli.entrypoints.aws_lambda import container, core_banking_handler

    application = container.application()
    logger = Logger(service="powertools-bench", level="INFO")
    app = BedrockAgentResolver()

    @app.get("/accounts/balance", description="The balance of one of the customer's accounts.")
    def get_balance(account_id: Annotated[str, Query(max_length=64)]) -> dict[str, str]:
        user_id = app.current_event.session_attributes["user_id"]
        account = application.banking.get_balance(user_id, account_id)
        return {
            "account_id": account.account_id,
            "currency": account.currency,
            "balance": account.balance.to_decimal_string(),
        }

    def powertools_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        started = time.perf_counter()
        answer: dict[str, Any] = app.resolve(event, context)
        logger.info(
            "operation finished",
            extra={"operation": "getBalance", "status": 200, "duration_ms": (time.perf_counter() - started) * 1000},
        )
        return answer

    ours = core_banking_handler(dict(EVENT), CONTEXT)
    theirs = powertools_handler(dict(POWERTOOLS_EVENT), CONTEXT)
    assert ours["response"]["httpStatusCode"] == 200, ours
    assert theirs["response"]["httpStatusCode"] == 200, theirs
    return core_banking_handler, powertools_handler


def measure(calls: int, block: int = 100) -> dict[str, dict[str, float]]:
    sink = open(os.devnull, "w")  # noqa: SIM115 - both loggers write here for the whole run
    real_stdout, sys.stdout = sys.stdout, sink  # Powertools binds its stream when a Logger is made
    try:
        ours, theirs = handlers()
        samples: dict[str, list[float]] = {"ours": [], "powertools": []}
        subjects = {"ours": (ours, EVENT), "powertools": (theirs, POWERTOOLS_EVENT)}
        for _ in range(200):  # warm both
            for fn, template in subjects.values():
                fn(dict(template), CONTEXT)
        for _ in range(max(1, calls // block)):
            for name, (fn, template) in subjects.items():
                for _ in range(block):
                    event = dict(template)
                    started = time.perf_counter_ns()
                    fn(event, CONTEXT)
                    samples[name].append((time.perf_counter_ns() - started) / 1000)
    finally:
        sys.stdout = real_stdout
        sink.close()
    return {
        name: {
            "p50": statistics.median(values),
            "p99": statistics.quantiles(values, n=100)[98],
        }
        for name, values in samples.items()
    }


def markdown(result: dict[str, dict[str, float]], calls: int) -> str:
    ours, theirs = result["ours"], result["powertools"]
    ratio = ours["p50"] / theirs["p50"]
    return "\n".join(
        [
            "## Warm getBalance: our handler vs a Powertools BedrockAgentResolver handler",
            "",
            f"Memory backend, log level INFO, one JSON log line per call each, {calls} calls each, alternating "
            "blocks (`bench/warm_handler.py`). Ratios to the Powertools handler.",
            "",
            "| handler | p50 × Powertools | p99 × Powertools |",
            "|---|---|---|",
            "| Powertools `BedrockAgentResolver` + one `logger.info` | 1.00 | "
            f"{theirs['p99'] / theirs['p50']:.2f} (its own p99 / p50) |",
            f"| centli `core_banking_handler` | **{ratio:.2f}** | {ours['p99'] / theirs['p99']:.2f} |",
            "",
            f"Target p50 ≤ {TARGET}×: **{'met' if ratio <= TARGET else 'NOT met'}**.",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    result = measure(args.calls)
    print(markdown(result, args.calls))
    if not args.markdown:
        for name, figures in result.items():
            print(f"{name}: p50 {figures['p50']:.1f} us, p99 {figures['p99']:.1f} us", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
