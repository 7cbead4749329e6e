"""Marketplace use cases: catalog, purchases and orders, and the saga steps that settle orders."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from centli.domain import events as ev
from centli.domain.catalog import Product
from centli.domain.errors import (
    ConcurrencyConflict,
    DependencyUnavailable,
    DomainError,
    LimitExceeded,
    OrderNotFound,
    ProductNotFound,
)
from centli.domain.events import DomainEvent, EventAlreadyProcessed
from centli.domain.idempotency import DuplicateIdempotencyKey, KeyedRequest, Written, validate_key
from centli.domain.ledger import AccountRef
from centli.domain.orders import Order
from centli.domain.policy import MAX_PAGE_SIZE, purchase_quantity, require_id
from centli.domain.service import Service
from centli.domain.tracing import correlation

if TYPE_CHECKING:  # the sweep asks the payment side to decide; the two contexts share no code
    from centli.domain.banking import BankingService

log = logging.getLogger("centli.marketplace")

CREATE_PURCHASE = "createPurchase"
CONFIRM_CONSUMER = "marketplace.confirm"
CANCEL_CONSUMER = "marketplace.cancel"
#: Optimistic-lock retries for a saga step that lost a race on an order's version.
SAGA_STEP_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class CreatePurchase:
    """A purchase as the agent asked for it, every value parsed (by the edge's models, or :meth:`parse`)."""

    user_id: str
    product_id: str
    quantity: int
    account_id: str
    idempotency_key: str
    #: Every event and log line of this purchase's saga carries it; "" names the saga by the order id.
    correlation_id: str = ""

    @classmethod
    def parse(
        cls,
        user_id: str,
        product_id: object,
        quantity: object,
        account_id: object,
        idempotency_key: object,
        correlation_id: str = "",
    ) -> CreatePurchase:
        return cls(
            user_id,
            require_id(product_id, "product_id"),
            purchase_quantity(quantity),
            require_id(account_id, "account_id"),
            validate_key(idempotency_key),
            correlation_id,
        )


@dataclass(frozen=True, slots=True)
class ProductPage:
    products: list[Product]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class OrderPage:
    orders: list[Order]
    next_cursor: str | None


def order_facts(order: Order) -> ev.OrderFacts:
    return ev.OrderFacts(order.order_id, order.product_id, order.quantity)


@dataclass(frozen=True, slots=True)
class StuckOrderSweep:
    """One sweep: orders found PENDING past the timeout, and how many of their payments were voided
    (the others' decisions were published again)."""

    stuck: int
    voided: int


class MarketplaceService(Service):
    # catalog ----------------------------------------------------------------
    def search_products(
        self,
        user_id: str,
        query: str | None = None,
        category: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> ProductPage:
        text, cat = query or None, category or None
        scope = f"products:{text or ''}:{cat or ''}"
        return ProductPage(
            *self._page(user_id, scope, limit, cursor, lambda uow, n, at: uow.products.search(text, cat, n, at))
        )

    def get_product(self, product_id: str) -> Product:
        return self._found(lambda uow: uow.products.get(product_id), ProductNotFound(field="product_id"))

    # orders -----------------------------------------------------------------
    def get_order(self, user_id: str, order_id: str) -> Order:
        return self._found(lambda uow: uow.orders.get(user_id, order_id), OrderNotFound(field="order_id"))

    def list_orders(self, user_id: str, limit: int | None = None, cursor: str | None = None) -> OrderPage:
        return OrderPage(
            *self._page(user_id, "orders", limit, cursor, lambda uow, n, at: uow.orders.list_for_user(user_id, n, at))
        )

    def create_purchase(self, cmd: CreatePurchase) -> Order:
        """Open a PENDING order, reserve its stock and start the saga, exactly once per key."""
        return self.place_purchase(cmd).value

    def place_purchase(self, cmd: CreatePurchase) -> Written[Order]:
        """:meth:`create_purchase`, saying whether the result is an earlier one returned again."""
        pid, quantity, account_id, key = cmd.product_id, cmd.quantity, cmd.account_id, cmd.idempotency_key
        now = self._clock.now()
        params = {"product_id": pid, "quantity": quantity, "account_id": account_id}
        request = KeyedRequest.of(cmd.user_id, key, CREATE_PURCHASE, params, now)
        with self._uow() as uow:
            try:
                product = uow.products.get(pid)
                if product is None:
                    raise ProductNotFound(field="product_id")
                total = product.price.times(quantity)
                limits = self._policy.limits_for(total.currency)
                if total > limits.per_transfer:
                    raise LimitExceeded(f"A single payment can be at most {limits.per_transfer}.", field="quantity")
            except DomainError as rejected:
                # A retry of a purchase accepted before the catalog or the limits changed keeps its result.
                found = request.recorded_or_raise(uow.idempotency.get(cmd.user_id, key), rejected)
                return Written(Order.from_dict(found), replayed=True)
            order_id = self._ids.new_id("ord")
            order = Order(
                order_id=order_id,
                user_id=cmd.user_id,
                product_id=pid,
                quantity=quantity,
                total=total,
                account_id=account_id,
                seller=product.seller,
                status="PENDING",
                version=1,
                created_at=now,
                updated_at=now,
                correlation_id=cmd.correlation_id or order_id,
            )
            uow.idempotency.claim(request.record(order.to_dict()))
            uow.accounts.require(cmd.user_id, account_id, total)
            uow.products.reserve(pid, quantity)
            uow.orders.add(order)
            facts = order_facts(order).carried()
            seller = product.seller
            initiated = ev.PurchaseInitiated(*facts, account_id, total, seller.account_id, seller.user_id)
            for fact in (ev.InventoryReserved(*facts), initiated):
                uow.outbox.add(self._new_event(fact, cmd.user_id, order.correlation_id, None))
            try:
                uow.commit()
            except DuplicateIdempotencyKey as duplicate:
                return Written(Order.from_dict(request.replay(duplicate.existing)), replayed=True)
        log.info("purchase initiated", extra={"order_id": order.order_id})
        return Written(order, replayed=False)

    # purchase saga: settlement ---------------------------------------------
    def confirm_order(self, event: DomainEvent) -> None:
        """PAYMENT_COMPLETED -> CONFIRMED, and the reserved stock is committed."""
        self._settle(event, ev.PaymentCompleted.of(event), CONFIRM_CONSUMER)

    def cancel_order(self, event: DomainEvent) -> None:
        """PAYMENT_FAILED -> stock released, CANCELLED (the compensation)."""
        self._settle(event, ev.PaymentFailed.of(event), CANCEL_CONSUMER)

    def _settle(self, event: DomainEvent, decision: ev.PaymentCompleted | ev.PaymentFailed, consumer: str) -> None:
        order_id = decision.order_id
        confirm = isinstance(decision, ev.PaymentCompleted)
        for attempt in range(1, SAGA_STEP_ATTEMPTS + 1):
            now = self._clock.now()
            with self._uow() as uow:
                order = uow.orders.get(event.user_id, order_id)
                if order is None:
                    log.error("saga event for an unknown order", extra={"order_id": order_id})
                    return
                if order.status != "PENDING":
                    uow.inbox.mark_processed(consumer, event.event_id, ev.ALREADY_SETTLED, now)
                    # Already settled: the fence on the payment makes a contradiction impossible.
                    log.warning("order already settled", extra={"order_id": order_id, "status": order.status})
                else:
                    facts = order_facts(order).carried()
                    uow.inbox.mark_processed(consumer, event.event_id, ev.CONFIRMED if confirm else ev.RELEASED, now)
                    outcome: tuple[ev.SagaFact, ...]
                    if isinstance(decision, ev.PaymentCompleted):
                        uow.products.commit_reserved(order.product_id, order.quantity)
                        uow.orders.update(order.confirm(now, decision.transfer_id))
                        outcome = (ev.OrderConfirmed(*facts),)
                    else:
                        uow.products.release(order.product_id, order.quantity)
                        uow.orders.update(order.cancel(now, decision.reason))
                        outcome = (ev.InventoryReleased(*facts), ev.OrderCancelled(*facts, reason=decision.reason))
                    for fact in outcome:
                        uow.outbox.add(self._new_event(fact, order.user_id, event.correlation_id, event.event_id))
                try:
                    uow.commit()
                    return
                except EventAlreadyProcessed:
                    return
                except ConcurrencyConflict:
                    if attempt == SAGA_STEP_ATTEMPTS:
                        raise
                    log.info("order changed concurrently; retrying", extra={"order_id": order_id})

    def sweep_stuck_orders(self, banking: BankingService, limit: int = 100, pages: int = 10) -> int:
        """Settle PENDING orders past the policy's timeout (:meth:`BankingService.resolve_stuck_order`); returns
        how many payments were voided.

        Orders come oldest ``sweep_time`` first, ``limit`` a page, up to
        ``pages`` pages a run. Before acting on an order the sweeper backs it
        off (its ``sweep_time`` moves later, doubling each time), so an order
        that keeps failing gives way to the others, and one order's failure
        never stops the run.
        """
        return self.sweep_stuck_orders_report(banking, limit, pages).voided

    def sweep_stuck_orders_report(self, banking: BankingService, limit: int = 100, pages: int = 10) -> StuckOrderSweep:
        """:meth:`sweep_stuck_orders`, also counting the stuck orders found (the sweeper's metric)."""
        timeout = self._policy.purchase_timeout
        voided = found = 0
        for _ in range(pages):
            now = self._clock.now()
            with self._uow() as uow:
                stuck = uow.orders.list_pending_before(now - timeout, limit)
            found += len(stuck)
            for order in stuck:
                try:
                    with correlation(order.correlation_id):
                        voided += self._sweep_one(banking, order, now, timeout)
                except DependencyUnavailable:
                    raise
                except Exception:
                    log.exception("stuck order not settled", extra={"order_id": order.order_id})
            if len(stuck) < limit:
                break
        return StuckOrderSweep(stuck=found, voided=voided)

    def _sweep_one(self, banking: BankingService, order: Order, now: datetime, timeout: timedelta) -> int:
        with self._uow() as uow:
            uow.orders.update(order.backed_off(now, timeout))
            try:
                uow.commit()
            except ConcurrencyConflict:
                return 0  # it changed meanwhile (settled, or another sweeper has it)
        if order.sweep_attempts:
            log.warning("stuck order swept again", extra={"order_id": order.order_id, "attempt": order.sweep_attempts})
        if banking.resolve_stuck_order(order.user_id, order_facts(order), order.correlation_id):
            log.warning("stuck order voided", extra={"order_id": order.order_id})
            return 1
        return 0

    def sellers(self) -> list[AccountRef]:
        """Every seller account named by the catalog (whose clearing accounts the sweeper settles)."""
        found: dict[AccountRef, None] = {}
        position: str | None = None
        while True:
            with self._uow() as uow:
                page = uow.products.search(None, None, MAX_PAGE_SIZE, position)
            found.update(dict.fromkeys(p.seller for p in page.items))
            if page.next_position is None:
                return list(found)
            position = page.next_position

    def settle_sales(self, banking: BankingService) -> int:
        """Merchant settlement: every seller's clearing accounts into the seller's account."""
        return banking.settle_clearing_accounts(self.sellers())
