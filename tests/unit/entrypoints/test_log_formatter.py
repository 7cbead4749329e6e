"""centli's log formatter writes exactly the line Powertools' own formatter writes, the short way or not."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from centli.entrypoints.logs import _LINE_JSON, LineFormatter, line_formatter


def powertools_formatter() -> LambdaPowertoolsFormatter:
    """Powertools' formatter with the options centli gives its own."""
    return LambdaPowertoolsFormatter(
        json_deserializer=str, json_serializer=_LINE_JSON.encode, use_rfc3339=True, utc=True, location=None
    )


def record(
    msg: object = "operation finished", args: Any = None, exc: bool = False, **extra: object
) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.getLogger("centli-test").makeRecord(
        "centli-test", logging.INFO, "/src/app.py", 12, msg, args, exc_info, "handler", extra or None
    )


def formatted_before() -> logging.LogRecord:
    """A record another handler's stdlib formatter saw first (pytest's caplog does): it set message and asctime."""
    made = record(operation="getBalance")
    logging.Formatter("%(asctime)s %(message)s").format(made)
    assert made.message and made.asctime
    return made


CASES: dict[str, logging.LogRecord] = {
    "a request's outcome": record(
        operation="getBalance", status=200, code="OK", duration_ms=1.23, user_ref="833a42e49c01"
    ),
    "no extra keys": record("background workers started"),
    "None, falsy and non-JSON values": record(
        a=None, b=0, c="", d=False, e=Decimal("1.10"), f=date(2026, 1, 2), g=["x", {"y": None}]
    ),
    "non-ASCII text": record("pago a Mamá", alias="Nómina ✓"),
    "extras named like Powertools' keys": record(
        stack_trace="extra", xray_trace_id="extra", exception="extra", exception_name="E", service="s"
    ),
    "formatted before by a stdlib formatter": formatted_before(),
    "a message that is JSON text": record('{"not": "parsed"}'),
    "a dict message": record({"event": "structured"}),
    "%-arguments": record("moved %s to %s", ("a", "b")),
    "an exception": record("failed", exc=True, operation="getBalance"),
}


@pytest.fixture(params=[None, "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"])
def trace_header(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str | None]:
    """Off Lambda, and in a traced invocation (Lambda sets the header per invocation)."""
    if request.param is None:
        monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    else:
        monkeypatch.setenv("_X_AMZN_TRACE_ID", request.param)
    yield request.param


@pytest.mark.parametrize("case", list(CASES))
def test_each_line_is_the_one_powertools_writes(case: str, trace_header: str | None) -> None:
    ours, theirs = line_formatter(), powertools_formatter()
    for formatter in (ours, theirs):
        formatter.append_keys(service="centli-core-banking", sampling_rate=None, deployment="local")
        formatter.thread_safe_append_keys(correlation_id="corr-1", action_group="core-banking", empty=None)
    try:
        expected = theirs.format(CASES[case])
        assert ours.format(CASES[case]) == expected
        assert ("xray_trace_id" in expected) == (trace_header is not None)
    finally:
        ours.thread_safe_clear_keys()


def test_a_template_it_does_not_fill_itself_goes_through_powertools() -> None:
    ours, theirs = line_formatter(), powertools_formatter()
    for formatter in (ours, theirs):
        formatter.append_keys(service="s", location="%(funcName)s:%(lineno)d")
    line = CASES["a request's outcome"]
    assert ours.format(line) == theirs.format(line)
    assert '"location":"handler:12"' in ours.format(line)


def test_every_centli_logger_uses_it() -> None:
    from centli.entrypoints.logs import service_logger

    assert isinstance(service_logger("centli-core-banking").registered_formatter, LineFormatter)
    assert isinstance(service_logger("centli").registered_formatter, LineFormatter)
