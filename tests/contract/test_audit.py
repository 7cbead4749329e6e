"""``centli audit``'s rules on every backend: a healthy store is clean, and each kind of damage is found.

The damage is done behind the store's back (raw dicts, SQL, DynamoDB requests),
as a bug or an operator's hand would do it; the audit reads only through the
store's AuditReader.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from centli.domain import events as ev
from centli.domain.audit import AuditReport, audit
from centli.domain.events import DomainEvent
from centli.domain.orders import Order
from tests.backends import Backend
from tests.contract.scenario import Scenario

pytestmark = pytest.mark.contract

ANA, LUIS = "u-ana", "u-luis"


def codes(report: AuditReport) -> set[str]:
    return {f.code for f in report.findings}


# damage, per backend ----------------------------------------------------------------
class Tamper:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.store: Any = backend.extras["store"]

    # memory
    def _memory_entry(self, entry_id: str, change: Callable[[Any], Any | None]) -> None:
        with self.store.lock:
            for key, entries in self.store.entries.items():
                for i, entry in enumerate(entries):
                    if entry.entry_id == entry_id:
                        changed = change(entry)
                        if changed is None:
                            del entries[i]
                        else:
                            entries[i] = changed
                        self.store.entries[key] = entries
                        return
        raise AssertionError(entry_id)

    # sqlite
    def _sql(self, statement: str, *params: object) -> None:
        with sqlite3.connect(self.backend.extras["path"]) as db:
            assert db.execute(statement, params).rowcount == 1

    # dynamodb
    def _entry_item(self, user: str, account: str, entry_id: str) -> dict[str, Any]:
        items = self.store.all_items(
            "query",
            TableName=self.store.tables.transactions,
            KeyConditionExpression="account_key = :k",
            ExpressionAttributeValues={":k": {"S": f"{user}#{account}"}},
            ConsistentRead=True,
        )
        (item,) = [i for i in items if i.get("entry_id", {}).get("S") == entry_id]
        return {"account_key": item["account_key"], "entry_key": item["entry_key"]}

    def _dynamo_add(self, table: str, key: dict[str, Any], attribute: str, delta: int) -> None:
        self.store.client.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="ADD #a :d",
            ExpressionAttributeNames={"#a": attribute},
            ExpressionAttributeValues={":d": {"N": str(delta)}},
        )

    def balance(self, user: str, account: str, delta: int) -> None:
        name = self.backend.name
        if name == "memory":
            with self.store.lock:
                found = self.store.tables["accounts"][(user, account)]
                self.store.tables["accounts"][(user, account)] = replace(
                    found, balance=found.balance.__class__(found.balance.minor + delta, found.currency)
                )
        elif name == "sqlite":
            self._sql(
                "UPDATE accounts SET balance_minor = balance_minor + ? WHERE user_id = ? AND account_id = ?",
                delta,
                user,
                account,
            )
        else:
            key = {"user_id": {"S": user}, "account_id": {"S": account}}
            self._dynamo_add(self.store.tables.accounts, key, "balance", delta)

    def entry_amount(self, user: str, account: str, entry_id: str, delta: int) -> None:
        name = self.backend.name
        if name == "memory":
            self._memory_entry(
                entry_id, lambda e: replace(e, amount=e.amount.__class__(e.amount.minor + delta, e.amount.currency))
            )
        elif name == "sqlite":
            self._sql("UPDATE entries SET amount_minor = amount_minor + ? WHERE entry_id = ?", delta, entry_id)
        else:
            self._dynamo_add(self.store.tables.transactions, self._entry_item(user, account, entry_id), "amount", delta)

    def delete_entry(self, user: str, account: str, entry_id: str) -> None:
        name = self.backend.name
        if name == "memory":
            self._memory_entry(entry_id, lambda e: None)
        elif name == "sqlite":
            self._sql("DELETE FROM entries WHERE entry_id = ?", entry_id)
        else:
            key = self._entry_item(user, account, entry_id)
            self.store.client.delete_item(TableName=self.store.tables.transactions, Key=key)

    def break_chain(self, user: str, account: str, entry_id: str) -> None:
        """Memory and SQLite store each balance_after; DynamoDB derives them from the ledger head."""
        name = self.backend.name
        if name == "memory":
            self._memory_entry(
                entry_id,
                lambda e: replace(
                    e, balance_after=e.balance_after.__class__(e.balance_after.minor + 1, e.amount.currency)
                ),
            )
        elif name == "sqlite":
            self._sql("UPDATE entries SET balance_after_minor = balance_after_minor + 1 WHERE entry_id = ?", entry_id)
        else:
            key = {"account_key": {"S": f"{user}#{account}"}, "entry_key": {"S": "~HEAD"}}
            self._dynamo_add(self.store.tables.transactions, key, "balance", 1)

    def order_status(self, order: Order, status: str) -> None:
        name = self.backend.name
        if name == "memory":
            with self.store.lock:
                stored = self.store.tables["orders"][(order.user_id, order.order_id)]
                self.store.tables["orders"][(order.user_id, order.order_id)] = replace(stored, status=status)
        elif name == "sqlite":
            self._sql("UPDATE orders SET status = ? WHERE order_id = ?", status, order.order_id)
        else:
            import json

            key = {"user_id": {"S": order.user_id}, "order_id": {"S": order.order_id}}
            item = self.store.client.get_item(TableName=self.store.tables.orders, Key=key, ConsistentRead=True)["Item"]
            data = json.loads(item["data"]["S"])
            data["status"] = status
            item["data"] = {"S": json.dumps(data)}
            item["status"] = {"S": status}
            self.store.client.put_item(TableName=self.store.tables.orders, Item=item)


# the tests -------------------------------------------------------------------------------
def test_a_healthy_store_is_clean(scenario: Scenario) -> None:
    report = scenario.audit()
    assert report.findings == []
    assert report.clean
    assert report.summary["orders"] == {"CANCELLED": 2, "CONFIRMED": 1}
    # Two customer transfers, one payment into a clearing account, and the sweeper's settlement of it.
    assert report.summary["transfers"] == 4
    assert report.summary["in_transit"] == {"u-shop/acc-9000": 0}  # every clearing account settled
    assert report.summary["pending_events"] == 0


def test_a_tampered_balance_is_found(scenario: Scenario) -> None:
    Tamper(scenario.bank.backend).balance("u-shop", "acc-9000", 10_000)
    report = scenario.audit()
    assert codes(report) == {"BALANCE_MISMATCH", "MONEY_NOT_CONSERVED"}
    assert [f.subject for f in report.findings if f.code == "BALANCE_MISMATCH"] == ["u-shop/acc-9000"]


def test_a_tampered_entry_amount_is_found(scenario: Scenario) -> None:
    Tamper(scenario.bank.backend).entry_amount(ANA, "acc-0001", f"{scenario.transfer.transfer_id}-D", 1)
    report = scenario.audit()
    assert codes(report) == {"TRANSFER_UNBALANCED", "CHAIN_BROKEN", "BALANCE_MISMATCH"}
    unbalanced = [f for f in report.findings if f.code == "TRANSFER_UNBALANCED"]
    assert [f.subject for f in unbalanced] == [scenario.transfer.transfer_id]
    assert unbalanced[0].details["wrong_amount"] == [f"{scenario.transfer.transfer_id}-D"]


def test_a_missing_credit_leg_is_found(scenario: Scenario) -> None:
    Tamper(scenario.bank.backend).delete_entry(LUIS, "acc-0002", f"{scenario.transfer.transfer_id}-C")
    report = scenario.audit()
    assert {"TRANSFER_UNBALANCED", "BALANCE_MISMATCH"} <= codes(report)
    unbalanced = next(f for f in report.findings if f.code == "TRANSFER_UNBALANCED")
    assert unbalanced.details["legs"] == ["DEBIT u-ana/acc-0001"]


def test_a_broken_chain_is_found(scenario: Scenario) -> None:
    Tamper(scenario.bank.backend).break_chain(ANA, "acc-0001", f"{scenario.transfer.transfer_id}-D")
    report = scenario.audit()
    assert codes(report) == {"CHAIN_BROKEN"}
    assert [f.subject for f in report.findings] == ["u-ana/acc-0001"]


def test_an_order_confirmed_without_payment_is_found(scenario: Scenario) -> None:
    Tamper(scenario.bank.backend).order_status(scenario.cancelled, "CONFIRMED")
    report = scenario.audit()
    assert codes(report) == {"ORDER_CONFIRMED_UNPAID"}
    assert report.findings[0].subject == scenario.cancelled.order_id


def test_an_old_unpublished_event_is_found(scenario: Scenario) -> None:
    bank = scenario.bank
    old = DomainEvent("evt-stuck", ev.TRANSFER_COMPLETED, bank.clock.now() - timedelta(hours=1), "c-1", None, ANA, {})
    with bank.backend.uow() as uow:
        uow.outbox.add(old)
        uow.commit()
    report = scenario.audit()
    assert codes(report) == {"EVENT_UNPUBLISHED"}
    assert report.findings[0].subject == "evt-stuck"
    assert report.summary["pending_events"] == 1
    assert report.summary["oldest_pending_age_seconds"] == 3600.0
    # A young pending event is reported in the summary, not as a finding.
    young = audit(bank.backend.extras["store"].audit_snapshot(), old.occurred_at + timedelta(minutes=5))
    assert young.findings == [] and young.summary["pending_events"] == 1
