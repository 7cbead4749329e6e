"""End-of-day reconciliation: every rule a store must keep, checked once over a snapshot of it.

Each store implements :class:`centli.ports.audit.AuditReader` (it reads its
tables as they are, nothing more); :func:`audit` holds every rule, so a rule
lives in one place and means the same on memory, SQLite and DynamoDB. The
rules are DESIGN's "Reconciliation and tracing":

- each balance equals its opening plus its entries, and is never negative;
- entries chain: ``balance_after`` is the previous one plus the entry, and
  timestamps never go backwards in commit order;
- every transfer is one debit of its source and one credit of its target, of
  its amount; no entry without its transfer;
- money is conserved: per currency, the balances sum to the openings;
- every idempotency record points at what it created, and whatever a live
  record could have created is pointed at by one;
- every order's status matches its payment fence and its stock (CONFIRMED:
  paid exactly once; CANCELLED: declined or voided, never paid; each
  product's reserved stock equals the quantities of its PENDING orders);
  a payment credits the seller, or one of the seller's clearing accounts
  (counted as the seller's money in transit);
- every committed event is published or pending, and none has been pending
  longer than ``stale_after``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from centli.domain.banking import CREATE_TRANSFER, ORDER_PAYMENT, order_payment_key
from centli.domain.catalog import Product
from centli.domain.events import DomainEvent
from centli.domain.idempotency import IDEMPOTENCY_WINDOW, IdempotencyRecord
from centli.domain.ledger import Account, AccountRef, LedgerEntry, Transfer, order_of_payment
from centli.domain.marketplace import CREATE_PURCHASE
from centli.domain.orders import Order
from centli.domain.settlement import SETTLEMENT_OPERATION, seller_of


@dataclass(frozen=True, slots=True)
class AccountLedger:
    """An account and its entries in commit order (oldest first), each with the ``balance_after`` it shows."""

    account: Account
    entries: list[LedgerEntry]


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    event: DomainEvent
    published: bool


@dataclass(frozen=True, slots=True)
class InboxRecord:
    """What one consumer did with one event, written in the same atomic write as its effect."""

    consumer: str
    event_id: str
    outcome: str | None
    processed_at: datetime | None


@dataclass
class AuditSnapshot:
    ledgers: list[AccountLedger] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    idempotency: list[IdempotencyRecord] = field(default_factory=list)
    products: list[Product] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    outbox: list[OutboxRecord] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    subject: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditOptions:
    #: An event pending longer than this is a finding (the sweeper republishes after 5 minutes).
    stale_after: timedelta = timedelta(minutes=15)
    #: The seller account a clearing account settles into, or None for any other account
    #: (merchant settlement's clearing accounts, centli.domain.settlement: the seller's money in transit).
    clearing_owner: Callable[[AccountRef], AccountRef | None] = seller_of


@dataclass
class AuditReport:
    checked_at: datetime
    findings: list[Finding]
    summary: dict[str, Any]

    @property
    def clean(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {"clean": self.clean, **asdict(self, dict_factory=iso_times)}


def iso_times(fields: list[tuple[str, Any]]) -> dict[str, Any]:
    """An ``asdict`` dict_factory for the JSON reports: a dataclass's datetimes as ISO 8601 text."""
    return {name: value.isoformat() if isinstance(value, datetime) else value for name, value in fields}


def audit(snapshot: AuditSnapshot, now: datetime, options: AuditOptions | None = None) -> AuditReport:
    """Check every rule over ``snapshot``; findings come in rule order, each rule's in a stable order."""
    opts = options or AuditOptions()
    findings: list[Finding] = []
    summary: dict[str, Any] = {
        "accounts": len(snapshot.ledgers),
        "entries": sum(len(ledger.entries) for ledger in snapshot.ledgers),
        "transfers": len(snapshot.transfers),
        "idempotency_records": len(snapshot.idempotency),
        "products": len(snapshot.products),
        "orders": dict(sorted(Counter(o.status for o in snapshot.orders).items())),
        "events": len(snapshot.outbox),
    }
    findings.extend(_ledgers(snapshot))
    findings.extend(_transfers(snapshot))
    findings.extend(_conservation(snapshot, summary))
    findings.extend(_idempotency(snapshot, now))
    findings.extend(_orders(snapshot, opts))
    findings.extend(_stock(snapshot))
    findings.extend(_outbox(snapshot, now, opts, summary))
    summary["in_transit"] = _in_transit(snapshot, opts)
    return AuditReport(now, findings, summary)


# ledger rules ---------------------------------------------------------------
def _ledgers(snapshot: AuditSnapshot) -> Iterator[Finding]:
    for ledger in sorted(snapshot.ledgers, key=lambda lg: (lg.account.user_id, lg.account.account_id)):
        account = ledger.account
        subject = f"{account.user_id}/{account.account_id}"
        if account.balance.minor < 0:
            yield Finding("NEGATIVE_BALANCE", subject, "The balance is below zero.", {"balance": account.balance.minor})
        running = 0
        previous: LedgerEntry | None = None
        chained = True
        for entry in ledger.entries:
            running += entry.signed_minor
            if chained and entry.balance_after.minor != running:
                chained = False  # one finding per account: every later entry is off too
                yield Finding(
                    "CHAIN_BROKEN",
                    subject,
                    "An entry's balance_after is not the previous one plus the entry.",
                    {"entry_id": entry.entry_id, "balance_after": entry.balance_after.minor, "expected": running},
                )
            if previous is not None and entry.timestamp < previous.timestamp:
                yield Finding(
                    "TIME_WENT_BACKWARDS",
                    subject,
                    "An entry committed after another carries an earlier timestamp.",
                    {
                        "entry_id": entry.entry_id,
                        "timestamp": entry.timestamp.isoformat(),
                        "previous_entry_id": previous.entry_id,
                        "previous_timestamp": previous.timestamp.isoformat(),
                    },
                )
            previous = entry
        if running != account.balance.minor:
            yield Finding(
                "BALANCE_MISMATCH",
                subject,
                "The balance is not the opening plus the entries.",
                {"balance": account.balance.minor, "entries_sum": running},
            )


def _is_opening(entry: LedgerEntry) -> bool:
    return entry.transfer_id == entry.entry_id and entry.entry_id.startswith("open-")


def _transfers(snapshot: AuditSnapshot) -> Iterator[Finding]:
    legs: dict[str, list[LedgerEntry]] = defaultdict(list)
    for ledger in snapshot.ledgers:
        for entry in ledger.entries:
            if not _is_opening(entry):
                legs[entry.transfer_id].append(entry)
    for transfer in sorted(snapshot.transfers, key=lambda t: t.transfer_id):
        own = legs.get(transfer.transfer_id, [])
        expected = {
            ("DEBIT", transfer.user_id, transfer.from_account_id),
            ("CREDIT", transfer.to.user_id, transfer.to.account_id),
        }
        found = Counter((e.direction, e.user_id, e.account_id) for e in own)
        wrong_amount = [e.entry_id for e in own if e.amount != transfer.amount]
        if set(found) != expected or any(n != 1 for n in found.values()) or wrong_amount:
            yield Finding(
                "TRANSFER_UNBALANCED",
                transfer.transfer_id,
                "A transfer is not exactly one debit of its source and one credit of its target, of its amount.",
                {
                    "legs": sorted(f"{d} {u}/{a}" for (d, u, a) in found.elements()),
                    "expected": sorted(f"{d} {u}/{a}" for (d, u, a) in expected),
                    "wrong_amount": wrong_amount,
                },
            )
    for transfer_id in sorted(set(legs) - {t.transfer_id for t in snapshot.transfers}):
        yield Finding(
            "ENTRY_WITHOUT_TRANSFER",
            transfer_id,
            "Ledger entries name a transfer that does not exist.",
            {"entries": sorted(e.entry_id for e in legs[transfer_id])},
        )


def _conservation(snapshot: AuditSnapshot, summary: dict[str, Any]) -> Iterator[Finding]:
    balances: Counter[str] = Counter()
    openings: Counter[str] = Counter()
    for ledger in snapshot.ledgers:
        balances[ledger.account.currency] += ledger.account.balance.minor
        for entry in ledger.entries:
            if _is_opening(entry):
                openings[entry.amount.currency] += entry.amount.minor
    summary["balances_minor"] = dict(sorted(balances.items()))
    for currency in sorted(set(balances) | set(openings)):
        if balances[currency] != openings[currency]:
            yield Finding(
                "MONEY_NOT_CONSERVED",
                currency,
                "The balances do not add up to the opening balances.",
                {"balances": balances[currency], "openings": openings[currency]},
            )


# idempotency ------------------------------------------------------------------
def _idempotency(snapshot: AuditSnapshot, now: datetime) -> Iterator[Finding]:
    existing = {("transfer", t.user_id, t.transfer_id) for t in snapshot.transfers}
    existing |= {("order", o.user_id, o.order_id) for o in snapshot.orders}
    pointed: set[tuple[str, str]] = set()
    for record in sorted(snapshot.idempotency, key=lambda r: (r.user_id, r.key)):
        if record.operation == CREATE_PURCHASE:
            kind = "order"
        elif record.operation in (CREATE_TRANSFER, SETTLEMENT_OPERATION) or (
            record.operation == ORDER_PAYMENT and record.result.get("outcome") == "PAID"
        ):
            kind = "transfer"
        else:
            continue
        target_id = str(record.result.get(f"{kind}_id"))
        pointed.add((kind, target_id))
        if (kind, record.user_id, target_id) not in existing:
            yield Finding(
                "IDEMPOTENCY_DANGLING",
                f"{record.user_id}/{record.key}",
                f"An idempotency record points at a {kind} that does not exist.",
                {"operation": record.operation, f"{kind}_id": target_id},
            )
    window_start = now - IDEMPOTENCY_WINDOW
    for transfer in sorted(snapshot.transfers, key=lambda t: t.transfer_id):
        # Payments are fenced for good; a customer's transfer or a settlement by its key while that record lives.
        keyed = transfer.kind == "PURCHASE_PAYMENT" or (
            transfer.kind in ("TRANSFER", "SETTLEMENT") and transfer.created_at > window_start
        )
        if keyed and ("transfer", transfer.transfer_id) not in pointed:
            yield Finding(
                "UNKEYED_WRITE",
                transfer.transfer_id,
                "A transfer that no idempotency record points at: a retry could not have found it.",
                {"kind": transfer.kind, "user_id": transfer.user_id},
            )
    for order in sorted(snapshot.orders, key=lambda o: o.order_id):
        if order.created_at > window_start and ("order", order.order_id) not in pointed:
            yield Finding(
                "UNKEYED_WRITE",
                order.order_id,
                "An order that no idempotency record points at: a retry could not have found it.",
                {"kind": "ORDER", "user_id": order.user_id},
            )


# orders and stock ---------------------------------------------------------------
def _orders(snapshot: AuditSnapshot, opts: AuditOptions) -> Iterator[Finding]:
    payments: dict[str, list[Transfer]] = defaultdict(list)
    for transfer in snapshot.transfers:
        order_id = order_of_payment(transfer)
        if order_id is not None:
            payments[order_id].append(transfer)
    fences = {(r.user_id, r.key): r for r in snapshot.idempotency if r.operation == ORDER_PAYMENT}
    for order in sorted(snapshot.orders, key=lambda o: o.order_id):
        paid = sorted(payments.get(order.order_id, []), key=lambda t: t.transfer_id)
        fence = fences.get((order.user_id, order_payment_key(order.order_id)))
        outcome = None if fence is None else fence.result.get("outcome")
        facts = {"status": order.status, "fence": outcome, "payments": [t.transfer_id for t in paid]}
        if len(paid) > 1:
            yield Finding("ORDER_PAID_TWICE", order.order_id, "An order was paid more than once.", facts)
        if order.status == "CONFIRMED" and (not paid or outcome != "PAID"):
            yield Finding("ORDER_CONFIRMED_UNPAID", order.order_id, "A CONFIRMED order has no payment.", facts)
        if order.status == "CANCELLED" and (paid or outcome not in ("DECLINED", "VOIDED")):
            yield Finding(
                "ORDER_CANCELLED_NOT_VOIDED",
                order.order_id,
                "A CANCELLED order was paid, or its payment was never declined or voided.",
                facts,
            )
        if outcome == "PAID" and fence is not None and paid and fence.result.get("transfer_id") != paid[0].transfer_id:
            yield Finding("ORDER_FENCE_MISMATCH", order.order_id, "The payment fence names another transfer.", facts)
        if order.status == "CONFIRMED" and paid and order.payment_transfer_id not in {t.transfer_id for t in paid}:
            yield Finding("ORDER_FENCE_MISMATCH", order.order_id, "The order names another payment.", facts)
        for payment in paid:
            owner = opts.clearing_owner(payment.to) or payment.to
            if (
                payment.amount != order.total
                or payment.user_id != order.user_id
                or payment.from_account_id != order.account_id
                or owner != order.seller
            ):
                yield Finding(
                    "ORDER_PAYMENT_MISMATCH",
                    order.order_id,
                    "A payment does not move the order's total from the buyer's account to its seller.",
                    {**facts, "transfer_id": payment.transfer_id},
                )


def _stock(snapshot: AuditSnapshot) -> Iterator[Finding]:
    pending: Counter[str] = Counter()
    for order in snapshot.orders:
        if order.status == "PENDING":
            pending[order.product_id] += order.quantity
    for product in sorted(snapshot.products, key=lambda p: p.product_id):
        if product.reserved < 0 or product.stock < product.reserved:
            yield Finding(
                "STOCK_NEGATIVE",
                product.product_id,
                "Stock or reserved quantity out of range.",
                {"stock": product.stock, "reserved": product.reserved},
            )
        if product.reserved != pending[product.product_id]:
            yield Finding(
                "RESERVED_MISMATCH",
                product.product_id,
                "Reserved stock is not the quantity of the product's PENDING orders.",
                {"reserved": product.reserved, "pending_orders_quantity": pending[product.product_id]},
            )


def _in_transit(snapshot: AuditSnapshot, opts: AuditOptions) -> dict[str, int]:
    """Per seller account: the balances of its clearing accounts, not yet settled into it."""
    transit: Counter[str] = Counter()
    for ledger in snapshot.ledgers:
        account = ledger.account
        owner = opts.clearing_owner(AccountRef(account.user_id, account.account_id))
        if owner is not None:
            transit[f"{owner.user_id}/{owner.account_id}"] += account.balance.minor
    return dict(sorted(transit.items()))


# events -------------------------------------------------------------------------------
def _outbox(snapshot: AuditSnapshot, now: datetime, opts: AuditOptions, summary: dict[str, Any]) -> Iterator[Finding]:
    pending = sorted((r.event for r in snapshot.outbox if not r.published), key=lambda e: (e.occurred_at, e.event_id))
    summary["pending_events"] = len(pending)
    summary["oldest_pending_age_seconds"] = (
        round((now - pending[0].occurred_at).total_seconds(), 3) if pending else None
    )
    for event in pending:
        age = now - event.occurred_at
        if age > opts.stale_after:
            yield Finding(
                "EVENT_UNPUBLISHED",
                event.event_id,
                f"A committed event has waited {int(age.total_seconds())} s to be published.",
                {"type": event.type, "correlation_id": event.correlation_id, "age_seconds": age.total_seconds()},
            )
