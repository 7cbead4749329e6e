"""Contract: merchant settlement and the sweeper's fairness, through the services, on every backend.

A purchase pays into one of the seller's clearing accounts; the sweeper
settles each clearing account into the seller's account. Every ledger rule
holds for every account, clearing accounts included. A stuck order that keeps
failing is backed off, so it never starves the others.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from centli.domain import events as ev
from centli.domain.application import Application, saga_handlers
from centli.domain.events import DomainEvent
from centli.domain.ledger import AccountRef, Transfer
from centli.domain.marketplace import CreatePurchase
from centli.domain.messagebus import EventBus, InProcessPublisher, OutboxRelay
from centli.domain.money import Money
from centli.domain.orders import Order
from centli.domain.settlement import CLEARING_ACCOUNTS, SETTLEMENT_CONCEPT, clearing_accounts, clearing_for_order
from tests.backends import Backend
from tests.conftest import Bank, make_bank
from tests.contract.conftest import commit, full_history

pytestmark = pytest.mark.contract

ANA, LUIS = "u-ana", "u-luis"
SELLER = AccountRef("u-shop", "acc-9000")
TIMEOUT = timedelta(minutes=15)


def balance_of(bank: Bank, ref: AccountRef) -> Money:
    with bank.backend.uow() as uow:
        found = uow.accounts.get(ref.user_id, ref.account_id)
    assert found is not None, ref
    return found.balance


def assert_ledger_rules(bank: Bank, refs: list[AccountRef]) -> None:
    """Each balance is its opening plus its entries, never negative, with balance_after chaining."""
    for ref in refs:
        current = balance_of(bank, ref)
        assert current.minor >= 0, ref
        history = full_history(bank.backend, ref.user_id, ref.account_id)
        running = current.minor
        for entry in history:  # newest first
            assert entry.balance_after.minor == running, (ref, entry)
            running -= entry.signed_minor
        assert running == 0, ref  # the opening entry is the oldest CREDIT


def customers(bank: Bank) -> list[AccountRef]:
    users = (ANA, LUIS, SELLER.user_id)
    return [AccountRef(u, a.account_id) for u in users for a in bank.app.banking.list_accounts(u)]


def every_account(bank: Bank) -> list[AccountRef]:
    return customers(bank) + clearing_accounts(SELLER)


def total(bank: Bank, refs: list[AccountRef]) -> int:
    """All the money in ``refs`` (read in batches)."""
    with bank.backend.uow() as uow:
        found = uow.accounts.get_many(refs)
    assert len(found) == len(refs)
    return sum(a.balance.minor for a in found)


def big_shop(*product_ids: str) -> dict[str, object]:
    """Ana with plenty of money; the shop's products at 1.00 with plenty of stock."""
    return {
        "users": [{"user_id": ANA}, {"user_id": SELLER.user_id}],
        "accounts": [
            {"user_id": ANA, "account_id": "acc-0001", "opening_balance": "100000.00"},
            {"user_id": SELLER.user_id, "account_id": SELLER.account_id, "opening_balance": "0.00"},
        ],
        "products": [
            {
                "product_id": p,
                "name": p,
                "category": "c",
                "price": "1.00",
                "stock": 500,
                "seller_account_id": "acc-9000",
            }
            for p in product_ids
        ],
    }


def test_clearing_accounts_are_opened_with_the_seller_and_kept_out_of_its_list(any_backend: Backend) -> None:
    bank = make_bank(any_backend)
    assert [a.account_id for a in bank.app.banking.list_accounts(SELLER.user_id)] == [SELLER.account_id]
    for ref in clearing_accounts(SELLER):
        assert balance_of(bank, ref) == Money(0)
    assert len(set(clearing_accounts(SELLER))) == CLEARING_ACCOUNTS


def test_sales_wait_in_clearing_accounts_until_the_sweeper_settles_them(any_backend: Backend) -> None:
    bank = make_bank(any_backend)
    refs = every_account(bank)
    before = total(bank, refs)
    orders = [
        bank.app.marketplace.create_purchase(CreatePurchase.parse(ANA, "p-100", 1, "acc-0001", f"buy-{n}"))
        for n in range(6)
    ]
    bank.settle()
    paid = Money(sum(o.total.minor for o in orders))
    expected: dict[AccountRef, int] = {}
    for order in orders:
        assert bank.app.marketplace.get_order(ANA, order.order_id).status == "CONFIRMED"
        target = clearing_for_order(SELLER, order.order_id)
        expected[target] = expected.get(target, 0) + order.total.minor
    assert len(expected) > 1, "the orders spread over several clearing accounts"
    # Nothing reached the seller's account yet: every sale sits in the clearing account its order chose.
    assert balance_of(bank, SELLER) == Money(0)
    with bank.backend.uow() as uow:
        held = {AccountRef(a.user_id, a.account_id): a.balance.minor for a in uow.accounts.get_many(refs)}
    assert {ref: held[ref] for ref in clearing_accounts(SELLER)} == {
        ref: expected.get(ref, 0) for ref in clearing_accounts(SELLER)
    }
    assert total(bank, refs) == before
    assert_ledger_rules(bank, [*customers(bank), *expected])

    assert bank.app.marketplace.settle_sales(bank.app.banking) == len(expected)
    assert balance_of(bank, SELLER) == paid
    with bank.backend.uow() as uow:
        assert {a.balance.minor for a in uow.accounts.get_many(clearing_accounts(SELLER))} == {0}
    credits = bank.app.banking.list_transactions(SELLER.user_id, SELLER.account_id, 50).entries
    settlement = [e for e in credits if e.description == SETTLEMENT_CONCEPT]
    assert sorted(e.amount.minor for e in settlement) == sorted(expected.values())
    assert total(bank, refs) == before
    assert_ledger_rules(bank, [*customers(bank), *expected])


def test_settlement_is_fenced_per_account_and_minute(any_backend: Backend) -> None:
    bank = make_bank(any_backend, big_shop("p-100"))
    first = bank.app.marketplace.create_purchase(CreatePurchase.parse(ANA, "p-100", 1, "acc-0001", "buy-a"))
    bank.settle()
    assert bank.app.marketplace.settle_sales(bank.app.banking) == 1
    # More money reaches the same clearing account in the same minute (an ordinary ledger transfer,
    # as another sale would): a second run (an overlapping sweeper) moves nothing; the next minute's does.
    target = clearing_for_order(SELLER, first.order_id)
    more = Transfer("trf-more", ANA, "acc-0001", target, Money.of("2.00"), "Venta", bank.clock.now())
    with bank.backend.uow() as uow:
        uow.ledger.post(more)
        uow.commit()
    assert bank.app.marketplace.settle_sales(bank.app.banking) == 0
    assert balance_of(bank, target) == Money.of("2.00")
    bank.clock.advance(timedelta(minutes=1))
    assert bank.app.marketplace.settle_sales(bank.app.banking) == 1
    assert balance_of(bank, target) == Money(0)
    assert balance_of(bank, SELLER) == Money.of("3.00")
    assert bank.app.marketplace.settle_sales(bank.app.banking) == 0  # nothing left: no empty transfers
    assert_ledger_rules(bank, [*customers(bank), target])


def stuck_order(order_id: str, product_id: str, created_at: datetime) -> Order:
    return Order(
        order_id=order_id,
        user_id=ANA,
        product_id=product_id,
        quantity=1,
        total=Money.of("1.00"),
        account_id="acc-0001",
        seller=SELLER,
        status="PENDING",
        version=1,
        created_at=created_at,
        updated_at=created_at,
        correlation_id=f"corr-{order_id}",
    )


def failing_app(bank: Bank, bad_product: str) -> Application:
    """The bank's application, except that cancelling an order of ``bad_product`` always fails."""
    app = bank.app

    def cancel_or_fail(event: DomainEvent) -> None:
        if event.payload.get("product_id") == bad_product:
            raise RuntimeError("this order's compensation always fails")
        app.marketplace.cancel_order(event)

    handlers = {**saga_handlers(app.banking, app.marketplace), ev.PAYMENT_FAILED: [cancel_or_fail]}
    bus = EventBus(handlers)
    relay = OutboxRelay(bank.backend.outbox, InProcessPublisher(bus), batch_size=50)
    return Application(app.banking, app.marketplace, bus, relay)


def test_stuck_orders_that_always_fail_never_starve_the_others(any_backend: Backend) -> None:
    bank = make_bank(any_backend, big_shop("p-bad", "p-good"))
    app = failing_app(bank, "p-bad")
    # 150 purchases whose saga never ran (say, the relay was down): what createPurchase left behind,
    # PENDING orders with their stock reserved, written 25 to a commit. The 100 failing ones are the oldest.
    bad = [f"ord-bad-{n:03d}" for n in range(100)]
    good = [f"ord-good-{n:03d}" for n in range(50)]
    commit(bank.backend, lambda uow: uow.products.reserve("p-bad", len(bad)))
    commit(bank.backend, lambda uow: uow.products.reserve("p-good", len(good)))
    stuck = [stuck_order(oid, "p-bad" if oid in bad else "p-good", bank.clock.now() + timedelta(seconds=n))
             for n, oid in enumerate(bad + good)]  # fmt: skip
    for start in range(0, len(stuck), 25):
        commit(bank.backend, *(lambda uow, o=o: uow.orders.add(o) for o in stuck[start : start + 25]))
    bank.clock.advance(TIMEOUT * 2)

    def orders() -> dict[str, Order]:
        """Ana's orders, a page of 50 at a time (one Query each on DynamoDB)."""
        found: dict[str, Order] = {}
        position: str | None = None
        while True:
            with bank.backend.uow() as uow:
                page = uow.orders.list_for_user(ANA, 50, position)
            found.update((o.order_id, o) for o in page.items)
            if page.next_position is None:
                return found
            position = page.next_position

    def statuses(ids: list[str]) -> set[str]:
        now = orders()
        return {now[oid].status for oid in ids}

    # One page of 100 a run: the first run takes the oldest 100, all failing ones...
    assert app.marketplace.sweep_stuck_orders(app.banking, limit=100, pages=1) == 100
    app.settle()
    assert statuses(bad) == {"PENDING"}
    # ...which are backed off, so the next run reaches the 50 good ones instead of the same 100 again.
    assert app.marketplace.sweep_stuck_orders(app.banking, limit=100, pages=1) == 50
    app.settle()
    assert statuses(good) == {"CANCELLED"}
    assert statuses(bad) == {"PENDING"}
    # The failing ones come back only after their backoff, and back off further each time.
    assert app.marketplace.sweep_stuck_orders(app.banking, limit=100, pages=1) == 0
    bank.clock.advance(TIMEOUT + timedelta(seconds=1))
    assert app.marketplace.sweep_stuck_orders(app.banking, limit=100, pages=1) == 0  # re-announced, not voided again
    app.settle()
    now = orders()
    attempts = {now[oid].sweep_attempts for oid in bad}
    assert attempts == {2}
    # No money moved for any of them, and the stock of the cancelled ones is back.
    assert bank.app.banking.get_balance(ANA, "acc-0001").balance == Money.of("100000.00")
    assert bank.app.marketplace.get_product("p-good").reserved == 0
    assert bank.app.marketplace.get_product("p-bad").reserved == 100


def test_one_run_pages_through_more_stuck_orders_than_one_page(any_backend: Backend) -> None:
    bank = make_bank(any_backend)
    ids = [
        bank.app.marketplace.create_purchase(CreatePurchase.parse(ANA, "p-100", 1, "acc-0001", f"k-{n}")).order_id
        for n in range(7)
    ]
    bank.backend.outbox.mark_published([e.event_id for e in bank.backend.outbox.pending(1000)])
    bank.clock.advance(TIMEOUT * 2)
    assert bank.app.marketplace.sweep_stuck_orders(bank.app.banking, limit=3, pages=10) == 7
    bank.settle()
    assert {bank.app.marketplace.get_order(ANA, oid).status for oid in ids} == {"CANCELLED"}
