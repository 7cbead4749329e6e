"""A hot seller on DynamoDB: concurrent purchases, saga steps, settlements and the seller's own spending.

Buyers' threads buy from one seller and run the saga; a sweeper thread keeps
settling the seller's clearing accounts; the seller's thread keeps moving its
settled money to its other account. moto runs one request at a time (see
moto_server.py), so this proves the adapter's conditions under interleaving,
not DynamoDB's TransactionConflicts (bench/capacity.py estimates those).

Afterwards every balance, the seller's clearing accounts included, must equal
what an oracle kept from the answers the threads got, and the tables
themselves (read raw) must keep every ledger rule.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any

import pytest

from centli.adapters.memory import ManualClock, SequentialIds
from centli.domain.application import bootstrap
from centli.domain.banking import CreateTransfer
from centli.domain.errors import InsufficientFunds
from centli.domain.ledger import AccountRef
from centli.domain.loading import parse_bank_document
from centli.domain.marketplace import CreatePurchase
from centli.domain.money import Money
from centli.domain.policy import BankPolicy
from centli.domain.settlement import CLEARING_ACCOUNTS, clearing_accounts, clearing_for_order
from tests.backends.dynamodb import open_store
from tests.conftest import CURSOR_SECRET
from tests.integration.test_dynamodb_concurrency import scan

pytestmark = pytest.mark.integration

BUYERS = 3
PURCHASES_PER_BUYER = 8
OPENING = 3_000  # 30.00: a buyer runs out of money part-way, so some payments are declined
SELLER = AccountRef("u-shop", "acc-shop")
SAVINGS = AccountRef("u-shop", "acc-shop-2")
PRICES = {"p-1": 300, "p-2": 700}


def hot_seller_bank() -> dict[str, Any]:
    buyers = [f"u-{i}" for i in range(BUYERS)]
    return {
        "users": [{"user_id": u} for u in [*buyers, SELLER.user_id]],
        "accounts": [{"user_id": u, "account_id": f"acc-{u}", "opening_balance": "30.00"} for u in buyers]
        + [
            {"user_id": SELLER.user_id, "account_id": SELLER.account_id, "opening_balance": "0.00"},
            {"user_id": SELLER.user_id, "account_id": SAVINGS.account_id, "opening_balance": "0.00"},
        ],
        "products": [
            {"product_id": pid, "name": pid, "category": "c", "price": Money(price).to_decimal_string(), "stock": 1000,
             "seller_account_id": SELLER.account_id}
            for pid, price in PRICES.items()
        ],
    }  # fmt: skip


def test_a_hot_seller_under_concurrent_purchases_and_settlements_matches_the_oracle() -> None:
    with open_store() as store:
        clock = ManualClock()
        app = bootstrap(store.unit_of_work, clock, SequentialIds(), BankPolicy(), CURSOR_SECRET, store)
        store.load(parse_bank_document(hot_seller_bank(), clock.now()))
        orders: dict[str, tuple[str, int]] = {}  # order id -> (buyer, total)
        moved_to_savings: list[int] = []
        settlements: list[int] = []
        crashes: list[BaseException] = []
        lock = threading.Lock()
        buying = threading.Event()
        buying.set()
        start = threading.Barrier(BUYERS + 2)

        def buyer(n: int) -> None:
            rng = random.Random(n)
            start.wait()
            try:
                for i in range(PURCHASES_PER_BUYER):
                    product = rng.choice(list(PRICES))
                    try:
                        order = app.marketplace.create_purchase(
                            CreatePurchase.parse(f"u-{n}", product, 1, f"acc-u-{n}", f"buy-{n}-{i}")
                        )
                    except InsufficientFunds:
                        continue  # refused up front: nothing reserved, nothing to pay
                    with lock:
                        orders[order.order_id] = (f"u-{n}", order.total.minor)
                    if i % 2:  # two orders in flight at a time: the second payment may find the money gone
                        app.settle()  # the saga: payment into a clearing account, then confirm or cancel
                app.settle()
            except BaseException as error:
                crashes.append(error)
                raise

        def sweeper() -> None:
            start.wait()
            try:
                while buying.is_set():
                    settlements.append(app.marketplace.settle_sales(app.banking))
                    clock.advance(timedelta(minutes=1))  # the next run's fence
                    time.sleep(0.5)  # a schedule, not a busy loop
            except BaseException as error:
                crashes.append(error)
                raise

        def seller() -> None:
            start.wait()
            n = 0
            try:
                while buying.is_set():
                    n += 1
                    cmd = CreateTransfer.parse(
                        SELLER.user_id, SELLER.account_id, "1.00", f"save-{n}", destination_id=SAVINGS.account_id
                    )
                    time.sleep(0.3)
                    try:
                        app.banking.create_transfer(cmd)
                    except InsufficientFunds:
                        continue
                    moved_to_savings.append(100)
            except BaseException as error:
                crashes.append(error)
                raise

        helpers = [threading.Thread(target=sweeper), threading.Thread(target=seller)]
        buyers = [threading.Thread(target=buyer, args=(n,)) for n in range(BUYERS)]
        for thread in helpers + buyers:
            thread.start()
        for thread in buyers:
            thread.join(timeout=300)
        buying.clear()
        for thread in helpers:
            thread.join(timeout=120)
        assert not any(t.is_alive() for t in helpers + buyers)
        assert crashes == []
        assert len(orders) > BUYERS * 3
        assert sum(settlements) > 0, "settlement ran while purchases were being paid"
        assert moved_to_savings, "the seller spent settled money concurrently"

        # The oracle: what each account must hold, from the orders' outcomes and the answers the threads got.
        status = {oid: app.marketplace.get_order(buyer, oid).status for oid, (buyer, _) in orders.items()}
        assert set(status.values()) <= {"CONFIRMED", "CANCELLED"} and "CONFIRMED" in status.values()
        paid: Counter[str] = Counter()
        routed: Counter[AccountRef] = Counter()
        for oid, (buyer, total) in orders.items():
            if status[oid] == "CONFIRMED":
                paid[buyer] += total
                routed[clearing_for_order(SELLER, oid)] += total
        assert len(routed) > 1

        def balances() -> dict[AccountRef, int]:
            with store.unit_of_work() as uow:
                refs = [AccountRef(f"u-{n}", f"acc-u-{n}") for n in range(BUYERS)]
                found = uow.accounts.get_many([*refs, SELLER, SAVINGS, *clearing_accounts(SELLER)])
            return {AccountRef(a.user_id, a.account_id): a.balance.minor for a in found}

        def settled_from(ref: AccountRef) -> int:
            with store.unit_of_work() as uow:
                history = uow.ledger.history(ref.user_id, ref.account_id, 50, None).items
            return sum(e.amount.minor for e in history if e.direction == "DEBIT")

        # Mid-way: each clearing account holds what was routed to it less what it settled.
        now = balances()
        assert len(now) == BUYERS + 2 + CLEARING_ACCOUNTS
        for ref in clearing_accounts(SELLER):
            assert now[ref] == routed[ref] - settled_from(ref), ref
        assert sum(now[r] for r in clearing_accounts(SELLER)) + now[SELLER] + now[SAVINGS] == sum(paid.values())

        # One more settlement run: every clearing account is empty and the seller holds every sale.
        clock.advance(timedelta(minutes=1))
        app.marketplace.settle_sales(app.banking)
        final = balances()
        oracle = {AccountRef(f"u-{n}", f"acc-u-{n}"): OPENING - paid[f"u-{n}"] for n in range(BUYERS)}
        oracle |= dict.fromkeys(clearing_accounts(SELLER), 0)
        oracle[SAVINGS] = sum(moved_to_savings)
        oracle[SELLER] = sum(paid.values()) - sum(moved_to_savings)
        assert final == oracle

        # The raw tables keep every ledger rule, for every account.
        t = store.tables
        accounts = {
            f"{a['user_id']['S']}#{a['account_id']['S']}": int(a["balance"]["N"]) for a in scan(store, t.accounts)
        }
        ledger = scan(store, t.transactions)
        heads = {i["account_key"]["S"]: int(i["balance"]["N"]) for i in ledger if i["entry_key"]["S"] == "~HEAD"}
        assert heads == accounts
        assert min(accounts.values()) >= 0 and sum(accounts.values()) == BUYERS * OPENING
        sums: Counter[str] = Counter()
        sides: dict[str, list[str]] = defaultdict(list)
        for e in (i for i in ledger if i["entry_key"]["S"] != "~HEAD"):
            amount = int(e["amount"]["N"])
            sums[e["account_key"]["S"]] += amount if e["direction"]["S"] == "CREDIT" else -amount
            if e["transfer_id"]["S"].startswith("trf-"):
                sides[e["transfer_id"]["S"]].append(e["direction"]["S"])
        assert dict(sums) == heads  # every account has its opening entry, so every head is summed
        assert all(sorted(s) == ["CREDIT", "DEBIT"] for s in sides.values())
        # The seed's index never holds a clearing account's entry (the seller's clearing users are no hot key).
        indexed = store.client.scan(TableName=t.transactions, IndexName="user_id-timestamp-index")["Items"]
        assert indexed and not any("~clr" in i["account_key"]["S"] for i in indexed)
