"""``centli simulate``: a deterministic whole-system simulation, one seed at a time.

One ``random.Random(seed)`` drives everything, single-threaded:

- the workload: transfers, purchases, retries with the same and with a
  different body, reads and paging;
- faults at the ports: a crash before or after a commit (the fault points of
  every unit of work), a conflict and a throttle at commit (what DynamoDB's
  TransactionConflict and throttling become once the adapter's retries are
  spent), a relay crash, a failed, partial, duplicated, reordered or late
  publish, and clock skew;
- a clock the simulation owns, and a scheduler that runs the relay, late
  deliveries, dead-letter redrives and the sweeper (stuck orders, then the
  settlement of sellers' clearing accounts) as steps, in place of the
  background threads.

After every step the oracle checks what was acknowledged (every acknowledged
transfer and order is there, unchanged; a retry returns the original result;
no key commits twice; every event marked published was handed to a consumer,
is in flight or dead-lettered) and :func:`centli.domain.audit.audit` checks
the store. The first broken invariant stops the run and is reported with its
seed; the same seed replays the same run (the run's log digest shows it).
At the end every fault stops, everything is delivered, stuck orders are swept,
and the whole store must be settled and clean.

DynamoDB is not simulated here: its faults are injected below botocore in
``tests/integration/test_dynamodb_faults.py``; this runs on memory and SQLite.
"""

from __future__ import annotations

import hashlib
import logging
import random
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from centli.adapters.memory import InMemoryStore, ManualClock, SequentialIds
from centli.domain.application import Application, bootstrap
from centli.domain.audit import AuditOptions, AuditSnapshot, audit
from centli.domain.banking import CREATE_TRANSFER, CreateTransfer
from centli.domain.errors import (
    ConcurrencyConflict,
    DependencyUnavailable,
    DomainError,
    IdempotencyConflict,
)
from centli.domain.events import DomainEvent
from centli.domain.loading import parse_bank_document
from centli.domain.marketplace import CreatePurchase
from centli.domain.messagebus import EventBus, OutboxRelay
from centli.domain.planted import planted
from centli.domain.policy import BankPolicy
from centli.ports.faults import AFTER_COMMIT, BEFORE_COMMIT, BEFORE_PUBLISH

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
COMMIT_FAULTS = ("crash-before-commit", "crash-after-commit", "conflict", "throttle")
PUBLISH_FAULTS = ("publish-fail", "publish-partial", "duplicate", "reorder", "late", "relay-crash")
ALL_FAULTS = (*COMMIT_FAULTS, *PUBLISH_FAULTS, "skew")
#: Every fault: clock skew too, since a commit stamps its transfer at commit, never before the previous entry.
DEFAULT_FAULTS = frozenset(ALL_FAULTS)
FAULT_RATE = 0.25


class SimulatedCrash(Exception):
    """The process died at a fault point (before or after its commit reached the store)."""


class InvariantBroken(Exception):
    def __init__(self, invariant: str, detail: str) -> None:
        super().__init__(f"{invariant}: {detail}")
        self.invariant = invariant
        self.detail = detail


# the simulation's ports -------------------------------------------------------------
class SimFaults:
    """One-shot faults armed by the scheduler; remembers which fired during a step."""

    def __init__(self) -> None:
        self.armed: dict[str, Exception] = {}
        self.fired: list[str] = []

    def arm(self, point: str, error: Exception) -> None:
        self.armed[point] = error

    def check(self, point: str) -> None:
        error = self.armed.pop(point, None)
        if error is not None:
            self.fired.append(point)
            raise error

    def reset(self) -> None:
        self.armed.clear()
        self.fired.clear()


class SkewedClock:
    """The application's clock: the simulation's time plus this step's skew."""

    def __init__(self, base: ManualClock) -> None:
        self.base = base
        self.skew = timedelta(0)

    def now(self) -> datetime:
        return self.base.now() + self.skew


class SimPublisher:
    """EventBridge as the simulation sees it: accepted events are delivered now or later, at least once."""

    def __init__(self, bus: EventBus, rng: random.Random, faults: SimFaults) -> None:
        self.bus = bus
        self.rng = rng
        self.faults = faults
        self.mode: str | None = None
        self.delivered: set[str] = set()
        self.in_flight: list[DomainEvent] = []

    def _deliver(self, event: DomainEvent) -> bool:
        self.delivered.add(event.event_id)
        return self.bus.handle(event)

    def publish(self, events: Sequence[DomainEvent]) -> list[DomainEvent]:
        mode, self.mode = self.mode, None
        if mode is not None:
            self.faults.fired.append(mode)
        batch = list(events)
        if mode == "publish-fail":
            return batch
        lost: list[DomainEvent] = []
        if mode == "publish-partial" and len(batch) > 1:
            half = len(batch) // 2
            batch, lost = batch[:half], batch[half:]
        if mode == "reorder":
            self.rng.shuffle(batch)
        if mode == "late" and batch:  # accepted now, delivered at a later step
            self.in_flight.append(batch.pop(self.rng.randrange(len(batch))))
        failed = [event for event in batch if not self._deliver(event)]
        if mode == "duplicate":
            for event in batch:
                self._deliver(event)
        return failed + lost

    def deliver_late(self) -> str:
        if not self.in_flight:
            return "nothing in flight"
        event = self.in_flight.pop(self.rng.randrange(len(self.in_flight)))
        if not self._deliver(event):
            self.in_flight.append(event)  # EventBridge retries it later
            return f"{event.event_id} failed, stays in flight"
        return f"{event.event_id} delivered"


# the bank ---------------------------------------------------------------------------------
CUSTOMERS = ("u-1", "u-2", "u-3")


def sim_bank() -> dict[str, Any]:
    accounts = []
    beneficiaries = []
    for n, user in enumerate(CUSTOMERS, start=1):
        accounts.append({"user_id": user, "account_id": f"acc-{n}a", "opening_balance": "5000.00"})
        accounts.append({"user_id": user, "account_id": f"acc-{n}b", "opening_balance": "300.00"})
        nxt = n % len(CUSTOMERS) + 1
        beneficiaries.append({"user_id": user, "beneficiary_id": f"ben-{n}", "account_id": f"acc-{nxt}a"})
    accounts.append({"user_id": "u-shop", "account_id": "acc-shop", "opening_balance": "0.00"})
    products = [
        {"product_id": "p-1", "name": "Audífonos", "category": "electronics", "price": "199.00", "stock": 3},
        {"product_id": "p-2", "name": "Licuadora", "category": "home", "price": "1250.00", "stock": 5},
        {"product_id": "p-3", "name": "Taza", "category": "home", "price": "49.90", "stock": 2},
    ]
    return {
        "users": [{"user_id": u} for u in (*CUSTOMERS, "u-shop")],
        "accounts": accounts,
        "beneficiaries": beneficiaries,
        "products": [{**p, "seller_account_id": "acc-shop"} for p in products],
    }


def _own_accounts(user: str) -> list[str]:
    n = CUSTOMERS.index(user) + 1
    return [f"acc-{n}a", f"acc-{n}b"]


# the model ---------------------------------------------------------------------------------
@dataclass
class Attempt:
    op: str
    user: str
    key: str
    body: tuple[Any, ...]


@dataclass
class KeyState:
    op: str
    acked_id: str | None = None
    acked_body: tuple[Any, ...] | None = None
    #: bodies that may have committed under this key (acknowledged or crashed after commit)
    maybe_bodies: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass
class SimResult:
    seed: int
    backend: str
    steps: int
    digest: str
    failure: InvariantBroken | None
    failed_step: int | None
    log: list[str]
    faults_fired: int

    @property
    def ok(self) -> bool:
        return self.failure is None


@contextmanager
def _quiet_logs() -> Iterator[None]:
    """Injected faults make handlers log errors on purpose: keep the run's output to its report."""
    logger = logging.getLogger("centli")
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)
        logger.propagate = propagate


class Simulation:
    def __init__(
        self, seed: int, backend: str = "memory", faults: frozenset[str] = DEFAULT_FAULTS, workdir: Path | None = None
    ) -> None:
        unknown = set(faults) - set(ALL_FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {', '.join(ALL_FAULTS)}")
        self.seed = seed
        self.backend = backend
        self.enabled = faults
        self.rng = random.Random(seed)  # noqa: S311 - a replayable simulation, not secrecy
        self.faults = SimFaults()
        self.base_clock = ManualClock(T0)
        self.clock = SkewedClock(self.base_clock)
        self.policy = BankPolicy()
        self.store: Any
        if backend == "memory":
            self.store = InMemoryStore(self.faults, self.clock)
        elif backend == "sqlite":
            from centli.adapters.sqlite import SqliteStore

            assert workdir is not None
            self.store = SqliteStore(workdir / f"sim-{seed}.db", self.faults, synchronous="NORMAL", clock=self.clock)
        else:
            raise ValueError(f"the simulation runs on memory or sqlite, not {backend!r}")
        self.app: Application = bootstrap(
            self.store.unit_of_work, self.clock, SequentialIds(), self.policy, b"simulation-cursor-secret"
        )
        self.publisher = SimPublisher(self.app.bus, self.rng, self.faults)
        self.relay = OutboxRelay(self.store, self.publisher, faults=self.faults)
        self.store.load(parse_bank_document(sim_bank(), T0))
        self.keys: dict[tuple[str, str], KeyState] = {}
        self.attempts: list[Attempt] = []
        self.retry_queue: list[Attempt] = []
        self.acked_transfers: dict[str, tuple[str, str, int]] = {}
        self.acked_orders: dict[str, tuple[str, str]] = {}  # order id -> (user, last status seen)
        self.key_counter = 0
        self.log: list[str] = []
        self.faults_fired = 0

    def close(self) -> None:
        close = getattr(self.store, "close", None)
        if close is not None:
            close()

    # running ---------------------------------------------------------------------------------
    def run(self, steps: int) -> SimResult:
        failure: InvariantBroken | None = None
        failed_step: int | None = None
        with _quiet_logs():
            try:
                for step in range(1, steps + 1):
                    failed_step = step
                    self.log.append(f"{step} {self.step()}")
                    self.check()
                failed_step = steps + 1
                self.log.append(f"settle {self.settle_everything()}")
                self.check(final=True)
                failed_step = None
            except InvariantBroken as broken:
                failure = broken
                self.log.append(f"BROKEN {broken}")
        digest = hashlib.sha256("\n".join(self.log).encode()).hexdigest()[:16]
        return SimResult(self.seed, self.backend, steps, digest, failure, failed_step, self.log, self.faults_fired)

    def step(self) -> str:
        self.faults.reset()
        self.clock.skew = timedelta(0)
        if "skew" in self.enabled and self.rng.random() < 0.15:
            self.clock.skew = timedelta(milliseconds=-self.rng.randint(1, 3000))
        actions: list[tuple[str, int, Callable[[], str]]] = [
            ("transfer", 18, self.new_transfer),
            ("purchase", 12, self.new_purchase),
            ("retry", 12, self.retry_same),
            ("retry-different", 4, self.retry_different),
            ("read", 10, self.read),
            ("relay", 22, self.relay_tick),
            ("deliver-late", 6, self.publisher.deliver_late),
            ("redrive", 2, self.redrive),
            ("sweep", 4, self.sweep),
            ("advance", 8, self.advance_small),
            ("advance-past-timeout", 2, self.advance_past_timeout),
        ]
        name, _, action = self.rng.choices(actions, weights=[w for _, w, _ in actions])[0]
        if name in ("transfer", "purchase", "retry", "retry-different", "sweep", "relay", "redrive"):
            self.maybe_arm(publishing=name in ("relay", "redrive"))
        outcome = action()
        self.faults_fired += len(self.faults.fired)
        fired = f" faults={','.join(self.faults.fired)}" if self.faults.fired else ""
        skew = f" skew={self.clock.skew.total_seconds()}" if self.clock.skew else ""
        return f"{name}: {outcome}{fired}{skew}"

    def maybe_arm(self, *, publishing: bool) -> None:
        if self.rng.random() >= FAULT_RATE:
            return
        choices = [f for f in (*COMMIT_FAULTS, *(PUBLISH_FAULTS if publishing else ())) if f in self.enabled]
        if not choices:
            return
        fault = self.rng.choice(choices)
        if fault == "crash-before-commit":
            self.faults.arm(BEFORE_COMMIT, SimulatedCrash(BEFORE_COMMIT))
        elif fault == "crash-after-commit":
            self.faults.arm(AFTER_COMMIT, SimulatedCrash(AFTER_COMMIT))
        elif fault == "conflict":
            self.faults.arm(BEFORE_COMMIT, ConcurrencyConflict())
        elif fault == "throttle":
            self.faults.arm(BEFORE_COMMIT, DependencyUnavailable())
        elif fault == "relay-crash":
            self.faults.arm(BEFORE_PUBLISH, SimulatedCrash(BEFORE_PUBLISH))
        else:
            self.publisher.mode = fault

    # the workload ----------------------------------------------------------------------------
    def _new_key(self) -> str:
        self.key_counter += 1
        return f"k{self.key_counter}"

    def new_transfer(self) -> str:
        user = self.rng.choice(CUSTOMERS)
        source, other = self.rng.sample(_own_accounts(user), 2)
        to_beneficiary = self.rng.random() < 0.5
        minor = self.rng.choice((self.rng.randint(1, 50_000), self.rng.randint(50_000, 600_000)))
        body = (source, f"ben-{CUSTOMERS.index(user) + 1}" if to_beneficiary else other, minor)
        return self.submit(Attempt(CREATE_TRANSFER, user, self._new_key(), body))

    def new_purchase(self) -> str:
        user = self.rng.choice(CUSTOMERS)
        body = (self.rng.choice(("p-1", "p-2", "p-3")), self.rng.randint(1, 2), self.rng.choice(_own_accounts(user)))
        return self.submit(Attempt("createPurchase", user, self._new_key(), body))

    def retry_same(self) -> str:
        if self.retry_queue and self.rng.random() < 0.7:  # a client retrying after a timeout or a 5xx
            attempt = self.retry_queue.pop(0)
        elif self.attempts:
            attempt = self.rng.choice(self.attempts)
        else:
            return "nothing to retry"
        return self.submit(attempt, retry=True)

    def retry_different(self) -> str:
        if not self.attempts:
            return "nothing to retry"
        a = self.rng.choice(self.attempts)
        if a.op == CREATE_TRANSFER:
            body = (*a.body[:2], int(a.body[2]) + 1)
        else:
            body = (a.body[0], 3 - int(a.body[1]), a.body[2])
        return self.submit(Attempt(a.op, a.user, a.key, body), retry=True)

    def submit(self, attempt: Attempt, *, retry: bool = False) -> str:
        state = self.keys.setdefault((attempt.user, attempt.key), KeyState(attempt.op))
        if not retry:
            self.attempts.append(attempt)
        label = f"{attempt.op} {attempt.user}/{attempt.key} {attempt.body}"
        try:
            result_id, replayed = self._call(attempt)
        except SimulatedCrash as crash:
            if str(crash) == AFTER_COMMIT:
                state.maybe_bodies.append(attempt.body)
            self.retry_queue.append(attempt)
            return f"{label} -> crashed at {crash}"
        except IdempotencyConflict:
            possible = [*state.maybe_bodies, *([state.acked_body] if state.acked_body is not None else [])]
            if not any(body != attempt.body for body in possible):
                raise InvariantBroken(
                    "FALSE_IDEMPOTENCY_CONFLICT", f"{label}: no other request may have committed under this key"
                ) from None
            return f"{label} -> IDEMPOTENCY_CONFLICT"
        except DomainError as error:
            if self.faults.fired:
                self.retry_queue.append(attempt)
            elif state.acked_body == attempt.body:
                raise InvariantBroken(
                    "REPLAY_LOST_RESULT", f"{label}: a retry of an acknowledged request got {error.code}"
                ) from None
            return f"{label} -> {error.code}"
        if state.acked_id is not None and state.acked_body == attempt.body:
            if result_id != state.acked_id:
                raise InvariantBroken(
                    "REPLAY_CHANGED_RESULT", f"{label}: acknowledged {state.acked_id}, the retry returned {result_id}"
                )
            if not replayed:
                raise InvariantBroken("REPLAY_NOT_FLAGGED", f"{label}: an earlier result returned as new")
        if replayed and not state.maybe_bodies:
            raise InvariantBroken("FALSE_REPLAY", f"{label}: flagged as a replay, but nothing committed before")
        if state.acked_id is None:
            state.acked_id, state.acked_body = result_id, attempt.body
            state.maybe_bodies.append(attempt.body)
        return f"{label} -> {result_id}"

    def _call(self, attempt: Attempt) -> tuple[str, bool]:
        """The result's id, and whether the service said it is an earlier result returned again."""
        if attempt.op == CREATE_TRANSFER:
            source, destination, minor = attempt.body
            sent = self.app.banking.send_transfer(CreateTransfer(attempt.user, source, minor, attempt.key, destination))
            transfer = sent.value
            self.acked_transfers.setdefault(transfer.transfer_id, (attempt.user, source, transfer.amount.minor))
            return transfer.transfer_id, sent.replayed
        product, quantity, account = attempt.body
        placed = self.app.marketplace.place_purchase(
            CreatePurchase(attempt.user, product, quantity, account, attempt.key)
        )
        self.acked_orders.setdefault(placed.value.order_id, (attempt.user, placed.value.status))
        return placed.value.order_id, placed.replayed

    def read(self) -> str:
        user = self.rng.choice(CUSTOMERS)
        account = self.rng.choice(_own_accounts(user))
        balance = self.app.banking.get_balance(user, account).balance
        seen: list[str] = []
        cursor: str | None = None
        newest_after: int | None = None
        size = self.rng.randint(1, 5)
        while True:
            page = self.app.banking.list_transactions(user, account, size, cursor)
            if newest_after is None and page.entries:
                newest_after = page.entries[0].balance_after.minor
            seen.extend(e.entry_id for e in page.entries)
            cursor = page.next_cursor
            if cursor is None:
                break
        if len(seen) != len(set(seen)) or newest_after != balance.minor:
            raise InvariantBroken("HISTORY_PAGING", f"{user}/{account}: pages repeat an entry or miss the balance")
        orders: list[str] = []
        cursor = None
        while True:
            order_page = self.app.marketplace.list_orders(user, size, cursor)
            orders.extend(o.order_id for o in order_page.orders)
            cursor = order_page.next_cursor
            if cursor is None:
                break
        missing = sorted(o for o, (owner, _) in self.acked_orders.items() if owner == user and o not in orders)
        if missing:
            raise InvariantBroken("ORDER_LOST", f"{user}: acknowledged orders missing from listOrders: {missing}")
        return f"{user}/{account}: {len(seen)} entries, {len(orders)} orders, pages of {size}"

    # the background work, as steps -----------------------------------------------------------------
    def relay_tick(self) -> str:
        try:
            moved = self.relay.relay_once()
        except SimulatedCrash:
            return "relay crashed before publishing"
        return f"{moved} events left the outbox"

    def redrive(self) -> str:
        dead, self.relay.dead_letters = self.relay.dead_letters, []
        failed = self.publisher.publish(dead)
        self.relay.dead_letters.extend(failed)
        return f"redrove {len(dead)}, {len(failed)} still failing"

    def sweep(self) -> str:
        try:
            voided = self.app.marketplace.sweep_stuck_orders(self.app.banking)
            settled = self.app.marketplace.settle_sales(self.app.banking)
        except (SimulatedCrash, DomainError) as error:
            return f"sweeper failed: {type(error).__name__}"
        return f"{voided} voided, {settled} clearing accounts settled"

    def advance_small(self) -> str:
        self.base_clock.advance(timedelta(seconds=self.rng.randint(1, 120)))
        return f"now {self.base_clock.now().isoformat()}"

    def advance_past_timeout(self) -> str:
        self.base_clock.advance(self.policy.purchase_timeout + timedelta(seconds=1))
        return f"now {self.base_clock.now().isoformat()}"

    def settle_everything(self) -> str:
        """Faults stop; everything in flight is delivered, stuck orders swept, dead letters redriven."""
        self.faults.reset()
        self.publisher.mode = None
        self.clock.skew = timedelta(0)
        for _ in range(20):
            while self.publisher.in_flight:
                self.publisher.deliver_late()
            self.redrive()
            self.relay.drain()
            self.base_clock.advance(self.policy.purchase_timeout + timedelta(seconds=1))
            self.app.marketplace.sweep_stuck_orders(self.app.banking)
            self.app.marketplace.settle_sales(self.app.banking)
            self.relay.drain()
            if not self.publisher.in_flight and not self.relay.dead_letters and not self.store.pending(1):
                break
        return f"now {self.base_clock.now().isoformat()}"

    # the oracle --------------------------------------------------------------------------------
    def check(self, *, final: bool = False) -> None:
        banking, market = self.app.banking, self.app.marketplace
        for transfer_id, (user, source, minor) in self.acked_transfers.items():
            found = banking.get_transfer(user, transfer_id)
            if (found.from_account_id, found.amount.minor) != (source, minor):
                raise InvariantBroken("ACKED_TRANSFER_CHANGED", transfer_id)
        for order_id, (user, last) in list(self.acked_orders.items()):
            status = market.get_order(user, order_id).status
            if last not in ("PENDING", status):
                raise InvariantBroken("ORDER_STATUS_REGRESSED", f"{order_id}: {last} -> {status}")
            if final and status == "PENDING":
                raise InvariantBroken("ORDER_STUCK", f"{order_id} is still PENDING after everything settled")
            self.acked_orders[order_id] = (user, status)
        snapshot: AuditSnapshot = self.store.audit_snapshot()
        self._check_keys(snapshot)
        self._check_delivery(snapshot, final=final)
        report = audit(snapshot, self.base_clock.now(), AuditOptions(stale_after=timedelta(days=1)))
        if report.findings:
            first = report.findings[0]
            raise InvariantBroken(f"AUDIT_{first.code}", f"{first.subject}: {first.message} {first.details}")

    def _check_keys(self, snapshot: AuditSnapshot) -> None:
        """No key commits twice: a customer's transfers are at most the keys that may have committed."""
        for user in CUSTOMERS:
            stored = sum(1 for t in snapshot.transfers if t.user_id == user and t.kind == "TRANSFER")
            keys = sum(1 for (u, _), s in self.keys.items() if u == user and s.op == CREATE_TRANSFER and s.maybe_bodies)
            if stored > keys:
                raise InvariantBroken(
                    "KEY_COMMITTED_TWICE", f"{user}: {stored} transfers stored for {keys} keys that may have committed"
                )

    def _check_delivery(self, snapshot: AuditSnapshot, *, final: bool) -> None:
        """At least once: every event marked published reached a consumer, is in flight, or is dead-lettered."""
        parked = {e.event_id for e in (*self.publisher.in_flight, *self.relay.dead_letters)}
        for record in snapshot.outbox:
            event_id = record.event.event_id
            if record.published and event_id not in self.publisher.delivered and event_id not in parked:
                raise InvariantBroken(
                    "EVENT_LOST", f"{record.event.type} {event_id} was marked published but never delivered"
                )
            if final and not record.published:
                raise InvariantBroken("EVENT_NEVER_PUBLISHED", f"{record.event.type} {event_id}")


def run_seed(
    seed: int,
    steps: int,
    backend: str = "memory",
    faults: frozenset[str] = DEFAULT_FAULTS,
    plant: Sequence[str] = (),
) -> SimResult:
    """One seed, one fresh store (a temporary file for SQLite), optionally with planted bugs."""
    with tempfile.TemporaryDirectory(prefix="centli-sim-") as tmp, planted(*plant):
        sim = Simulation(seed, backend, faults, Path(tmp))
        try:
            return sim.run(steps)
        finally:
            sim.close()


def simulate_command(
    seed: int,
    seeds: int,
    steps: int,
    backends: Sequence[str],
    faults: frozenset[str],
    plant: Sequence[str],
    *,
    verbose: bool = False,
    out: Any = None,
) -> int:
    """Run ``seeds`` seeds from ``seed`` on each backend; 0 when every run holds, 1 at the first failure."""
    import sys

    stream = out or sys.stdout
    started = time.perf_counter()
    runs = 0
    for backend in backends:
        for current in range(seed, seed + seeds):
            result = run_seed(current, steps, backend, faults, plant)
            runs += 1
            if verbose:
                print("\n".join(result.log), file=stream)
            if not result.ok:
                assert result.failure is not None
                print(
                    f"FAILED seed {current} on {backend} at step {result.failed_step}: {result.failure}\n"
                    f"replay: centli simulate --seed {current} --steps {steps} --backend {backend}"
                    + ("" if faults == DEFAULT_FAULTS else f" --faults {','.join(sorted(faults))}")
                    + "".join(f" --plant {p}" for p in plant)
                    + " --verbose",
                    file=stream,
                )
                return 1
            print(
                f"seed {current} on {backend}: ok, {steps} steps, {result.faults_fired} faults, digest {result.digest}",
                file=stream,
            )
    minutes = (time.perf_counter() - started) / 60
    print(f"{runs} runs held; {runs / minutes:.0f} seeds/minute", file=stream)
    return 0
