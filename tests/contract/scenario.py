"""A small bank with history, shared by the audit and trace tests."""

from __future__ import annotations

from datetime import timedelta

from centli.domain.audit import AuditReport, audit
from centli.domain.banking import CreateTransfer
from centli.domain.marketplace import CreatePurchase
from centli.domain.policy import BankPolicy
from tests.conftest import Bank

ANA = "u-ana"


class Scenario:
    """A bank with a transfer, a CONFIRMED purchase, a CANCELLED one (payment declined) and one the
    sweeper voided (its payment event delivered only after the void)."""

    def __init__(self, bank: Bank) -> None:
        self.bank = bank
        banking, market = bank.app.banking, bank.app.marketplace
        self.transfer = banking.create_transfer(CreateTransfer.parse(ANA, "acc-0001", "100.00", "key-t1", "ben-mama"))
        self.confirmed = market.create_purchase(CreatePurchase.parse(ANA, "p-100", 1, "acc-0001", "key-o1"))
        bank.settle()
        self.cancelled = market.create_purchase(CreatePurchase.parse(ANA, "p-200", 1, "acc-0001", "key-o2"))
        banking.create_transfer(CreateTransfer.parse(ANA, "acc-0001", "23500.00", "key-t2", "acc-0003"))
        bank.settle()
        assert market.get_order(ANA, self.confirmed.order_id).status == "CONFIRMED"
        assert market.get_order(ANA, self.cancelled.order_id).status == "CANCELLED"
        bank.clock.advance(timedelta(minutes=1))
        self.swept = market.create_purchase(CreatePurchase.parse(ANA, "p-100", 1, "acc-0003", "key-o3"))
        bank.clock.advance(BankPolicy().purchase_timeout + timedelta(minutes=1))
        assert bank.app.sweep() == 1  # voids it, then delivers everything, the late payment event included
        assert market.get_order(ANA, self.swept.order_id).status == "CANCELLED"
        bank.clock.advance(timedelta(minutes=1))

    def audit(self) -> AuditReport:
        return audit(self.bank.backend.extras["store"].audit_snapshot(), self.bank.clock.now())
