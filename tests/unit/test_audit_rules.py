"""Each audit rule on a snapshot damaged in memory (the rule lives once, in centli/domain/audit.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from centli.domain.audit import AccountLedger, AuditOptions, AuditSnapshot, audit
from centli.domain.ledger import AccountRef
from centli.domain.money import Money
from tests.conftest import Bank
from tests.contract.scenario import Scenario


@pytest.fixture
def healthy(memory_bank: Bank) -> tuple[Scenario, AuditSnapshot]:
    scenario = Scenario(memory_bank)
    snapshot = memory_bank.backend.extras["store"].audit_snapshot()
    assert audit(snapshot, memory_bank.clock.now()).clean
    return scenario, snapshot


def codes(snapshot: AuditSnapshot, scenario: Scenario, options: AuditOptions | None = None) -> set[str]:
    return {f.code for f in audit(snapshot, scenario.bank.clock.now(), options).findings}


def test_a_transfer_without_its_idempotency_record(healthy: tuple[Scenario, AuditSnapshot]) -> None:
    scenario, snapshot = healthy
    snapshot.idempotency = [r for r in snapshot.idempotency if r.key != "key-t1"]
    assert codes(snapshot, scenario) == {"UNKEYED_WRITE"}
    # Once the record's 24 h are over, a customer's transfer needs none.
    later = audit(snapshot, scenario.bank.clock.now() + timedelta(days=2))
    assert {f.code for f in later.findings} == set()


def test_a_record_pointing_at_nothing(healthy: tuple[Scenario, AuditSnapshot]) -> None:
    scenario, snapshot = healthy
    snapshot.transfers = [t for t in snapshot.transfers if t.transfer_id != scenario.transfer.transfer_id]
    assert {"IDEMPOTENCY_DANGLING", "ENTRY_WITHOUT_TRANSFER"} <= codes(snapshot, scenario)


def test_an_order_paid_twice_and_a_cancelled_order_paid(healthy: tuple[Scenario, AuditSnapshot]) -> None:
    scenario, snapshot = healthy
    payment = next(t for t in snapshot.transfers if t.kind == "PURCHASE_PAYMENT")
    snapshot.transfers.append(replace(payment, transfer_id="trf-again"))
    found = codes(snapshot, scenario)
    assert {"ORDER_PAID_TWICE", "UNKEYED_WRITE"} <= found
    cancelled_paid = replace(payment, transfer_id="trf-x", concept=f"Compra {scenario.cancelled.order_id}")
    snapshot.transfers = [t for t in snapshot.transfers if t.transfer_id != "trf-again"] + [cancelled_paid]
    assert "ORDER_CANCELLED_NOT_VOIDED" in codes(snapshot, scenario)


def test_reserved_stock_that_no_pending_order_holds(healthy: tuple[Scenario, AuditSnapshot]) -> None:
    scenario, snapshot = healthy
    snapshot.products = [replace(p, reserved=p.reserved + 1) for p in snapshot.products]
    assert codes(snapshot, scenario) == {"RESERVED_MISMATCH"}


def test_time_going_backwards_and_a_negative_balance(healthy: tuple[Scenario, AuditSnapshot]) -> None:
    scenario, snapshot = healthy
    ledger = next(lg for lg in snapshot.ledgers if len(lg.entries) >= 2)
    first, second, *rest = ledger.entries
    late = replace(second, timestamp=first.timestamp - timedelta(seconds=1))
    snapshot.ledgers[snapshot.ledgers.index(ledger)] = AccountLedger(ledger.account, [first, late, *rest])
    assert codes(snapshot, scenario) == {"TIME_WENT_BACKWARDS"}
    account = snapshot.ledgers[0].account
    snapshot.ledgers[0] = AccountLedger(replace(account, balance=Money(-1, account.currency)), [])
    assert {"NEGATIVE_BALANCE", "BALANCE_MISMATCH"} <= codes(snapshot, scenario)


def test_clearing_accounts_count_as_the_sellers_money_in_transit(healthy: tuple[Scenario, AuditSnapshot]) -> None:
    scenario, snapshot = healthy
    shop = AccountRef("u-shop", "acc-9000")
    clearing = AccountRef("u-shop", "acc-9000-clearing-1")

    def owner(ref: AccountRef) -> AccountRef | None:
        return shop if ref == clearing else None

    # A payment credited to the seller's clearing account is the seller's; to anyone else's, it is not.
    payment = next(t for t in snapshot.transfers if t.kind == "PURCHASE_PAYMENT")
    moved = replace(payment, to=clearing)
    snapshot.transfers = [moved if t is payment else t for t in snapshot.transfers]
    options = AuditOptions(clearing_owner=owner)
    assert "ORDER_PAYMENT_MISMATCH" not in codes(snapshot, scenario, options)
    assert "ORDER_PAYMENT_MISMATCH" in codes(snapshot, scenario)
    shop_ledger = next(lg for lg in snapshot.ledgers if lg.account.account_id == "acc-9000")
    snapshot.ledgers.append(AccountLedger(replace(shop_ledger.account, account_id=clearing.account_id), []))
    report = audit(snapshot, scenario.bank.clock.now(), options)
    assert report.summary["in_transit"] == {"u-shop/acc-9000": shop_ledger.account.balance.minor}


def test_the_audit_knows_merchant_settlements_clearing_accounts() -> None:
    from centli.domain.settlement import clearing_account, seller_of

    seller = AccountRef("u-shop", "acc-9000")
    assert seller_of(clearing_account(seller, 7)) == seller
    assert seller_of(seller) is None
    assert seller_of(AccountRef("u-shop~clr001", "acc-9000~clr002")) is None  # not one clearing account
    assert AuditOptions().clearing_owner is seller_of
