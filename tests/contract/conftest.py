"""The storage contract: builders shared by every contract test, and the ``contract`` marker.

Every test here goes through ``backend.uow()`` (the ports) and ``backend.outbox``
only, so the same file proves memory, SQLite and DynamoDB alike. Run only
the contract suite with ``pytest -m contract``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from centli.domain.catalog import Product
from centli.domain.events import DomainEvent
from centli.domain.idempotency import IdempotencyRecord, new_record
from centli.domain.ledger import AccountRef, Beneficiary, LedgerEntry, NewAccount, Transfer
from centli.domain.money import Money
from centli.domain.orders import Order
from centli.ports.unit_of_work import UnitOfWork
from tests.backends import Backend, backend_names, opener
from tests.conftest import make_bank
from tests.contract.scenario import Scenario

T0 = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
ANA, LUIS, SHOP = "u-ana", "u-luis", "u-shop"
DAY = "2026-11-24"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "contract: the storage contract, run against every backend in tests/backends")


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def account(user: str, account_id: str, opening: str = "1000.00", currency: str = "MXN") -> NewAccount:
    return NewAccount(account_id, user, f"alias {account_id}", Money.of(opening, currency), T0)


def transfer(
    transfer_id: str,
    amount: str,
    *,
    user: str = ANA,
    source: str = "acc-a1",
    to: tuple[str, str] = (LUIS, "acc-l1"),
    minute: int = 1,
    currency: str = "MXN",
) -> Transfer:
    return Transfer(
        transfer_id=transfer_id,
        user_id=user,
        from_account_id=source,
        to=AccountRef(*to),
        amount=Money.of(amount, currency),
        concept=f"concept {transfer_id}",
        created_at=at(minute),
    )


def product(product_id: str = "p-1", stock: int = 5, name: str = "Audífonos", category: str = "electronics") -> Product:
    return Product(product_id, name, category, Money.of("100.00"), stock, 0, AccountRef(SHOP, "acc-s1"))


def order(order_id: str, *, user: str = ANA, minute: int = 0, quantity: int = 1) -> Order:
    return Order(
        order_id=order_id,
        user_id=user,
        product_id="p-1",
        quantity=quantity,
        total=Money(10_000 * quantity),
        account_id="acc-a1",
        seller=AccountRef(SHOP, "acc-s1"),
        status="PENDING",
        version=1,
        created_at=at(minute),
        updated_at=at(minute),
        correlation_id=f"corr-{order_id}",
    )


def record(key: str, *, user: str = ANA, minute: int = 0, result: str = "trf-1") -> IdempotencyRecord:
    return new_record(user, key, "createTransfer", f"fp-{result}", {"transfer_id": result}, at(minute))


def event(event_id: str, type_: str = "TRANSFER_COMPLETED", minute: int = 0) -> DomainEvent:
    return DomainEvent(event_id, type_, at(minute), "corr-1", None, ANA, {"transfer_id": "trf-1", "amount": "1.00"})


def commit(backend: Backend, *writes: Callable[[UnitOfWork], None]) -> datetime:
    """Apply ``writes`` in one unit of work and commit it; the commit's stamp."""
    with backend.uow() as uow:
        for write in writes:
            write(uow)
        return uow.commit()


def seed(backend: Backend) -> None:
    """Ana (two MXN accounts, one USD), Luis, a shop with a product."""
    accounts = [
        account(ANA, "acc-a1", "1000.00"),
        account(ANA, "acc-a2", "0.00"),
        account(ANA, "acc-usd", "100.00", "USD"),
        account(LUIS, "acc-l1", "500.00"),
        account(SHOP, "acc-s1", "0.00"),
    ]
    commit(backend, *(lambda uow, a=a: uow.accounts.open(a) for a in accounts))
    commit(backend, lambda uow: uow.products.add(product()))
    commit(backend, lambda uow: uow.beneficiaries.add(Beneficiary("ben-luis", ANA, "Luis", "acc-l1", LUIS)))


def balance(backend: Backend, user: str, account_id: str) -> Money:
    with backend.uow() as uow:
        found = uow.accounts.get(user, account_id)
    assert found is not None, account_id
    return found.balance


def full_history(backend: Backend, user: str, account_id: str, page: int = 50) -> list[LedgerEntry]:
    entries: list[LedgerEntry] = []
    position: str | None = None
    while True:
        with backend.uow() as uow:
            found = uow.ledger.history(user, account_id, page, position)
        assert len(found.items) <= page
        entries.extend(found.items)
        if found.next_position is None:
            return entries
        assert found.items, "a page with a next position is never empty"
        position = found.next_position


def pending_ids(backend: Backend) -> list[str]:
    """Committed, unpublished event ids, oldest first."""
    return [e.event_id for e in backend.outbox.pending(1000)]


def snapshot(backend: Backend) -> dict[str, object]:
    """Everything a failed unit of work in these tests could have touched."""
    with backend.uow() as uow:
        return {
            "balances": {
                (u, a): uow.accounts.get(u, a)
                for u, a in [(ANA, "acc-a1"), (ANA, "acc-a2"), (LUIS, "acc-l1"), (SHOP, "acc-s1")]
            },
            "history": {a: full_history(backend, u, a) for u, a in [(ANA, "acc-a1"), (LUIS, "acc-l1")]},
            "transfer": uow.ledger.get_transfer(ANA, "trf-x"),
            "limit": uow.limits.total(ANA, DAY, "MXN"),
            "idempotency": uow.idempotency.get(ANA, "key-x"),
            "product": uow.products.get("p-1"),
            "orders": uow.orders.list_for_user(ANA, 50, None).items,
            "outbox": pending_ids(backend),
        }


@pytest.fixture(params=backend_names())
def scenario(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Scenario]:
    with opener(request.param)(tmp_path) as backend:
        yield Scenario(make_bank(backend))
