"""The purchase saga end to end on the in-memory backend: payment, compensation, dedupe, the sweeper."""

from __future__ import annotations

from datetime import timedelta

import pytest

from centli.adapters.memory.store import InMemoryStore
from centli.domain import events as ev
from centli.domain.banking import CreateTransfer
from centli.domain.errors import (
    AccountNotFound,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidInput,
    OrderNotFound,
    OutOfStock,
)
from centli.domain.events import DomainEvent
from centli.domain.ledger import AccountRef
from centli.domain.marketplace import CreatePurchase
from centli.domain.money import Money
from centli.domain.orders import Order
from centli.domain.policy import BankPolicy
from centli.domain.settlement import SETTLEMENT_CONCEPT, clearing_for_order
from tests.conftest import Bank
from tests.unit.helpers import assert_ledger_invariants, assert_stock_invariants, stored_balance, transfer_debits

ANA = "u-ana"
TIMEOUT = BankPolicy().purchase_timeout  # what make_bank wires


def store_of(bank: Bank) -> InMemoryStore:
    store: InMemoryStore = bank.backend.extras["store"]
    return store


def committed(bank: Bank) -> list[DomainEvent]:
    """Every event committed to the outbox, in commit order (published or not)."""
    with store_of(bank).lock:
        return list(store_of(bank).tables["outbox"].values())


def buy(bank: Bank, product: str, quantity: object, account: str = "acc-0001", key: str = "buy-1") -> Order:
    return bank.app.marketplace.create_purchase(CreatePurchase.parse(ANA, product, quantity, account, key))


def money_of(bank: Bank, user: str, account: str) -> Money:
    return bank.app.banking.get_balance(user, account).balance


def events_of(bank: Bank, type_: str) -> list[DomainEvent]:
    return [e for e in committed(bank) if e.type == type_]


def assert_consistent(bank: Bank) -> None:
    assert_ledger_invariants(store_of(bank))
    assert_stock_invariants(store_of(bank))


def test_purchase_confirmed_end_to_end(memory_bank: Bank) -> None:
    order = buy(memory_bank, "p-100", "2")
    assert (order.status, order.total, order.version) == ("PENDING", Money.of("998.00"), 1)
    reserved = memory_bank.app.marketplace.get_product("p-100")
    assert (reserved.stock, reserved.reserved, reserved.available) == (10, 2, 8)

    assert memory_bank.settle() > 0
    settled = memory_bank.app.marketplace.get_order(ANA, order.order_id)
    assert (settled.status, settled.version) == ("CONFIRMED", 2)
    product = memory_bank.app.marketplace.get_product("p-100")
    assert (product.stock, product.reserved) == (8, 0)
    assert money_of(memory_bank, ANA, "acc-0001") == Money.of("24002.00")
    # Merchant settlement: the sale waits in one of the seller's clearing accounts until the sweeper runs.
    clearing = clearing_for_order(AccountRef("u-shop", "acc-9000"), order.order_id)
    assert money_of(memory_bank, "u-shop", "acc-9000") == Money.of("0.00")
    assert stored_balance(store_of(memory_bank), clearing) == Money.of("998.00")
    payment = memory_bank.app.banking.get_transfer(ANA, str(settled.payment_transfer_id))
    assert (payment.kind, payment.amount, payment.to) == ("PURCHASE_PAYMENT", Money(99_800), clearing)
    assert memory_bank.app.sweep() == 0
    assert money_of(memory_bank, "u-shop", "acc-9000") == Money.of("998.00")
    assert stored_balance(store_of(memory_bank), clearing) == Money.of("0.00")
    credit = memory_bank.app.banking.list_transactions("u-shop", "acc-9000").entries[0]
    assert (credit.direction, credit.amount, credit.description) == ("CREDIT", Money(99_800), SETTLEMENT_CONCEPT)
    assert [e.type for e in committed(memory_bank)] == [
        ev.INVENTORY_RESERVED,
        ev.PURCHASE_INITIATED,
        ev.PAYMENT_COMPLETED,
        ev.ORDER_CONFIRMED,
    ]
    # Every event of the saga carries the order's correlation id.
    assert {e.correlation_id for e in committed(memory_bank)} == {order.correlation_id}
    assert_consistent(memory_bank)


def test_payment_failure_at_payment_time_is_compensated(memory_bank: Bank) -> None:
    order = buy(memory_bank, "p-100", 1, account="acc-0003")  # 499.00 of 1000.00: enough right now
    # Before the payment runs, the money leaves the account.
    memory_bank.app.banking.create_transfer(
        CreateTransfer.parse(ANA, "acc-0003", "600", "drain", destination_id="acc-0001")
    )
    memory_bank.settle()
    cancelled = memory_bank.app.marketplace.get_order(ANA, order.order_id)
    assert (cancelled.status, cancelled.cancel_reason, cancelled.version) == ("CANCELLED", "INSUFFICIENT_FUNDS", 2)
    product = memory_bank.app.marketplace.get_product("p-100")
    assert (product.stock, product.reserved) == (10, 0)
    assert money_of(memory_bank, ANA, "acc-0003") == Money.of("400.00")
    assert money_of(memory_bank, "u-shop", "acc-9000") == Money(0)
    [failed] = events_of(memory_bank, ev.PAYMENT_FAILED)
    # The seed's compensation lost product_id; ours carries it forward.
    assert failed.payload["product_id"] == "p-100" and failed.payload["reason"] == "INSUFFICIENT_FUNDS"
    assert len(events_of(memory_bank, ev.INVENTORY_RELEASED)) == len(events_of(memory_bank, ev.ORDER_CANCELLED)) == 1
    assert_consistent(memory_bank)


def test_create_purchase_refusals_leave_nothing_behind(memory_bank: Bank) -> None:
    with pytest.raises(OutOfStock) as raised:
        buy(memory_bank, "p-200", 4)
    assert raised.value.status == 422
    with pytest.raises(InsufficientFunds):
        buy(memory_bank, "p-200", 1, account="acc-0003", key="buy-2")  # 1299.90 > 1000.00
    with pytest.raises(InvalidInput):
        buy(memory_bank, "p-200", 0, key="buy-3")
    product = memory_bank.app.marketplace.get_product("p-200")
    assert (product.stock, product.reserved) == (3, 0)
    assert memory_bank.app.marketplace.list_orders(ANA).orders == []
    assert store_of(memory_bank).pending(10) == []
    # All 3 in stock can be bought; the 4th unit cannot.
    buy(memory_bank, "p-200", 3, key="buy-4")
    with pytest.raises(OutOfStock):
        buy(memory_bank, "p-200", 1, key="buy-5")


def test_create_purchase_is_idempotent(memory_bank: Bank) -> None:
    first = buy(memory_bank, "p-100", 1)
    again = buy(memory_bank, "p-100", "1")
    assert again == first
    assert memory_bank.app.marketplace.get_product("p-100").reserved == 1
    with pytest.raises(IdempotencyConflict):
        buy(memory_bank, "p-100", 2)
    memory_bank.settle()
    assert buy(memory_bank, "p-100", 1).order_id == first.order_id
    assert money_of(memory_bank, ANA, "acc-0001") == Money.of("24501.00")


def test_duplicate_event_delivery_has_no_second_effect(memory_bank: Bank) -> None:
    order = buy(memory_bank, "p-100", 1)
    memory_bank.settle()
    before = (
        money_of(memory_bank, ANA, "acc-0001"),
        memory_bank.app.marketplace.get_product("p-100"),
        memory_bank.app.marketplace.get_order(ANA, order.order_id),
        len(committed(memory_bank)),
    )
    for event in list(committed(memory_bank)):
        assert memory_bank.app.bus.handle(event)  # at-least-once: the same event again
    memory_bank.settle()
    after = (
        money_of(memory_bank, ANA, "acc-0001"),
        memory_bank.app.marketplace.get_product("p-100"),
        memory_bank.app.marketplace.get_order(ANA, order.order_id),
        len(committed(memory_bank)),
    )
    assert after == before
    assert len(transfer_debits(store_of(memory_bank))) == 1
    assert_consistent(memory_bank)


def test_sweeper_cancels_a_stuck_order_and_a_late_payment_takes_no_money(memory_bank: Bank) -> None:
    order = buy(memory_bank, "p-100", 3)
    [initiated] = store_of(memory_bank).pending(10)[1:]
    assert initiated.type == ev.PURCHASE_INITIATED
    # Not stuck yet: nothing happens.
    memory_bank.clock.advance(TIMEOUT - timedelta(seconds=1))
    assert memory_bank.app.marketplace.sweep_stuck_orders(memory_bank.app.banking) == 0
    memory_bank.clock.advance(timedelta(seconds=2))
    # sweep() voids the payment and then delivers everything, PURCHASE_INITIATED included.
    assert memory_bank.app.sweep() == 1
    swept = memory_bank.app.marketplace.get_order(ANA, order.order_id)
    assert (swept.status, swept.cancel_reason) == ("CANCELLED", "TIMEOUT")
    product = memory_bank.app.marketplace.get_product("p-100")
    assert (product.stock, product.reserved) == (10, 0)
    # PURCHASE_INITIATED delivered (again) after the void: still no money moves.
    memory_bank.app.bus.handle(initiated)
    assert money_of(memory_bank, ANA, "acc-0001") == Money.of("25000.00")
    assert money_of(memory_bank, "u-shop", "acc-9000") == Money(0)
    assert transfer_debits(store_of(memory_bank)) == []
    assert memory_bank.app.sweep() == 0
    assert_consistent(memory_bank)


def test_a_payment_completed_before_the_sweep_is_never_voided(memory_bank: Bank) -> None:
    order = buy(memory_bank, "p-100", 1)
    [initiated] = events_of(memory_bank, ev.PURCHASE_INITIATED)
    memory_bank.app.bus.handle(initiated)  # paid, but PAYMENT_COMPLETED is not delivered yet
    memory_bank.clock.advance(TIMEOUT * 2)
    assert memory_bank.app.sweep() == 0
    confirmed = memory_bank.app.marketplace.get_order(ANA, order.order_id)
    assert confirmed.status == "CONFIRMED"
    assert money_of(memory_bank, ANA, "acc-0001") == Money.of("24501.00")
    assert money_of(memory_bank, "u-shop", "acc-9000") == Money.of("499.00")
    assert events_of(memory_bank, ev.PAYMENT_FAILED) == []
    assert_consistent(memory_bank)


def test_orders_belong_to_their_buyer(memory_bank: Bank) -> None:
    order = buy(memory_bank, "p-100", 1)
    with pytest.raises(OrderNotFound) as raised:
        memory_bank.app.marketplace.get_order("u-luis", order.order_id)
    assert raised.value.status == 404
    assert memory_bank.app.marketplace.list_orders("u-luis").orders == []
    # Buying from another customer's account is refused as not found.
    with pytest.raises(AccountNotFound):
        memory_bank.app.marketplace.create_purchase(CreatePurchase.parse("u-luis", "p-100", 1, "acc-0001", "k"))
    assert memory_bank.app.marketplace.get_product("p-100").reserved == 1


def test_list_orders_newest_first_with_paging(memory_bank: Bank) -> None:
    ids = []
    for n in range(5):
        memory_bank.clock.advance(timedelta(seconds=1))
        ids.append(buy(memory_bank, "p-100", 1, key=f"buy-{n}").order_id)
    first = memory_bank.app.marketplace.list_orders(ANA, limit=3)
    assert [o.order_id for o in first.orders] == ids[::-1][:3]
    assert first.next_cursor is not None
    rest = memory_bank.app.marketplace.list_orders(ANA, limit=3, cursor=first.next_cursor)
    assert [o.order_id for o in rest.orders] == ids[::-1][3:]
    assert rest.next_cursor is None


def test_a_purchase_event_redelivered_a_day_after_the_void_takes_no_money(memory_bank: Bank) -> None:
    # A DLQ redrive can deliver PURCHASE_INITIATED days late, after the sweeper voided the order.
    order = buy(memory_bank, "p-100", 1)
    [initiated] = events_of(memory_bank, ev.PURCHASE_INITIATED)
    memory_bank.clock.advance(TIMEOUT + timedelta(seconds=1))
    assert memory_bank.app.sweep() == 1
    assert memory_bank.app.marketplace.get_order(ANA, order.order_id).status == "CANCELLED"
    memory_bank.clock.advance(timedelta(hours=25))
    memory_bank.app.bus.handle(initiated)
    memory_bank.settle()
    assert memory_bank.app.marketplace.get_order(ANA, order.order_id).status == "CANCELLED"
    assert money_of(memory_bank, ANA, "acc-0001") == Money.of("25000.00")
    assert transfer_debits(store_of(memory_bank)) == []
    assert_consistent(memory_bank)


def test_a_paid_order_whose_confirmation_was_lost_is_confirmed_by_the_sweeper_even_days_later(
    memory_bank: Bank,
) -> None:
    # The payment happens, but PAYMENT_COMPLETED is lost (say, parked in a DLQ): the order stays PENDING.
    order = buy(memory_bank, "p-100", 1)
    store = store_of(memory_bank)
    [initiated] = events_of(memory_bank, ev.PURCHASE_INITIATED)
    memory_bank.app.bus.handle(initiated)
    store.mark_published([e.event_id for e in store.pending(100)])  # every event so far vanishes
    paid = money_of(memory_bank, ANA, "acc-0001")
    assert paid == Money.of("24501.00")
    # Long after any 24 h idempotency window, the sweeper must not void a paid order: it re-announces the payment.
    memory_bank.clock.advance(timedelta(days=3))
    assert memory_bank.app.sweep() == 0
    settled = memory_bank.app.marketplace.get_order(ANA, order.order_id)
    assert settled.status == "CONFIRMED"
    assert money_of(memory_bank, ANA, "acc-0001") == paid  # no second debit, no refund needed
    product = memory_bank.app.marketplace.get_product("p-100")
    assert (product.stock, product.reserved) == (9, 0)
    assert len(transfer_debits(store)) == 1
    assert_consistent(memory_bank)


def test_a_declined_order_whose_failure_was_lost_is_cancelled_by_the_sweeper(memory_bank: Bank) -> None:
    order = buy(memory_bank, "p-200", 1)
    drain = CreateTransfer.parse(ANA, "acc-0001", "24000.00", "drain", destination_id="acc-0003")
    memory_bank.app.banking.create_transfer(drain)  # 1000.00 left for a 1299.90 payment
    store = store_of(memory_bank)
    [initiated] = events_of(memory_bank, ev.PURCHASE_INITIATED)
    memory_bank.app.bus.handle(initiated)
    store.mark_published([e.event_id for e in store.pending(100)])  # PAYMENT_FAILED is lost
    memory_bank.clock.advance(TIMEOUT + timedelta(minutes=1))
    assert memory_bank.app.sweep() == 0
    cancelled = memory_bank.app.marketplace.get_order(ANA, order.order_id)
    assert (cancelled.status, cancelled.cancel_reason) == ("CANCELLED", "INSUFFICIENT_FUNDS")
    assert memory_bank.app.marketplace.get_product("p-200").reserved == 0
    assert_consistent(memory_bank)


def test_a_customer_key_cannot_take_an_orders_payment_fence(memory_bank: Bank) -> None:
    order = buy(memory_bank, "p-100", 1)
    with pytest.raises(InvalidInput):  # refused by the key's parser, before any command exists
        CreateTransfer.parse(ANA, "acc-0001", "1.00", f"order-payment:{order.order_id}", destination_id="acc-0003")
    memory_bank.settle()
    assert memory_bank.app.marketplace.get_order(ANA, order.order_id).status == "CONFIRMED"
