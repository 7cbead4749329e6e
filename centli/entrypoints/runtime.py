"""The one runtime behind every entrypoint: the container, "run this call", and the sweep.

The Lambda handlers, the local server and the MCP server all come here to run
an operation: execute it, deliver the saga in-process after a successful write
(local backends), and write the one outcome log line. The sweep is written here
once as well. The container is built at module scope, one per process; the
application behind it is built on the first real call.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from aws_lambda_powertools import Logger

from centli.domain.messagebus import OutboxRelay, OverdueOutbox
from centli.entrypoints.container import Container
from centli.entrypoints.logs import bind, service_logger, unbind, user_ref
from centli.entrypoints.pipeline import AgentCall, Outcome, execute

container = Container()

#: How long the outbox stream relay has to publish an event before the sweeper publishes it again.
STREAM_RELAY_GRACE: Final = timedelta(minutes=5)
#: Batches of overdue events the sweeper publishes per run (10 events each).
REPUBLISH_BATCHES: Final = 20


def run(call: AgentCall, action_group: str | None, *, service: str, agent_format: str | None = None) -> Outcome:
    """Execute one call, settle the saga after a successful write, and log the outcome; never raises
    for a domain or validation failure (see :func:`execute`)."""
    logger = service_logger(service)
    started = time.perf_counter()
    bind(
        logger, correlation_id=call.correlation_id, action_group=action_group, agent_format=agent_format or call.format
    )
    try:
        outcome = execute(container.application(), call, action_group)
        if outcome.result.status == 200 and outcome.operation is not None and outcome.operation.write:
            settle()
        log_outcome(logger, call, outcome, started)
        return outcome
    finally:
        unbind(logger)


def settle() -> None:
    """Local backends deliver the saga in-process after a write; on AWS the outbox stream does it."""
    try:
        container.application().settle()
    except Exception:
        service_logger("centli").exception("in-process event delivery failed")


def log_outcome(logger: Logger, call: AgentCall, outcome: Outcome, started: float) -> None:
    fields = {
        "operation": outcome.operation.operation_id if outcome.operation else None,
        "status": outcome.result.status,
        "code": outcome.code,
        "duration_ms": elapsed_ms(started),
        "user_ref": user_ref(call.user_id),
    }
    if outcome.result.status >= 500:
        logger.error("operation failed", extra=fields)
    elif outcome.result.status in (401, 403):
        logger.warning("operation refused", extra=fields)
    else:
        logger.info("operation finished", extra=fields)


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


@dataclass(frozen=True, slots=True)
class SweepReport:
    voided: int
    republished: int
    #: Orders found PENDING past the purchase timeout (voided, or their decision published again).
    stuck: int = 0


def sweep() -> SweepReport:
    """Compensate orders stuck past the timeout and deliver what that produced.

    Locally the in-process relay delivers it; on AWS (no in-process outbox) the
    sweeper also publishes outbox events the stream relay never delivered.
    Failures stay pending for the next run: nothing is dead-lettered from here.
    """
    app = container.application()
    stuck = app.sweep_report()
    republished = 0
    if container.outbox() is None:
        overdue = OverdueOutbox(container.store(), container.clock(), STREAM_RELAY_GRACE)
        relay = OutboxRelay(overdue, container.event_publisher(), max_attempts=sys.maxsize)
        for _ in range(REPUBLISH_BATCHES):
            moved = relay.relay_once()
            if moved == 0:
                break
            republished += moved
    return SweepReport(stuck.voided, republished, stuck.stuck)
