"""Lambda handlers of the two action groups, for every agent format.

The container is created at module scope; the application behind it (settings,
store, clients) is built on the first real call, so a warm-up or a cold start
pays only for the imports. Nothing raises out of an action-group handler: every
event gets a well-formed answer in its own format. The saga's handlers (outbox
relay, saga steps, sweeper) do raise on failure, so their triggers retry and
finally dead-letter.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from centli.entrypoints.coldstart import paused_collection, set_aside_imports

# We ship no pydantic plugins; looking for them scans every installed distribution's metadata on the
# first model built, a sizeable part of a cold start. An explicit setting in the environment still wins.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

with paused_collection():  # imports build long-lived objects only (centli.entrypoints.coldstart)
    from centli.adapters.bedrock.events import detect_format, parse_event, render
    from centli.domain.events import EVENT_TYPES, DomainEvent
    from centli.entrypoints.logs import bind, service_logger, unbind
    from centli.entrypoints.metrics import emit_sweep_metrics
    from centli.entrypoints.operations import CORE_BANKING, MARKETPLACE
    from centli.entrypoints.pipeline import AGENTCORE, OPENAPI, AgentCall, AgentResult, error_body
    from centli.entrypoints.runtime import container, elapsed_ms, run, sweep
    from centli.entrypoints.snapstart import register as register_snapstart

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

set_aside_imports()  # a Lambda environment keeps all of it: no collection during a call scans it again

__all__ = [
    "container",
    "core_banking_handler",
    "marketplace_handler",
    "outbox_relay_handler",
    "saga_handler",
    "sweeper_handler",
]
register_snapstart(container)  # SnapStart: prime before the snapshot (no secrets, no data, no clients kept)
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
        call = parse_event(event, context, identity_secret=container.identity_secret())
        outcome = run(call, action_group, service=f"centli-{action_group}")
        return render(call, outcome.result)
    except Exception:
        bind(logger, correlation_id=(call.correlation_id if call else None) or _request_id(context) or "unknown")
        logger.exception("invocation failed", extra={"duration_ms": elapsed_ms(started)})
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


def _request_id(context: object) -> str | None:
    request_id = getattr(context, "aws_request_id", None)
    return request_id if isinstance(request_id, str) else None


def _fallback_call(action_group: str) -> AgentCall:
    return AgentCall(OPENAPI, None, "", "", action_group, {}, None, "", "", "")


# the purchase saga on AWS: outbox stream -> EventBridge -> saga steps; a scheduled sweeper -----------
def outbox_relay_handler(event: Mapping[str, Any], context: object) -> dict[str, list[dict[str, str]]]:
    """DynamoDB Streams (outbox INSERTs) -> EventBridge, reporting only the records to retry.

    A record whose image cannot be read is reported as failed too: Lambda retries
    it, then sends it to the on-failure destination (the DLQ) instead of losing it.
    """
    from centli.adapters.dynamodb import event_from_stream_image

    logger = service_logger("centli-outbox-relay")
    bind(logger, correlation_id=_request_id(context) or "outbox-relay")
    try:
        failed: list[str] = []
        sequences: dict[str, list[str]] = {}  # event_id -> the stream records that carry it
        events: list[DomainEvent] = []
        for record in event.get("Records", []):
            sequence = str(record["dynamodb"]["SequenceNumber"])  # without it the whole batch is retried
            if record.get("eventName") != "INSERT":
                continue  # MODIFY: marked published; REMOVE: expired by TTL
            try:
                outbox_event = event_from_stream_image(record["dynamodb"]["NewImage"])
            except Exception:
                logger.exception("unreadable outbox record", extra={"sequence_number": sequence})
                failed.append(sequence)
                continue
            if outbox_event.event_id not in sequences:
                events.append(outbox_event)
            sequences.setdefault(outbox_event.event_id, []).append(sequence)
        undelivered = {e.event_id for e in container.event_publisher().publish(events)} if events else set()
        failed.extend(s for event_id in undelivered for s in sequences[event_id])
        published = [e.event_id for e in events if e.event_id not in undelivered]
        _mark_published(logger, published)
        logger.info("outbox relayed", extra={"published": len(published), "failed": len(failed)})
        return {"batchItemFailures": [{"itemIdentifier": s} for s in failed]}
    except Exception:
        logger.exception("outbox relay failed")
        raise  # the whole batch is retried (bisected), then sent to the on-failure destination
    finally:
        unbind(logger)


def _mark_published(logger: Logger, event_ids: list[str]) -> None:
    """Empty the sparse pending index; best effort, the events are already on the bus."""
    if not event_ids:
        return
    try:
        container.store().mark_published(event_ids)
    except Exception:
        logger.warning("could not mark events published", exc_info=True, extra={"events": len(event_ids)})


def saga_handler(event: Mapping[str, Any], context: object) -> dict[str, int]:
    """One EventBridge event -> its saga steps. Raises on failure so it is retried, then dead-lettered.

    Every step dedupes by event_id in the same write as its effect, so a retry is harmless.
    """
    logger = service_logger("centli-saga")
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        bind(logger, correlation_id=_request_id(context) or "saga")
        logger.error("not an EventBridge event with a detail object")
        unbind(logger)
        raise ValueError("EventBridge event without a detail object")
    bind(
        logger,
        correlation_id=str(detail.get("correlation_id") or _request_id(context) or "saga"),
        event_type=str(detail.get("type")),
        event_id=str(detail.get("event_id")),
    )
    try:
        if detail.get("type") not in EVENT_TYPES:
            logger.warning("unknown event type ignored")
            return {"handled": 0}
        domain_event = DomainEvent.from_detail(dict(detail))
        handlers = container.application().bus.handlers_for(domain_event.type)
        for step in handlers:
            step(domain_event)
        logger.info("saga event handled", extra={"steps": len(handlers)})
        return {"handled": len(handlers)}
    except Exception:
        logger.exception("saga step failed")
        raise
    finally:
        unbind(logger)


def sweeper_handler(event: object, context: object) -> int:
    """Scheduled: settle orders stuck PENDING past the timeout, then publish overdue outbox events.

    Returns how many stuck orders' payments were voided.
    """
    logger = service_logger("centli-sweeper")
    bind(logger, correlation_id=_request_id(context) or "sweeper")
    try:
        report = sweep()
        logger.info(
            "sweep finished", extra={"stuck": report.stuck, "voided": report.voided, "republished": report.republished}
        )
        emit_sweep_metrics(stuck=report.stuck, republished=report.republished)
        return report.voided
    except Exception:
        logger.exception("sweep failed")
        raise
    finally:
        unbind(logger)
