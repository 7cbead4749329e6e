"""Contract: products (stock and reservations) and orders (paging, the sweeper's query, versions)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from centli.domain.catalog import Product
from centli.domain.errors import ConcurrencyConflict, OutOfStock, ProductNotFound
from centli.domain.orders import Order
from centli.ports.unit_of_work import UnitOfWork
from tests.backends import Backend
from tests.contract.conftest import ANA, LUIS, at, commit, order, product

pytestmark = pytest.mark.contract


def get_product(backend: Backend, product_id: str = "p-1") -> Product:
    with backend.uow() as uow:
        found = uow.products.get(product_id)
    assert found is not None
    return found


def stock_of(backend: Backend, product_id: str = "p-1") -> tuple[int, int]:
    found = get_product(backend, product_id)
    return found.stock, found.reserved


# products ---------------------------------------------------------------------------
def test_add_then_get(any_backend: Backend) -> None:
    added = product()
    commit(any_backend, lambda uow: uow.products.add(added))
    assert get_product(any_backend) == added
    with any_backend.uow() as uow:
        assert uow.products.get("p-nope") is None


def test_add_is_idempotent_and_never_resets_stock(any_backend: Backend) -> None:
    commit(any_backend, lambda uow: uow.products.add(product(stock=5)))
    commit(any_backend, lambda uow: uow.products.reserve("p-1", 2))
    commit(any_backend, lambda uow: uow.products.add(product(stock=100)))
    assert stock_of(any_backend) == (5, 2)


def test_reserve_release_commit(any_backend: Backend) -> None:
    commit(any_backend, lambda uow: uow.products.add(product(stock=5)))
    commit(any_backend, lambda uow: uow.products.reserve("p-1", 3))
    assert stock_of(any_backend) == (5, 3)
    assert get_product(any_backend).available == 2
    commit(any_backend, lambda uow: uow.products.release("p-1", 1))
    assert stock_of(any_backend) == (5, 2)
    commit(any_backend, lambda uow: uow.products.commit_reserved("p-1", 2))
    assert stock_of(any_backend) == (3, 0)
    commit(any_backend, lambda uow: uow.products.reserve("p-1", 3))  # exactly what is available
    assert stock_of(any_backend) == (3, 3)


STOCK_GUARDS: list[tuple[int, Callable[[UnitOfWork, str], None], type[Exception]]] = [
    (4, lambda uow, pid: uow.products.reserve(pid, 2), OutOfStock),
    (0, lambda uow, pid: uow.products.reserve(pid, 6), OutOfStock),
    (0, lambda uow, pid: uow.products.reserve(pid + "-nope", 1), ProductNotFound),
    (1, lambda uow, pid: uow.products.release(pid, 2), ConcurrencyConflict),
    (0, lambda uow, pid: uow.products.release(pid, 1), ConcurrencyConflict),
    (1, lambda uow, pid: uow.products.commit_reserved(pid, 2), ConcurrencyConflict),
    (0, lambda uow, pid: uow.products.commit_reserved(pid, 1), ConcurrencyConflict),
]


def test_stock_guards(any_backend: Backend) -> None:
    # One product per case, all in one backend (a DynamoDB setup costs a second).
    for case, (reserved, operation, error) in enumerate(STOCK_GUARDS):
        pid = f"p-case{case}"
        commit(any_backend, lambda uow: uow.products.add(product(pid, stock=5)))
        if reserved:
            commit(any_backend, lambda uow: uow.products.reserve(pid, reserved))
        with pytest.raises(error), any_backend.uow() as uow:
            operation(uow, pid)
            uow.commit()
        assert stock_of(any_backend, pid) == (5, reserved), case


def test_search_filters_and_pages_in_product_id_order(any_backend: Backend) -> None:
    catalog = [
        product("p-01", name="Audífonos inalámbricos", category="electronics"),
        product("p-02", name="Licuadora", category="home"),
        product("p-03", name="Audífonos de diadema", category="Electrónica"),
        product("p-04", name="Bocina", category="electronics"),
        product("p-05", name="Cafetera", category="home"),
    ]
    commit(any_backend, *(lambda uow, p=p: uow.products.add(p) for p in catalog))

    def search(query: str | None, category: str | None, limit: int) -> list[list[str]]:
        pages: list[list[str]] = []
        position = None
        while True:
            with any_backend.uow() as uow:
                page = uow.products.search(query, category, limit, position)
            assert len(page.items) <= limit
            pages.append([p.product_id for p in page.items])
            if page.next_position is None:
                return pages
            position = page.next_position

    assert search(None, None, 2)[:3] == [["p-01", "p-02"], ["p-03", "p-04"], ["p-05"]]
    assert search(None, None, 5)[0] == ["p-01", "p-02", "p-03", "p-04", "p-05"]
    assert [pid for page in search("AUDIFONOS", None, 1) for pid in page] == ["p-01", "p-03"]
    assert [pid for page in search(None, "ELECTRONICS", 1) for pid in page] == ["p-01", "p-04"]
    assert [pid for page in search(None, "electronica", 10) for pid in page] == ["p-03"]
    assert [pid for page in search("audífonos", "electronics", 10) for pid in page] == ["p-01"]
    assert [pid for page in search("no existe", None, 10) for pid in page] == []
    found = search("licuadora", None, 10)[0]
    assert found == ["p-02"]


# orders ---------------------------------------------------------------------------------
def test_order_add_get_and_ownership(any_backend: Backend) -> None:
    placed = order("ord-1")
    commit(any_backend, lambda uow: uow.orders.add(placed))
    with any_backend.uow() as uow:
        assert uow.orders.get(ANA, "ord-1") == placed
        assert uow.orders.get(LUIS, "ord-1") is None
        assert uow.orders.get(ANA, "ord-nope") is None


def test_order_ids_are_unique(any_backend: Backend) -> None:
    commit(any_backend, lambda uow: uow.orders.add(order("ord-1")))
    with pytest.raises(ConcurrencyConflict), any_backend.uow() as uow:
        uow.orders.add(order("ord-1", quantity=9))
        uow.commit()
    with any_backend.uow() as uow:
        stored = uow.orders.get(ANA, "ord-1")
    assert stored is not None and stored.quantity == 1


def test_list_orders_newest_first_with_paging(any_backend: Backend) -> None:
    for n in range(1, 6):
        commit(any_backend, lambda uow: uow.orders.add(order(f"ord-{n}", minute=n)))
    commit(any_backend, lambda uow: uow.orders.add(order("ord-9", user=LUIS, minute=9)))
    seen: list[str] = []
    position = None
    while True:
        with any_backend.uow() as uow:
            page = uow.orders.list_for_user(ANA, 2, position)
        assert len(page.items) <= 2
        seen.extend(o.order_id for o in page.items)
        if page.next_position is None:
            break
        position = page.next_position
    assert seen == ["ord-5", "ord-4", "ord-3", "ord-2", "ord-1"]
    with any_backend.uow() as uow:
        assert [o.order_id for o in uow.orders.list_for_user(LUIS, 10, None).items] == ["ord-9"]
        assert uow.orders.list_for_user("u-nobody", 10, None).items == []


def test_list_pending_before_finds_stuck_orders_oldest_first(any_backend: Backend) -> None:
    for n in (3, 1, 2, 7):
        commit(any_backend, lambda uow: uow.orders.add(order(f"ord-{n}", minute=n)))
    commit(any_backend, lambda uow: uow.orders.add(order("ord-l", user=LUIS, minute=4)))
    confirmed = order("ord-c", minute=0)
    commit(any_backend, lambda uow: uow.orders.add(confirmed))
    commit(any_backend, lambda uow: uow.orders.update(confirmed.confirm(at(1), "trf-1")))
    with any_backend.uow() as uow:
        stuck = [o.order_id for o in uow.orders.list_pending_before(at(7), 10)]
        assert stuck == ["ord-1", "ord-2", "ord-3", "ord-l"]  # every user's; ord-7 is not before the cutoff
        assert [o.order_id for o in uow.orders.list_pending_before(at(7), 2)] == ["ord-1", "ord-2"]
        assert uow.orders.list_pending_before(at(1), 10) == []


def test_update_is_guarded_by_the_version(any_backend: Backend) -> None:
    placed = order("ord-1")
    commit(any_backend, lambda uow: uow.orders.add(placed))
    confirmed = placed.confirm(at(1), "trf-1")
    commit(any_backend, lambda uow: uow.orders.update(confirmed))
    with any_backend.uow() as uow:
        assert uow.orders.get(ANA, "ord-1") == confirmed
    # A writer that read version 1 too lost the race.
    with pytest.raises(ConcurrencyConflict), any_backend.uow() as uow:
        uow.orders.update(placed.cancel(at(2), "TIMEOUT"))
        uow.commit()
    # Skipping a version is refused as well, and so is updating an order that does not exist.
    for stale in (replace(confirmed, version=4), replace(order("ord-x"), version=2)):
        with pytest.raises(ConcurrencyConflict), any_backend.uow() as uow:
            uow.orders.update(stale)
            uow.commit()
    with any_backend.uow() as uow:
        current = uow.orders.get(ANA, "ord-1")
        assert current is not None and (current.status, current.version) == ("CONFIRMED", 2)
        assert uow.orders.get(ANA, "ord-x") is None


def test_cancelled_orders_keep_their_reason(any_backend: Backend) -> None:
    placed = order("ord-1")
    commit(any_backend, lambda uow: uow.orders.add(placed))
    cancelled: Order = placed.cancel(at(3), "INSUFFICIENT_FUNDS")
    commit(any_backend, lambda uow: uow.orders.update(cancelled))
    with any_backend.uow() as uow:
        assert uow.orders.get(ANA, "ord-1") == cancelled
        assert uow.orders.list_pending_before(at(60), 10) == []
