"""Shared helpers for the unit tests: bank documents and invariant checks over the in-memory store."""

from __future__ import annotations

from collections import Counter
from typing import Any

from centli.adapters.memory.store import InMemoryStore, all_entries
from centli.domain.catalog import Product
from centli.domain.ledger import AccountRef, LedgerEntry
from centli.domain.money import Money
from centli.domain.orders import Order
from centli.domain.settlement import is_clearing


def rich_bank() -> dict[str, Any]:
    """A bank where limits, not funds, are what stops a transfer."""
    return {
        "users": [{"user_id": "u-ana"}, {"user_id": "u-luis"}, {"user_id": "u-shop"}],
        "accounts": [
            {"user_id": "u-ana", "account_id": "acc-rich", "alias": "Inversión", "opening_balance": "500000.00"},
            {"user_id": "u-ana", "account_id": "acc-save", "alias": "Ahorro", "opening_balance": "0.00"},
            {"user_id": "u-luis", "account_id": "acc-luis", "alias": "Principal", "opening_balance": "100.00"},
            {"user_id": "u-shop", "account_id": "acc-shop", "alias": "Ventas", "opening_balance": "0.00"},
        ],
        "beneficiaries": [
            {"user_id": "u-ana", "beneficiary_id": "ben-luis", "alias": "Luis", "account_id": "acc-luis"},
            {"user_id": "u-luis", "beneficiary_id": "ben-ana", "alias": "Ana", "account_id": "acc-save"},
        ],
        "products": [
            {
                "product_id": "p-1",
                "name": "Audífonos inalámbricos",
                "category": "electronics",
                "price": "499.00",
                "stock": 5,
                "seller_account_id": "acc-shop",
            },
        ],
    }


def products(store: InMemoryStore) -> list[Product]:
    with store.lock:
        return list(store.tables["products"].values())


def orders(store: InMemoryStore) -> list[Order]:
    with store.lock:
        return list(store.tables["orders"].values())


def opening_total(store: InMemoryStore) -> int:
    return sum(e.amount.minor for e in all_entries(store) if e.entry_id.startswith("open-"))


def transfer_debits(store: InMemoryStore) -> list[LedgerEntry]:
    """Debits of customers' accounts (a clearing account's settlement debit moves a seller's own money)."""
    return [e for e in all_entries(store) if e.direction == "DEBIT" and not is_clearing(e.account_id)]


def stored_balance(store: InMemoryStore, ref: AccountRef) -> Money:
    """Any account's balance, clearing accounts included (their ids are not valid agent input)."""
    with store.unit_of_work() as uow:
        found = uow.accounts.get(ref.user_id, ref.account_id)
    assert found is not None, ref
    return found.balance


def assert_ledger_invariants(store: InMemoryStore) -> None:
    """Money conserved, no negative balance, every history sums to its balance with consistent balance_after."""
    with store.lock:
        balances = {(a.user_id, a.account_id): a.balance for a in store.tables["accounts"].values()}
        histories = {key: list(entries) for key, entries in store.entries.items()}
    assert sum(b.minor for b in balances.values()) == opening_total(store)
    for key, balance in balances.items():
        assert balance.minor >= 0, key
        running = 0
        for entry in histories.get(key, []):
            running += entry.signed_minor
            assert entry.balance_after.minor == running, (key, entry)
        assert running == balance.minor, key
    debits = Counter(e.transfer_id for e in all_entries(store) if e.direction == "DEBIT")
    credits = Counter(e.transfer_id for e in all_entries(store) if e.direction == "CREDIT" and e.transfer_id in debits)
    assert debits == credits, "every transfer is one debit and one credit"
    assert all(count == 1 for count in debits.values())


def assert_stock_invariants(store: InMemoryStore) -> None:
    pending: Counter[str] = Counter()
    for order in orders(store):
        if order.status == "PENDING":
            pending[order.product_id] += order.quantity
    for product in products(store):
        assert product.reserved >= 0, product
        assert product.stock - product.reserved >= 0, product
        # Reserving, committing and releasing happen in the same unit of work as the order's change.
        assert product.reserved == pending[product.product_id], product
