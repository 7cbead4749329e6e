"""Differential test: random units of work give the same outcomes and state on SQLite as on the memory store.

The memory store is the reference implementation of the ports. Every unit's
commit must succeed or fail the same way (same error, same field, same
message), and afterwards everything the ports can read must be equal.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from centli.adapters.memory import InMemoryStore, ManualClock
from centli.adapters.sqlite import SqliteStore
from centli.domain.catalog import Product
from centli.domain.errors import DomainError
from centli.domain.events import DomainEvent, EventAlreadyProcessed
from centli.domain.idempotency import DuplicateIdempotencyKey, new_record
from centli.domain.ledger import AccountRef, Beneficiary, NewAccount, Transfer
from centli.domain.money import Money
from centli.domain.orders import Order
from centli.ports.unit_of_work import UnitOfWork

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
USERS = ["u-a", "u-b"]
ACCOUNTS = [("u-a", "a1", "MXN"), ("u-a", "a2", "MXN"), ("u-b", "b1", "MXN"), ("u-b", "b2", "USD")]
REFS = [AccountRef(u, a) for u, a, _ in ACCOUNTS] + [AccountRef("u-a", "b1"), AccountRef("u-b", "nope")]
PRODUCTS = ["p1", "p2", "p-missing"]
ORDER_IDS = ["ord-1", "ord-2", "ord-3"]
KEYS = ["k1", "k2"]
DAYS = ["2026-11-24", "2026-11-25"]

Op = tuple[Any, ...]
Store = InMemoryStore | SqliteStore

amounts = st.integers(min_value=1, max_value=150_000)
refs = st.sampled_from(REFS)
ops: st.SearchStrategy[Op] = st.one_of(
    st.tuples(st.just("post"), refs, refs, amounts, st.sampled_from(["MXN", "USD"])),
    st.tuples(st.just("require"), refs, amounts, st.sampled_from(["MXN", "USD"])),
    st.tuples(st.just("limit"), st.sampled_from(USERS), st.sampled_from(DAYS), amounts),
    st.tuples(st.just("claim"), st.sampled_from(USERS), st.sampled_from(KEYS), st.sampled_from([0, 5, 24, 30])),
    st.tuples(st.just("stock"), st.sampled_from(["reserve", "release", "commit_reserved"]), st.sampled_from(PRODUCTS),
              st.integers(1, 3)),
    st.tuples(st.just("order_add"), st.sampled_from(ORDER_IDS), st.sampled_from(USERS), st.integers(0, 90)),
    st.tuples(st.just("order_update"), st.sampled_from(ORDER_IDS), st.sampled_from(USERS), st.integers(1, 3),
              st.sampled_from(["PENDING", "CONFIRMED", "CANCELLED"])),
    st.tuples(st.just("inbox"), st.sampled_from(["c1", "c2"]), st.sampled_from(["e1", "e2"])),
    st.tuples(st.just("event"), st.sampled_from(USERS)),
    st.tuples(st.just("beneficiary"), st.sampled_from(USERS), st.sampled_from(["ben-1", "ben-2"]), refs),
    st.tuples(st.just("open"), refs, amounts),
    st.tuples(st.just("product"), st.sampled_from(PRODUCTS), st.integers(0, 5)),
)  # fmt: skip
units = st.lists(st.lists(ops, min_size=1, max_size=4), min_size=1, max_size=15)


def order(order_id: str, user: str, version: int, status: Any, minutes: int) -> Order:
    at = T0 + timedelta(minutes=minutes)
    return Order(
        order_id, user, "p1", 1, Money(100), "a1", AccountRef("u-b", "b1"), status, version, at, at, f"c-{order_id}"
    )


class Applier:
    """Turns ops into port calls; counters make ids unique and identical for both stores."""

    def __init__(self) -> None:
        self.counter = 0

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter:04d}"

    def apply(self, uow: UnitOfWork, op: Op) -> None:
        kind = op[0]
        if kind == "post":
            _, source, target, minor, currency = op
            transfer = Transfer(
                self.next_id("trf"), source.user_id, source.account_id, target, Money(minor, currency), "", T0
            )
            uow.ledger.post(transfer)
        elif kind == "require":
            _, ref, minor, currency = op
            uow.accounts.require(ref.user_id, ref.account_id, Money(minor, currency))
        elif kind == "limit":
            _, user, day, minor = op
            uow.limits.add(user, day, Money(minor), Money(200_000))
        elif kind == "claim":
            _, user, key, hours = op
            now = T0 + timedelta(hours=hours)
            uow.idempotency.claim(new_record(user, key, "op", self.next_id("fp"), {"n": self.counter}, now))
        elif kind == "stock":
            _, action, product_id, quantity = op
            getattr(uow.products, action)(product_id, quantity)
        elif kind == "order_add":
            _, order_id, user, minutes = op
            uow.orders.add(order(order_id, user, 1, "PENDING", minutes))
        elif kind == "order_update":
            _, order_id, user, version, status = op
            uow.orders.update(order(order_id, user, version, status, 1))
        elif kind == "inbox":
            uow.inbox.mark_processed(op[1], op[2])
        elif kind == "event":
            event_id = self.next_id("evt")
            uow.outbox.add(DomainEvent(event_id, "TRANSFER_COMPLETED", T0, "c", None, op[1], {"id": event_id}))
        elif kind == "beneficiary":
            _, user, beneficiary_id, ref = op
            uow.beneficiaries.add(Beneficiary(beneficiary_id, user, "alias", ref.account_id, ref.user_id))
        elif kind == "open":
            _, ref, minor = op
            uow.accounts.open(NewAccount(ref.account_id, ref.user_id, "new", Money(minor), T0))
        elif kind == "product":
            _, product_id, stock = op
            uow.products.add(Product(product_id, "Audífonos", "electronics", Money(49_900), stock, 0, REFS[2]))
        else:
            raise AssertionError(kind)


def outcome(store: Store, applier: Applier, unit: list[Op]) -> object:
    try:
        with store.unit_of_work() as uow:
            for op in unit:
                applier.apply(uow, op)
            uow.commit()
    except DomainError as error:
        return (type(error).__name__, error.field, error.message)
    except DuplicateIdempotencyKey as duplicate:
        return ("duplicate", duplicate.existing)
    except EventAlreadyProcessed as processed:
        return ("processed", processed.consumer, processed.event_id)
    return "ok"


def observe(store: Store) -> dict[str, object]:
    seen: dict[str, object] = {}
    with store.unit_of_work() as uow:
        for user in USERS:
            seen[f"accounts {user}"] = uow.accounts.list_for_user(user)
            seen[f"beneficiaries {user}"] = uow.beneficiaries.list_for_user(user)
            seen[f"orders {user}"] = paged(partial(uow.orders.list_for_user, user))
            for key in KEYS:
                seen[f"key {user} {key}"] = uow.idempotency.get(user, key)
            for day in DAYS:
                seen[f"limit {user} {day}"] = uow.limits.total(user, day, "MXN")
        for ref in REFS:
            try:
                seen[f"history {ref}"] = paged(partial(uow.ledger.history, ref.user_id, ref.account_id))
            except DomainError as error:
                seen[f"history {ref}"] = error.code
        seen["products"] = paged(partial(uow.products.search, None, None))
        seen["products audifonos"] = uow.products.search("audifonos", "Electronics", 10, None).items
        seen["pending orders"] = uow.orders.list_pending_before(T0 + timedelta(minutes=45), 2)
        seen["transfers"] = [uow.ledger.get_transfer(r.user_id, f"trf-{i:04d}") for r in REFS for i in range(1, 40)]
    seen["outbox"] = store.pending(3)
    return seen


def paged(fetch: Callable[[int, str | None], Any]) -> list[object]:
    """Every item of a list read in pages of two (positions are store-specific, items are not)."""
    items: list[object] = []
    position = None
    while True:
        page = fetch(2, position)
        items.extend(page.items)
        if page.next_position is None:
            return items
        position = page.next_position


def seed(store: Store) -> None:
    with store.unit_of_work() as uow:
        for user, account, currency in ACCOUNTS:
            uow.accounts.open(NewAccount(account, user, "alias", Money(100_000, currency), T0))
        for product_id, stock in (("p1", 3), ("p2", 1)):
            uow.products.add(Product(product_id, "Licuadora", "home", Money(12_990), stock, 0, REFS[2]))
        uow.commit()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(units)
def test_sqlite_behaves_like_memory(work: list[list[Op]]) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        # Each store stamps commits with its clock: the same time on both.
        memory = InMemoryStore(clock=ManualClock(T0))
        sqlite = SqliteStore(Path(workdir) / "centli.db", synchronous="NORMAL", clock=ManualClock(T0))
        try:
            seed(memory)
            seed(sqlite)
            memory_ids, sqlite_ids = Applier(), Applier()
            for unit in work:
                assert outcome(sqlite, sqlite_ids, unit) == outcome(memory, memory_ids, unit), unit
            assert observe(sqlite) == observe(memory)
        finally:
            sqlite.close()


def test_the_comparison_sees_a_difference() -> None:
    """The observation is fine-grained enough to notice one centavo."""
    with tempfile.TemporaryDirectory() as workdir:
        # Each store stamps commits with its clock: the same time on both.
        memory = InMemoryStore(clock=ManualClock(T0))
        sqlite = SqliteStore(Path(workdir) / "centli.db", synchronous="NORMAL", clock=ManualClock(T0))
        try:
            seed(memory)
            seed(sqlite)
            outcome(sqlite, Applier(), [("post", REFS[0], REFS[1], 1, "MXN")])
            assert observe(sqlite) != observe(memory)
        finally:
            sqlite.close()
