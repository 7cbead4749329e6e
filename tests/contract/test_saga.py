"""Contract: the purchase saga end to end through the services, on every backend."""

from __future__ import annotations

import pytest

from centli.domain.banking import CreateTransfer
from centli.domain.errors import OutOfStock
from centli.domain.ledger import AccountRef
from centli.domain.marketplace import CreatePurchase
from centli.domain.money import Money
from centli.domain.settlement import clearing_accounts
from tests.backends import Backend
from tests.conftest import Bank, make_bank

pytestmark = pytest.mark.contract

ANA = "u-ana"


def total_money(bank: Bank) -> int:
    """Every customer's money plus the shop's sales still in its clearing accounts."""
    users = ("u-ana", "u-luis", "u-shop")
    customers = sum(a.balance.minor for u in users for a in bank.app.banking.list_accounts(u))
    with bank.backend.uow() as uow:
        clearing = uow.accounts.get_many(clearing_accounts(AccountRef("u-shop", "acc-9000")))
    return customers + sum(a.balance.minor for a in clearing)


def test_purchase_confirmed(any_backend: Backend) -> None:
    bank = make_bank(any_backend)
    before = total_money(bank)
    order = bank.app.marketplace.create_purchase(CreatePurchase.parse(ANA, "p-100", 2, "acc-0001", "buy-1"))
    assert order.status == "PENDING"
    assert bank.app.marketplace.get_product("p-100").reserved == 2
    bank.settle()
    confirmed = bank.app.marketplace.get_order(ANA, order.order_id)
    assert (confirmed.status, confirmed.version) == ("CONFIRMED", 2)
    product = bank.app.marketplace.get_product("p-100")
    assert (product.stock, product.reserved) == (8, 0)
    assert bank.app.banking.get_balance(ANA, "acc-0001").balance == Money.of("24002.00")
    assert bank.app.banking.get_balance("u-shop", "acc-9000").balance == Money(0)  # in clearing until settled
    assert total_money(bank) == before
    bank.app.sweep()
    assert bank.app.banking.get_balance("u-shop", "acc-9000").balance == Money.of("998.00")
    assert total_money(bank) == before
    # A retry of the purchase answers with the same order and buys nothing more.
    again = bank.app.marketplace.create_purchase(CreatePurchase.parse(ANA, "p-100", 2, "acc-0001", "buy-1"))
    bank.settle()
    assert again.order_id == order.order_id
    assert bank.app.marketplace.get_product("p-100").stock == 8
    assert [o.order_id for o in bank.app.marketplace.list_orders(ANA).orders] == [order.order_id]


def test_payment_failure_is_compensated(any_backend: Backend) -> None:
    bank = make_bank(any_backend)
    before = total_money(bank)
    order = bank.app.marketplace.create_purchase(CreatePurchase.parse(ANA, "p-100", 1, "acc-0003", "buy-1"))
    bank.app.banking.create_transfer(CreateTransfer.parse(ANA, "acc-0003", "900", "drain", destination_id="acc-0001"))
    bank.settle()
    cancelled = bank.app.marketplace.get_order(ANA, order.order_id)
    assert (cancelled.status, cancelled.cancel_reason) == ("CANCELLED", "INSUFFICIENT_FUNDS")
    product = bank.app.marketplace.get_product("p-100")
    assert (product.stock, product.reserved) == (10, 0)
    assert bank.app.banking.get_balance(ANA, "acc-0003").balance == Money.of("100.00")
    assert bank.app.banking.get_balance("u-shop", "acc-9000").balance == Money(0)
    assert total_money(bank) == before


def test_out_of_stock_is_refused_up_front(any_backend: Backend) -> None:
    bank = make_bank(any_backend)
    with pytest.raises(OutOfStock):
        bank.app.marketplace.create_purchase(CreatePurchase.parse(ANA, "p-200", 4, "acc-0001", "buy-1"))
    assert bank.app.marketplace.list_orders(ANA).orders == []
    assert bank.app.marketplace.get_product("p-200").reserved == 0


def test_a_destination_id_is_resolved_own_accounts_first_on_every_backend(any_backend: Backend) -> None:
    """destination_id: an own account, else a saved beneficiary, else 404; the same on every store."""
    from centli.domain.errors import DestinationNotFound
    from centli.domain.ledger import Beneficiary

    bank = make_bank(any_backend)
    banking = bank.app.banking
    own = banking.send_transfer(CreateTransfer.parse(ANA, "acc-0001", "10", "d-1", destination_id="acc-0003"))
    assert (own.value.to.account_id, own.value.beneficiary_id, own.replayed) == ("acc-0003", None, False)
    ben = banking.send_transfer(CreateTransfer.parse(ANA, "acc-0001", "20", "d-2", destination_id="ben-mama"))
    assert (ben.value.to.account_id, ben.value.beneficiary_id, ben.replayed) == ("acc-0002", "ben-mama", False)
    again = banking.send_transfer(CreateTransfer.parse(ANA, "acc-0001", "20", "d-2", destination_id="ben-mama"))
    assert (again.value, again.replayed) == (ben.value, True)
    with pytest.raises(DestinationNotFound):
        banking.create_transfer(CreateTransfer.parse(ANA, "acc-0001", "1", "d-3", destination_id="acc-0002"))  # Luis's
    # Data loaded before loading refused it: a beneficiary with the id of an own account. Own accounts win.
    with any_backend.uow() as uow:
        uow.beneficiaries.add(Beneficiary("acc-0003", ANA, "Luis", "acc-0002", "u-luis"))
        uow.commit()
    clash = banking.create_transfer(CreateTransfer.parse(ANA, "acc-0001", "5", "d-4", destination_id="acc-0003"))
    assert (clash.to.account_id, clash.beneficiary_id) == ("acc-0003", None)
    balances = {a.account_id: a.balance for a in banking.list_accounts(ANA)}
    assert balances == {"acc-0001": Money.of("24965.00"), "acc-0003": Money.of("1015.00")}
    assert banking.get_balance("u-luis", "acc-0002").balance == Money.of("820.50")
