"""What moto cannot simulate, injected around a real moto server: conflicts, throttling, ambiguous timeouts, outages.

moto never returns TransactionConflict or throttling and never times out, so
these faults come from a wrapping client (it raises what AWS would, or runs the
real call and then times out) or from a botocore ``before-send`` hook (a
throttling answer in place of the HTTP response, so botocore's own standard
retry mode is what is exercised). Nothing here claims moto proved them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from centli.adapters.aws_clients import REQUEST_ATTEMPTS
from centli.adapters.dynamodb import DynamoStore
from centli.adapters.memory import ManualClock, SequentialIds
from centli.adapters.resilience import CircuitBreaker, retry_with_jitter
from centli.domain.application import Application, bootstrap
from centli.domain.banking import CreateTransfer
from centli.domain.errors import ConcurrencyConflict, DependencyUnavailable, IdempotencyConflict
from centli.domain.loading import parse_bank_document
from centli.domain.policy import BankPolicy
from centli.entrypoints.demo import demo_bank
from tests.backends.dynamodb import open_store
from tests.conftest import CURSOR_SECRET

pytestmark = pytest.mark.integration


class FaultyClient:
    """Delegates to a real client; ``faults[operation]`` may replace or follow the real call."""

    def __init__(self, client: Any) -> None:
        self.real = client
        self.faults: dict[str, Callable[[Callable[..., Any], dict[str, Any]], Any]] = {}
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.real, name)
        if not callable(attr) or name.startswith("_") or name in {"get_waiter", "get_paginator"}:
            return attr

        def call(**params: Any) -> Any:
            self.calls.append(name)
            fault = self.faults.get(name)
            return attr(**params) if fault is None else fault(attr, params)

        return call


def transaction_conflict(times: int) -> Callable[[Callable[..., Any], dict[str, Any]], Any]:
    """TransactWriteItems cancelled by a concurrent transaction ``times`` times, then the real call."""
    return cancelled_by("TransactionConflict", times)


def cancelled_by(code: str, times: int) -> Callable[[Callable[..., Any], dict[str, Any]], Any]:
    """TransactWriteItems cancelled ``times`` times with ``code`` on its last item, then the real call."""
    left = [times]

    def fault(real: Callable[..., Any], params: dict[str, Any]) -> Any:
        if left[0] == 0:
            return real(**params)
        left[0] -= 1
        reasons = [{"Code": "None"} for _ in params["TransactItems"]]
        reasons[-1] = {"Code": code, "Message": f"{code} on this item"}
        raise ClientError(
            {
                "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
                "CancellationReasons": reasons,
                "ResponseMetadata": {"HTTPStatusCode": 400},
            },
            "TransactWriteItems",
        )

    return fault


def commits_then_times_out(real: Callable[..., Any], params: dict[str, Any]) -> Any:
    real(**params)  # the write is durable...
    raise ReadTimeoutError(endpoint_url="http://dynamodb")  # ...but the caller never hears back


@pytest.fixture
def faulty() -> Iterator[tuple[Application, DynamoStore, FaultyClient]]:
    wrapper: list[FaultyClient] = []

    def wrap(client: Any) -> FaultyClient:
        wrapper.append(FaultyClient(client))
        return wrapper[0]

    with open_store(wrap=wrap) as store:
        store.sleep = lambda _: None
        clock = ManualClock()
        app = bootstrap(store.unit_of_work, clock, SequentialIds(), BankPolicy(), CURSOR_SECRET, store)
        store.load(parse_bank_document(demo_bank(), clock.now()))
        yield app, store, wrapper[0]


def balances(app: Application) -> tuple[str, str]:
    banking = app.banking
    return (
        banking.get_balance("u-ana", "acc-0001").balance.to_decimal_string(),
        banking.get_balance("u-ana", "acc-0003").balance.to_decimal_string(),
    )


def own_transfer(key: str, amount: str = "100.00") -> CreateTransfer:
    return CreateTransfer.parse("u-ana", "acc-0001", amount, key, destination_id="acc-0003")


def test_transaction_conflict_is_retried_then_succeeds(faulty: tuple[Application, DynamoStore, FaultyClient]) -> None:
    app, _, client = faulty
    client.faults["transact_write_items"] = transaction_conflict(times=2)
    client.calls.clear()
    transfer = app.banking.create_transfer(own_transfer("k-conflict"))
    assert client.calls.count("transact_write_items") == 3
    assert balances(app) == ("24900.00", "1100.00")
    assert app.banking.get_transfer("u-ana", transfer.transfer_id) == transfer


def test_endless_conflicts_end_in_409_and_move_nothing(faulty: tuple[Application, DynamoStore, FaultyClient]) -> None:
    app, store, client = faulty
    client.faults["transact_write_items"] = transaction_conflict(times=100)
    client.calls.clear()
    with pytest.raises(ConcurrencyConflict):
        app.banking.create_transfer(own_transfer("k-busy"))
    assert client.calls.count("transact_write_items") == store.conflict_attempts
    del client.faults["transact_write_items"]
    assert balances(app) == ("25000.00", "1000.00")


def test_throttling_inside_a_transaction_is_503_and_moves_nothing(
    faulty: tuple[Application, DynamoStore, FaultyClient],
) -> None:
    app, _, client = faulty
    client.faults["transact_write_items"] = cancelled_by("ThrottlingError", times=1)
    with pytest.raises(DependencyUnavailable):
        app.banking.create_transfer(own_transfer("k-throttled"))
    assert balances(app) == ("25000.00", "1000.00")
    assert app.banking.create_transfer(own_transfer("k-throttled")).amount.to_decimal_string() == "100.00"
    assert balances(app) == ("24900.00", "1100.00")


def test_timeout_after_commit_then_retry_returns_the_original_and_moves_money_once(
    faulty: tuple[Application, DynamoStore, FaultyClient],
) -> None:
    app, _, client = faulty
    client.faults["transact_write_items"] = commits_then_times_out
    with pytest.raises(DependencyUnavailable):
        app.banking.create_transfer(own_transfer("k-ambiguous"))
    del client.faults["transact_write_items"]
    assert balances(app) == ("24900.00", "1100.00")  # it did commit
    committed = app.banking.list_transactions("u-ana", "acc-0001", 1).entries[0].transfer_id

    retried = app.banking.create_transfer(own_transfer("k-ambiguous"))
    assert retried.transfer_id == committed
    assert balances(app) == ("24900.00", "1100.00")  # and not twice
    with pytest.raises(IdempotencyConflict):  # the same key for a different request
        app.banking.create_transfer(own_transfer("k-ambiguous", amount="5.00"))


def throttle_first(sends: int, counter: list[int]) -> Callable[..., AWSResponse | None]:
    """A before-send hook: the first ``sends`` requests get a throttling answer instead of going out."""

    class Body:
        def stream(self, **_: Any) -> Iterator[bytes]:
            yield b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}'

    def hook(request: Any, **_: Any) -> AWSResponse | None:
        counter[0] += 1
        if counter[0] > sends:
            return None
        return AWSResponse(request.url, 400, {"x-amzn-RequestId": "throttled"}, Body())

    return hook


def test_throttling_is_retried_by_botocore_standard_mode(faulty: tuple[Application, DynamoStore, FaultyClient]) -> None:
    app, _, client = faulty
    sends = [0]
    client.real.meta.events.register("before-send.dynamodb.GetItem", throttle_first(2, sends))
    account = app.banking.get_balance("u-ana", "acc-0001")
    assert account.balance.to_decimal_string() == "25000.00"
    assert sends[0] == 3  # two throttled answers, then the real one


def test_throttling_past_the_retries_is_dependency_unavailable(
    faulty: tuple[Application, DynamoStore, FaultyClient],
) -> None:
    app, store, client = faulty
    sends = [0]
    client.real.meta.events.register("before-send.dynamodb.GetItem", throttle_first(100, sends))
    with pytest.raises(DependencyUnavailable):
        app.banking.get_balance("u-ana", "acc-0001")
    assert sends[0] == REQUEST_ATTEMPTS
    assert store.breaker.state == "closed"  # one failure is below the threshold


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_open_circuit_fails_fast_and_closes_after_a_good_probe() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("dynamodb", failure_threshold=2, reset_timeout=30, clock=clock)
    down = [True]

    def outage(real: Callable[..., Any], params: dict[str, Any]) -> Any:
        if down[0]:
            raise EndpointConnectionError(endpoint_url="http://dynamodb")
        return real(**params)

    wrapper: list[FaultyClient] = []

    def wrap(client: Any) -> FaultyClient:
        wrapper.append(FaultyClient(client))
        wrapper[0].faults["get_item"] = outage
        return wrapper[0]

    with open_store(wrap=wrap, breaker=breaker) as store:
        app = bootstrap(store.unit_of_work, ManualClock(), SequentialIds(), BankPolicy(), CURSOR_SECRET, store)
        store.load(parse_bank_document(demo_bank(), ManualClock().now()))
        client = wrapper[0]
        client.calls.clear()
        for _ in range(2):
            with pytest.raises(DependencyUnavailable):
                app.banking.get_balance("u-ana", "acc-0001")
        assert breaker.state == "open"
        assert client.calls == ["get_item", "get_item"]

        with pytest.raises(DependencyUnavailable):
            app.banking.get_balance("u-ana", "acc-0001")
        assert client.calls == ["get_item", "get_item"]  # failed fast: AWS was not called

        clock.now += 30
        assert breaker.state == "half-open"
        with pytest.raises(DependencyUnavailable):  # the probe fails: open again for another 30 s
            app.banking.get_balance("u-ana", "acc-0001")
        assert breaker.state == "open"

        clock.now += 30
        down[0] = False
        assert app.banking.get_balance("u-ana", "acc-0001").balance.to_decimal_string() == "25000.00"
        assert breaker.state == "closed"
        assert client.calls.count("get_item") == 4


def test_half_open_lets_exactly_one_probe_through() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("x", failure_threshold=1, reset_timeout=5, clock=clock)
    with pytest.raises(RuntimeError):
        breaker.call(lambda: (_ for _ in ()).throw(RuntimeError("down")))
    clock.now += 5
    probing, release = threading.Event(), threading.Event()
    results: list[str] = []

    def probe() -> str:
        probing.set()
        release.wait(5)
        return "probe ok"

    thread = threading.Thread(target=lambda: results.append(breaker.call(probe)))
    thread.start()
    assert probing.wait(5)
    with pytest.raises(DependencyUnavailable):
        breaker.call(lambda: "second caller")
    release.set()
    thread.join(5)
    assert results == ["probe ok"]
    assert breaker.state == "closed"
    assert breaker.call(lambda: "after") == "after"


def test_business_answers_do_not_trip_the_breaker() -> None:
    breaker = CircuitBreaker("x", failure_threshold=1, reset_timeout=5, clock=FakeClock())
    for _ in range(3):
        with pytest.raises(ValueError):
            breaker.call(lambda: int("not a number"), is_failure=lambda e: not isinstance(e, ValueError))
    assert breaker.state == "closed"


def test_jittered_retry_is_bounded_and_sleeps_within_the_cap() -> None:
    sleeps: list[float] = []
    attempts = [0]

    def flaky() -> str:
        attempts[0] += 1
        if attempts[0] < 3:
            raise ConcurrencyConflict()
        return "done"

    result = retry_with_jitter(
        flaky,
        should_retry=lambda e: isinstance(e, ConcurrencyConflict),
        base_delay=0.1,
        max_delay=0.15,
        sleep=sleeps.append,
        rng=lambda: 1.0,
    )
    assert result == "done"
    assert sleeps == [0.1, 0.15]
    with pytest.raises(ConcurrencyConflict):
        retry_with_jitter(
            lambda: (_ for _ in ()).throw(ConcurrencyConflict()),
            should_retry=lambda e: True,
            attempts=2,
            sleep=lambda _: None,
        )
