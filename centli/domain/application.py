"""Wiring of the domain services and the purchase saga, free of any framework.

The dependency-injector containers in ``centli.entrypoints`` build an
:class:`Application` from configured adapters; tests and the demo call
:func:`bootstrap` directly with in-memory ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from centli.domain import events as ev
from centli.domain.banking import BankingService
from centli.domain.cursor import CursorCodec
from centli.domain.marketplace import MarketplaceService, StuckOrderSweep
from centli.domain.messagebus import EventBus, EventHandler, InProcessPublisher, OutboxRelay
from centli.domain.policy import BankPolicy
from centli.ports.clock import Clock, IdGenerator
from centli.ports.faults import FaultPoints
from centli.ports.messaging import OutboxReader
from centli.ports.unit_of_work import UnitOfWorkFactory


def saga_handlers(banking: BankingService, marketplace: MarketplaceService) -> dict[str, list[EventHandler]]:
    """Which use case consumes which event: the purchase saga as a table."""
    return {
        ev.PURCHASE_INITIATED: [banking.pay_for_order],
        ev.PAYMENT_COMPLETED: [marketplace.confirm_order],
        ev.PAYMENT_FAILED: [marketplace.cancel_order],
    }


@dataclass
class Application:
    banking: BankingService
    marketplace: MarketplaceService
    bus: EventBus
    relay: OutboxRelay | None

    def settle(self) -> int:
        """Deliver every committed event in-process (local and test runs); returns events moved."""
        return 0 if self.relay is None else self.relay.drain()

    def sweep(self) -> int:
        """Compensate purchases stuck past the timeout, settle sellers' clearing accounts, then deliver
        what that produced; returns the voids."""
        return self.sweep_report().voided

    def sweep_report(self) -> StuckOrderSweep:
        """:meth:`sweep`, also counting the stuck orders found (the sweeper's metric)."""
        report = self.marketplace.sweep_stuck_orders_report(self.banking)
        self.marketplace.settle_sales(self.banking)  # merchant settlement: clearing accounts -> sellers
        self.settle()
        return report


def bootstrap(
    uow: UnitOfWorkFactory,
    clock: Clock,
    ids: IdGenerator,
    policy: BankPolicy,
    cursor_secret: bytes | Callable[[], bytes],
    outbox: OutboxReader | None = None,
    faults: FaultPoints | None = None,
) -> Application:
    cursors = CursorCodec(cursor_secret)
    banking = BankingService(uow, clock, ids, policy, cursors)
    marketplace = MarketplaceService(uow, clock, ids, policy, cursors)
    bus = EventBus(saga_handlers(banking, marketplace))
    relay = None if outbox is None else OutboxRelay(outbox, InProcessPublisher(bus), faults=faults)
    return Application(banking, marketplace, bus, relay)
