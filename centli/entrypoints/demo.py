"""A short scripted tour of the in-memory bank: balance, transfer, purchase through the saga."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from centli.adapters.memory import InMemoryStore
from centli.adapters.system import SystemClock, UlidGenerator
from centli.domain.application import Application, bootstrap
from centli.domain.banking import CreateTransfer
from centli.domain.errors import DomainError
from centli.domain.loading import parse_bank_document
from centli.domain.marketplace import CreatePurchase
from centli.domain.policy import BankPolicy


def demo_bank() -> dict[str, Any]:
    """The small demo bank shipped inside the package."""
    document: dict[str, Any] = json.loads(resources.files("centli.demo").joinpath("bank.json").read_text("utf-8"))
    return document


def build_demo_app() -> tuple[Application, InMemoryStore]:
    clock = SystemClock()
    store = InMemoryStore(clock=clock)
    app = bootstrap(store.unit_of_work, clock, UlidGenerator(), BankPolicy(), b"demo-only-cursor-secret", store)
    store.load(parse_bank_document(demo_bank(), clock.now()))
    return app, store


def run_demo(out: Any = print) -> None:
    app, _ = build_demo_app()
    user = "u-ana"
    out("CENTLI demo: the in-memory bank from centli/demo/bank.json\n")
    for account in app.banking.list_accounts(user):
        out(f"  {account.alias:<10} {account.account_id}  {account.balance}")

    out("\n> Ana sends 500.00 MXN to her saved beneficiary 'Mamá'")
    cmd = CreateTransfer.parse(
        user, "acc-0001", "500.00", "demo-transfer-1", destination_id="ben-mama", concept="Para el súper"
    )
    transfer = app.banking.create_transfer(cmd)
    out(f"  transfer {transfer.transfer_id}: {transfer.status}, {transfer.amount}")
    again = app.banking.send_transfer(cmd)
    out(
        f"  the same request again (same idempotency key) returns {again.value.transfer_id} with "
        f"replayed={again.replayed}: no second debit"
    )
    out(f"  Nómina balance now {app.banking.get_balance(user, 'acc-0001').balance}")

    out("\n> Ana buys 'Audífonos inalámbricos' (p-100) paying from Nómina")
    order = app.marketplace.create_purchase(CreatePurchase(user, "p-100", 1, "acc-0001", "demo-purchase-1"))
    out(f"  order {order.order_id}: {order.status}, total {order.total}")
    moved = app.settle()
    settled = app.marketplace.get_order(user, order.order_id)
    out(f"  the saga delivered {moved} events; the order is now {settled.status}")
    product = app.marketplace.get_product("p-100")
    out(f"  p-100 stock {product.stock}, reserved {product.reserved}")

    out("\n> Ana tries to buy 3 'Licuadora' from Ahorro (balance 1000.00)")
    try:
        app.marketplace.create_purchase(CreatePurchase(user, "p-200", 3, "acc-0003", "demo-purchase-2"))
    except DomainError as error:
        out(f"  refused: {error.code} ({error.status}): {error.message}")

    out("\n> Ana's latest movements on Nómina")
    for entry in app.banking.list_transactions(user, "acc-0001").entries:
        out(
            f"  {entry.timestamp:%Y-%m-%d %H:%M}  {entry.direction:<6} {entry.amount.to_decimal_string():>10}"
            f"  balance {entry.balance_after.to_decimal_string():>10}  {entry.description}"
        )
