"""Lambda handlers of the two action groups, for every agent format.

The container is created at module scope; the application behind it (settings,
store, clients) is built on the first real call, so a warm-up or a cold start
pays only for the imports. Nothing raises out of a handler: every event gets a
well-formed answer in its own format.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger

from centli.adapters.bedrock.events import (
    AGENTCORE,
    OPENAPI,
    AgentCall,
    AgentResult,
    detect_format,
    error_body,
    parse_event,
    render,
)
from centli.entrypoints.container import Container
from centli.entrypoints.logs import bind, service_logger, unbind, user_ref
from centli.entrypoints.operations import CORE_BANKING, MARKETPLACE, Outcome, execute

container = Container()
_INTERNAL = AgentResult(500, error_body("INTERNAL_ERROR", "Something went wrong on our side. Please try again later."))


def is_warmup(event: object, context: object) -> bool:
    return isinstance(event, Mapping) and event.get("source") == "warmup" and detect_format(event, context) != AGENTCORE


def handle(event: object, context: object, action_group: str) -> dict[str, Any]:
    """Parse, execute and render one call of ``action_group``."""
    if is_warmup(event, context):
        return {"warmed": True}
    logger = service_logger(f"centli-{action_group}")
    started = time.perf_counter()
    call: AgentCall | None = None
    try:
        settings = container.settings()
        call = parse_event(event, context, identity_secret=settings.identity_secret_bytes())
        bind(logger, correlation_id=call.correlation_id, action_group=action_group, agent_format=call.format)
        outcome = execute(container.application(), call, action_group)
        if outcome.result.status == 200 and outcome.operation is not None and outcome.operation.write:
            _settle()
        _log_outcome(logger, call, outcome, started)
        return render(call, outcome.result)
    except Exception:
        if call is None:
            bind(logger, correlation_id=getattr(context, "aws_request_id", None) or "unknown")
        logger.exception("invocation failed", extra={"duration_ms": _elapsed_ms(started)})
        try:
            # Without settings there is no identity secret, but the format and echo fields still parse.
            return render(call or parse_event(event, context), _INTERNAL)
        except Exception:
            return render(_fallback_call(action_group), _INTERNAL)
    finally:
        unbind(logger)


def core_banking_handler(event: object, context: object) -> dict[str, Any]:
    return handle(event, context, CORE_BANKING)


def marketplace_handler(event: object, context: object) -> dict[str, Any]:
    return handle(event, context, MARKETPLACE)


def _settle() -> None:
    """Local backends deliver the saga in-process after a write; on AWS the outbox stream does it."""
    try:
        container.application().settle()
    except Exception:
        service_logger("centli").exception("in-process event delivery failed")


def _log_outcome(logger: Logger, call: AgentCall, outcome: Outcome, started: float) -> None:
    fields = {
        "operation": outcome.operation.operation_id if outcome.operation else None,
        "status": outcome.result.status,
        "code": outcome.code,
        "duration_ms": _elapsed_ms(started),
        "user_ref": user_ref(call.user_id),
    }
    if outcome.result.status >= 500:
        logger.error("operation failed", extra=fields)
    elif outcome.result.status in (401, 403):
        logger.warning("operation refused", extra=fields)
    else:
        logger.info("operation finished", extra=fields)


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _fallback_call(action_group: str) -> AgentCall:
    return AgentCall(OPENAPI, None, "", "", action_group, {}, None, "", "", "")
