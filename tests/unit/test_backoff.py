"""The one exponential backoff: the retries' jitter and the sweeper's schedule share it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from centli.domain.backoff import exponential, jittered
from centli.domain.ledger import AccountRef
from centli.domain.money import Money
from centli.domain.orders import MAX_SWEEP_BACKOFF, Order


def test_it_doubles_up_to_its_cap_and_never_overflows() -> None:
    assert [exponential(n, 0.05, 2.0) for n in range(7)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0]
    quarter = timedelta(minutes=15)
    assert exponential(3, quarter, timedelta(hours=6)) == timedelta(hours=2)
    assert exponential(10_000, quarter, timedelta(hours=6)) == timedelta(hours=6)  # timedelta * 2**10000 would raise


def test_full_jitter_is_uniform_below_the_exponential() -> None:
    assert jittered(2, 0.05, 2.0, rng=lambda: 0.5) == 0.1
    assert jittered(2, 0.05, 2.0, rng=lambda: 0.0) == 0.0


def test_a_stuck_order_that_keeps_failing_waits_longer_each_time_up_to_the_cap() -> None:
    now = datetime(2026, 11, 24, tzinfo=UTC)
    timeout = timedelta(minutes=15)
    order = Order(
        "ord-1", "u-ana", "p-1", 1, Money(100), "acc-1", AccountRef("u-shop", "acc-9"), "PENDING", 1, now, now, "c"
    )
    waits = []
    for _ in range(60):
        order = order.backed_off(now, timeout)
        waits.append(order.sweep_time + timeout - now)
    assert waits[:3] == [timedelta(minutes=15), timedelta(minutes=30), timedelta(hours=1)]
    assert waits[-1] == MAX_SWEEP_BACKOFF and order.sweep_attempts == 60
