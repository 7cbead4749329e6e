"""The catalog (search and paging) and the order state machine."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from centli.domain.catalog import Product, fold
from centli.domain.errors import InvalidCursor, InvalidInput, InvalidOrderState, ProductNotFound
from centli.domain.ledger import AccountRef
from centli.domain.money import Money
from centli.domain.orders import Order
from centli.domain.policy import page_size, search_text
from tests.backends import opener
from tests.conftest import Bank, make_bank


def catalog_document(count: int) -> dict[str, object]:
    names = ["Audífonos inalámbricos", "Licuadora", "Cafetera ESPRESSO", "Bocina Bluetooth", "Lámpara de noche"]
    categories = ["electronics", "home", "home", "electronics", "Hogar y Decoración"]
    return {
        "users": [{"user_id": "u-shop"}, {"user_id": "u-ana"}],
        "accounts": [{"user_id": "u-shop", "account_id": "acc-shop", "opening_balance": "0"}],
        "products": [
            {
                "product_id": f"p-{n:03d}",
                "name": f"{names[n % len(names)]} {n}",
                "category": categories[n % len(categories)],
                "price": f"{100 + n}.50",
                "stock": n,
                "seller_account_id": "acc-shop",
            }
            for n in range(count)
        ],
    }


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Bank]:
    with opener("memory")(tmp_path) as backend:
        yield make_bank(backend, catalog_document(25))


def search_all(bank: Bank, **kwargs: object) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        page = bank.app.marketplace.search_products("u-ana", cursor=cursor, **kwargs)
        ids.extend(p.product_id for p in page.products)
        cursor = page.next_cursor
        if cursor is None:
            return ids


def test_fold_removes_case_and_accents() -> None:
    assert fold("AUDÍFONOS Lámpara ñandú") == "audifonos lampara nandu"


def test_search_by_text_is_accent_and_case_insensitive(shop: Bank) -> None:
    expected = [f"p-{n:03d}" for n in range(25) if n % 5 == 0]
    assert search_all(shop, query="audifonos") == expected
    assert search_all(shop, query="AUDÍFONOS inalambricos") == expected
    assert search_all(shop, query="lampara noche") == [f"p-{n:03d}" for n in range(25) if n % 5 == 4]
    assert search_all(shop, query="espresso cafetera 12") == ["p-012"]  # every word must match
    assert search_all(shop, query="nothing like this") == []


def test_search_by_category_and_text(shop: Bank) -> None:
    assert search_all(shop, category="ELECTRONICS") == [f"p-{n:03d}" for n in range(25) if n % 5 in (0, 3)]
    assert search_all(shop, category="hogar y decoracion") == [f"p-{n:03d}" for n in range(25) if n % 5 == 4]
    assert search_all(shop, category="home", query="licuadora") == [f"p-{n:03d}" for n in range(25) if n % 5 == 1]
    # The category must match as a whole, not as a word inside another one.
    assert search_all(shop, category="elect") == []


def test_search_pages_through_everything_once(shop: Bank) -> None:
    pages = []
    cursor = None
    while True:
        page = shop.app.marketplace.search_products("u-ana", limit=7, cursor=cursor)
        pages.append([p.product_id for p in page.products])
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [len(p) for p in pages] == [7, 7, 7, 4]
    assert [pid for page in pages for pid in page] == [f"p-{n:03d}" for n in range(25)]


def test_search_cursor_is_bound_to_the_query_and_user(shop: Bank) -> None:
    cursor = shop.app.marketplace.search_products("u-ana", query="audifonos", limit=2).next_cursor
    assert cursor is not None
    with pytest.raises(InvalidCursor):
        shop.app.marketplace.search_products("u-ana", query="licuadora", limit=2, cursor=cursor)
    with pytest.raises(InvalidCursor):
        shop.app.marketplace.search_products("u-other", query="audifonos", limit=2, cursor=cursor)
    page = shop.app.marketplace.search_products("u-ana", query="audifonos", limit=2, cursor=cursor)
    assert [p.product_id for p in page.products] == ["p-010", "p-015"]


def test_search_validates_input() -> None:
    """Parsed once, by the domain's parsers the edge's models call."""
    assert search_text("  audifonos   inalambricos ", "query") == "audifonos inalambricos"
    with pytest.raises(InvalidInput):
        search_text("x" * 101, "query")
    with pytest.raises(InvalidInput):
        page_size(0)


def test_get_product(shop: Bank) -> None:
    product = shop.app.marketplace.get_product("p-003")
    assert (product.price, product.stock, product.available) == (Money.of("103.50"), 3, 3)
    assert product.seller == AccountRef("u-shop", "acc-shop")
    with pytest.raises(ProductNotFound):
        shop.app.marketplace.get_product("p-999")


def test_available_is_stock_minus_reserved() -> None:
    product = Product("p", "n", "c", Money(100), stock=5, reserved=2, seller=AccountRef("u", "a"))
    assert product.available == 3


# the order state machine -----------------------------------------------------------
T0 = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)


def pending_order() -> Order:
    return Order(
        order_id="ord-1",
        user_id="u-ana",
        product_id="p-1",
        quantity=2,
        total=Money(99_800),
        account_id="acc-0001",
        seller=AccountRef("u-shop", "acc-9000"),
        status="PENDING",
        version=1,
        created_at=T0,
        updated_at=T0,
        correlation_id="corr-1",
    )


def test_confirm_bumps_the_version_and_records_the_payment() -> None:
    order = pending_order()
    later = T0 + timedelta(seconds=5)
    confirmed = order.confirm(later, "trf-9")
    assert (confirmed.status, confirmed.version, confirmed.updated_at) == ("CONFIRMED", 2, later)
    assert confirmed.payment_transfer_id == "trf-9"
    assert (order.status, order.version) == ("PENDING", 1)  # immutable


def test_cancel_bumps_the_version_and_records_the_reason() -> None:
    cancelled = pending_order().cancel(T0, "INSUFFICIENT_FUNDS")
    assert (cancelled.status, cancelled.version, cancelled.cancel_reason) == ("CANCELLED", 2, "INSUFFICIENT_FUNDS")


@pytest.mark.parametrize("first", ["confirm", "cancel"])
@pytest.mark.parametrize("second", ["confirm", "cancel"])
def test_settled_orders_cannot_move_again(first: str, second: str) -> None:
    order = pending_order()
    settled = order.confirm(T0, "trf") if first == "confirm" else order.cancel(T0, "r")
    with pytest.raises(InvalidOrderState) as raised:
        settled.confirm(T0, "trf") if second == "confirm" else settled.cancel(T0, "r")
    assert raised.value.status == 422


def test_order_round_trips_through_a_dict() -> None:
    order = pending_order().confirm(T0 + timedelta(minutes=1), "trf-1")
    assert Order.from_dict(order.to_dict()) == order
    with pytest.raises(ValueError):
        Order.from_dict({**order.to_dict(), "status": "SHIPPED"})
