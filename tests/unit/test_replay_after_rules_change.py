"""A retry keeps its original result even when a rule checked before the idempotency claim changed since."""

from __future__ import annotations

from pathlib import Path

import pytest

from centli.adapters.memory import ManualClock, SequentialIds
from centli.domain.application import bootstrap
from centli.domain.banking import CreateTransfer
from centli.domain.errors import LimitExceeded
from centli.domain.ledger import TransferLimits
from centli.domain.marketplace import CreatePurchase
from centli.domain.money import Money
from centli.domain.policy import BankPolicy
from tests.backends import opener
from tests.conftest import CURSOR_SECRET, make_bank

TIGHT = BankPolicy(limits={"MXN": TransferLimits(Money.of("100.00"), Money.of("100000.00"))})


def test_transfer_and_purchase_replays_survive_a_lower_limit(tmp_path: Path) -> None:
    with opener("memory")(tmp_path) as backend:
        bank = make_bank(backend)
        transfer_cmd = CreateTransfer.parse("u-ana", "acc-0001", "500.00", "t-1", destination_id="ben-mama")
        purchase_cmd = CreatePurchase.parse("u-ana", "p-100", 1, "acc-0001", "p-1")
        transfer = bank.app.banking.create_transfer(transfer_cmd)
        order = bank.app.marketplace.create_purchase(purchase_cmd)
        # The bank lowers the per-transfer limit below both; a retry of the accepted requests keeps their results.
        tightened = bootstrap(backend.uow, bank.clock, SequentialIds(), TIGHT, CURSOR_SECRET, backend.outbox)
        assert tightened.banking.create_transfer(transfer_cmd) == transfer
        assert tightened.marketplace.create_purchase(purchase_cmd).order_id == order.order_id
        assert tightened.banking.get_balance("u-ana", "acc-0001").balance == Money.of("24500.00")
        # A new request is held to the new limit.
        with pytest.raises(LimitExceeded):
            tightened.banking.create_transfer(
                CreateTransfer.parse("u-ana", "acc-0001", "500.00", "t-2", destination_id="ben-mama")
            )
        with pytest.raises(LimitExceeded):
            tightened.marketplace.create_purchase(CreatePurchase.parse("u-ana", "p-100", 1, "acc-0001", "p-2"))


def test_a_rejected_request_is_not_replayed_under_another_requests_key(tmp_path: Path) -> None:
    with opener("memory")(tmp_path) as backend:
        bank = make_bank(backend)
        bank.app.banking.create_transfer(
            CreateTransfer.parse("u-ana", "acc-0001", "50.00", "k-1", destination_id="acc-0003")
        )
        tightened = bootstrap(backend.uow, ManualClock(), SequentialIds(), TIGHT, CURSOR_SECRET, backend.outbox)
        with pytest.raises(LimitExceeded):  # same key, different amount: the rejection stands
            tightened.banking.create_transfer(
                CreateTransfer.parse("u-ana", "acc-0001", "500.00", "k-1", destination_id="acc-0003")
            )
