"""Rule-based property test of the whole in-memory bank.

Random transfers (own and to beneficiaries), purchases, saga deliveries,
retries of earlier requests with the same idempotency key, failures injected
at the unit of work's fault points, sweeps and clock moves. After every step:
money is conserved, no balance is negative, every history sums to its
balance, no idempotency key took effect twice and stock is never oversold.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from centli.adapters.memory import InMemoryStore, ManualClock, SequentialIds
from centli.adapters.memory.store import all_entries
from centli.domain.application import bootstrap
from centli.domain.banking import CREATE_TRANSFER, CreateTransfer
from centli.domain.errors import DomainError
from centli.domain.ledger import LedgerEntry
from centli.domain.loading import parse_bank_document
from centli.domain.marketplace import CREATE_PURCHASE, CreatePurchase
from centli.domain.money import Money
from centli.domain.policy import BankPolicy
from centli.ports.faults import AFTER_COMMIT, BEFORE_COMMIT, BEFORE_PUBLISH
from tests.conftest import CURSOR_SECRET
from tests.unit.helpers import assert_ledger_invariants, assert_stock_invariants, orders

BANK = {
    "users": [{"user_id": "u-ana"}, {"user_id": "u-luis"}, {"user_id": "u-shop"}],
    "accounts": [
        {"user_id": "u-ana", "account_id": "acc-a1", "opening_balance": "2000.00"},
        {"user_id": "u-ana", "account_id": "acc-a2", "opening_balance": "500.00"},
        {"user_id": "u-luis", "account_id": "acc-l1", "opening_balance": "300.00"},
        {"user_id": "u-shop", "account_id": "acc-shop", "opening_balance": "0.00"},
    ],
    "beneficiaries": [
        {"user_id": "u-ana", "beneficiary_id": "ben-luis", "account_id": "acc-l1"},
        {"user_id": "u-luis", "beneficiary_id": "ben-ana", "account_id": "acc-a1"},
    ],
    "products": [
        {"product_id": "p-1", "name": "Bocina", "category": "electronics", "price": "150.00", "stock": 4,
         "seller_account_id": "acc-shop"},
        {"product_id": "p-2", "name": "Taza", "category": "home", "price": "30.50", "stock": 10,
         "seller_account_id": "acc-shop"},
    ],
}  # fmt: skip
OWN_ACCOUNTS = {"u-ana": ["acc-a1", "acc-a2"], "u-luis": ["acc-l1"]}
BENEFICIARY = {"u-ana": "ben-luis", "u-luis": "ben-ana"}
KEYS = [f"k{n}" for n in range(6)]


class InjectedFault(Exception):
    """A failure planned by the test: a crash before a commit, or a timeout after it."""


class PlannedFaults:
    """FaultPoints that raise once at each armed point, then behave."""

    def __init__(self) -> None:
        self.armed: set[str] = set()

    def arm(self, point: str) -> None:
        self.armed.add(point)

    def check(self, point: str) -> None:
        if point in self.armed:
            self.armed.discard(point)
            raise InjectedFault(point)


users = st.sampled_from(sorted(OWN_ACCOUNTS))
amounts = st.integers(min_value=1, max_value=120_000).map(lambda minor: Money(minor).to_decimal_string())
fault_points = st.sampled_from([None, None, BEFORE_COMMIT, AFTER_COMMIT])


class BankMachine(RuleBasedStateMachine):
    transfers = Bundle("transfers")
    purchases = Bundle("purchases")

    def __init__(self) -> None:
        super().__init__()
        self.faults = PlannedFaults()
        self.clock = ManualClock()
        self.store = InMemoryStore(self.faults, self.clock)
        self.app = bootstrap(
            self.store.unit_of_work,
            self.clock,
            SequentialIds(),
            BankPolicy(),
            CURSOR_SECRET,
            self.store,
            self.faults,
        )
        self.store.load(parse_bank_document(BANK, self.clock.now()))
        #: The transfer or order id each (user, key) answered with, once known.
        self.answers: dict[tuple[str, str], str] = {}

    def _run(self, fault: str | None, call: object) -> object:
        if fault is not None:
            self.faults.arm(fault)
        try:
            result = call()  # type: ignore[operator]
        except DomainError as error:
            event(f"refused: {error.code}")
            return None
        except InjectedFault as injected:
            event(f"fault: {injected}")
            return None
        finally:
            self.faults.armed.clear()
        event("done")
        return result

    def _remember(self, user: str, key: str, answer_id: str) -> None:
        known = self.answers.setdefault((user, key), answer_id)
        assert known == answer_id, f"key {key} of {user} answered {answer_id} after {known}"

    # commands ------------------------------------------------------------------
    @rule(target=transfers, user=users, data=st.data(), amount=amounts, key=st.sampled_from(KEYS), fault=fault_points)
    def transfer(self, user: str, data: st.DataObject, amount: str, key: str, fault: str | None) -> CreateTransfer:
        source = data.draw(st.sampled_from(OWN_ACCOUNTS[user]))
        others = [a for a in OWN_ACCOUNTS[user] if a != source]
        to_own = bool(others) and data.draw(st.booleans())
        destination = others[0] if to_own else BENEFICIARY[user]
        cmd = CreateTransfer.parse(user, source, amount, key, concept=f"key={key}", destination_id=destination)
        self._send(cmd, fault)
        return cmd

    @rule(cmd=transfers, fault=fault_points)
    def retry_transfer(self, cmd: CreateTransfer, fault: str | None) -> None:
        self._send(cmd, fault)

    def _send(self, cmd: CreateTransfer, fault: str | None) -> None:
        done = self._run(fault, lambda: self.app.banking.create_transfer(cmd))
        if done is not None:
            self._remember(cmd.user_id, str(cmd.idempotency_key), done.transfer_id)  # type: ignore[attr-defined]

    @rule(
        target=purchases,
        user=users,
        data=st.data(),
        product=st.sampled_from(["p-1", "p-2"]),
        quantity=st.integers(min_value=1, max_value=3),
        key=st.sampled_from(KEYS),
        fault=fault_points,
    )
    def purchase(
        self, user: str, data: st.DataObject, product: str, quantity: int, key: str, fault: str | None
    ) -> CreatePurchase:
        cmd = CreatePurchase.parse(user, product, quantity, data.draw(st.sampled_from(OWN_ACCOUNTS[user])), key)
        self._buy(cmd, fault)
        return cmd

    @rule(cmd=purchases, fault=fault_points)
    def retry_purchase(self, cmd: CreatePurchase, fault: str | None) -> None:
        self._buy(cmd, fault)

    def _buy(self, cmd: CreatePurchase, fault: str | None) -> None:
        order = self._run(fault, lambda: self.app.marketplace.create_purchase(cmd))
        if order is not None:
            self._remember(cmd.user_id, str(cmd.idempotency_key), order.order_id)  # type: ignore[attr-defined]

    @rule(fault=st.sampled_from([None, BEFORE_COMMIT, AFTER_COMMIT, BEFORE_PUBLISH]))
    def settle(self, fault: str | None) -> None:
        self._run(fault, self.app.settle)

    @rule(fault=fault_points)
    def sweep(self, fault: str | None) -> None:
        self._run(fault, self.app.sweep)

    @rule(minutes=st.integers(min_value=1, max_value=30))
    def move_clock(self, minutes: int) -> None:
        # At most 30 steps x 30 minutes: idempotency records (24 h) never expire within a run.
        self.clock.advance(timedelta(minutes=minutes))

    # invariants ----------------------------------------------------------------
    @invariant()
    def ledger_is_sound(self) -> None:
        assert_ledger_invariants(self.store)

    @invariant()
    def paged_histories_sum_to_balances(self) -> None:
        for user in ("u-ana", "u-luis", "u-shop"):
            for account in self.app.banking.list_accounts(user):
                entries: list[LedgerEntry] = []
                cursor = None
                while True:
                    page = self.app.banking.list_transactions(user, account.account_id, limit=3, cursor=cursor)
                    entries.extend(page.entries)
                    if (cursor := page.next_cursor) is None:
                        break
                running = 0
                for entry in reversed(entries):
                    running += entry.signed_minor
                    assert entry.balance_after.minor == running
                assert running == account.balance.minor
                assert entries[-1].entry_id == f"open-{account.account_id}"

    @invariant()
    def stock_is_never_oversold(self) -> None:
        assert_stock_invariants(self.store)

    @invariant()
    def no_key_takes_effect_twice(self) -> None:
        with self.store.lock:
            records = list(self.store.tables["idempotency"].values())
            transfer_ids = {t.transfer_id for t in self.store.tables["transfers"].values() if t.kind == "TRANSFER"}
        recorded = {(r.user_id, r.key): r for r in records}
        # Every effect is owned by exactly one key's record, and every answer given is that record's.
        assert transfer_ids == {r.result["transfer_id"] for r in records if r.operation == CREATE_TRANSFER}
        order_ids = [o.order_id for o in orders(self.store)]
        assert sorted(order_ids) == sorted(r.result["order_id"] for r in records if r.operation == CREATE_PURCHASE)
        for (user, key), answer in self.answers.items():
            assert recorded[(user, key)].result.get("transfer_id", recorded[(user, key)].result.get("order_id")) == (
                answer
            )
        # The concept carries the key: at most one debit per (sender, key).
        per_key = Counter(
            (e.user_id, e.description)
            for e in all_entries(self.store)
            if e.direction == "DEBIT" and "key=" in e.description
        )
        assert all(count == 1 for count in per_key.values()), per_key

    def teardown(self) -> None:
        # With faults gone, every purchase settles: nothing stays PENDING or reserved.
        self.faults.armed.clear()
        self.app.settle()
        self.clock.advance(BankPolicy().purchase_timeout + timedelta(seconds=1))
        self.app.sweep()
        assert [o.order_id for o in orders(self.store) if o.status == "PENDING"] == []
        assert all(p.reserved == 0 for p in self.store.tables["products"].values())
        assert_ledger_invariants(self.store)


BankMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestBankMachine = BankMachine.TestCase
