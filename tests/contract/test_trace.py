"""``centli trace`` on every backend: each purchase's and transfer's timeline, in order, with what each consumer did."""

from __future__ import annotations

from typing import Any

import pytest

from centli.domain import events as ev
from centli.domain.trace import CALLER, SWEEPER, Trace, render, trace
from tests.contract.scenario import Scenario

pytestmark = pytest.mark.contract


def trace_of(scenario: Scenario, subject: str) -> Trace:
    store: Any = scenario.bank.backend.extras["store"]
    return trace(subject, store, scenario.bank.backend.uow)


def steps(result: Trace) -> list[tuple[str, list[tuple[str, str]]]]:
    return [(e.type, [(c.consumer, c.outcome) for c in e.consumers]) for e in result.timeline]


def test_a_confirmed_purchase(scenario: Scenario) -> None:
    result = trace_of(scenario, scenario.confirmed.order_id)
    assert steps(result) == [
        (ev.INVENTORY_RESERVED, []),
        (ev.PURCHASE_INITIATED, [("core-banking.payment", "paid")]),
        (ev.PAYMENT_COMPLETED, [("marketplace.confirm", "confirmed")]),
        (ev.ORDER_CONFIRMED, []),
    ]
    reserved, initiated, paid, confirmed = result.timeline
    assert (reserved.caused_by, initiated.caused_by) == (CALLER, CALLER)
    assert paid.caused_by == f"{ev.PURCHASE_INITIATED} {initiated.event_id}"
    assert confirmed.caused_by == f"{ev.PAYMENT_COMPLETED} {paid.event_id}"
    assert all(e.published for e in result.timeline)
    assert initiated.consumers[0].at == paid.occurred_at  # when it paid, by the application's clock
    assert result.order is not None and result.order.status == "CONFIRMED"
    assert result.payment_fence is not None and result.payment_fence.result["outcome"] == "PAID"
    assert [t["transfer_id"] for t in result.transfers] == [result.order.payment_transfer_id]
    assert result.correlation_ids == [scenario.confirmed.correlation_id]
    # The same timeline from the correlation id or the payment's transfer id.
    assert steps(trace_of(scenario, scenario.confirmed.correlation_id)) == steps(result)
    assert steps(trace_of(scenario, str(result.order.payment_transfer_id))) == steps(result)
    text = render(result)
    assert (
        text.index(ev.PURCHASE_INITIATED) < text.index("-> core-banking.payment: paid") < text.index(ev.ORDER_CONFIRMED)
    )


def test_a_purchase_whose_payment_was_declined(scenario: Scenario) -> None:
    result = trace_of(scenario, scenario.cancelled.order_id)
    assert steps(result) == [
        (ev.INVENTORY_RESERVED, []),
        (ev.PURCHASE_INITIATED, [("core-banking.payment", "declined")]),
        (ev.PAYMENT_FAILED, [("marketplace.cancel", "released")]),
        (ev.INVENTORY_RELEASED, []),
        (ev.ORDER_CANCELLED, []),
    ]
    assert result.timeline[2].facts["reason"] == "INSUFFICIENT_FUNDS"
    assert result.order is not None and result.order.status == "CANCELLED"
    assert result.transfers == []


def test_a_purchase_the_sweeper_voided_before_its_payment_arrived(scenario: Scenario) -> None:
    result = trace_of(scenario, scenario.swept.order_id)
    assert steps(result) == [
        (ev.INVENTORY_RESERVED, []),
        (ev.PURCHASE_INITIATED, [("core-banking.payment", "ignored: payment already voided")]),
        (ev.PAYMENT_FAILED, [("marketplace.cancel", "released")]),
        (ev.INVENTORY_RELEASED, []),
        (ev.ORDER_CANCELLED, []),
    ]
    assert result.timeline[2].caused_by == SWEEPER
    assert result.payment_fence is not None and result.payment_fence.result["outcome"] == "VOIDED"


def test_a_transfer(scenario: Scenario) -> None:
    result = trace_of(scenario, scenario.transfer.transfer_id)
    assert steps(result) == [(ev.TRANSFER_COMPLETED, [])]
    assert result.timeline[0].caused_by == CALLER
    assert [(t["transfer_id"], t["amount"], t["kind"]) for t in result.transfers] == [
        (scenario.transfer.transfer_id, "100.00", "TRANSFER")
    ]
    assert result.to_dict()["timeline"][0]["facts"] == {"transfer_id": scenario.transfer.transfer_id}


def test_an_unknown_id_finds_nothing(scenario: Scenario) -> None:
    result = trace_of(scenario, "ord-does-not-exist")
    assert not result.found and result.timeline == []
