"""Which rule refuses a write, in one place for every store.

A store keeps only the atomic part of a rule: a lock, a SQL ``WHERE``, a
DynamoDB ``ConditionExpression``. What the rule *is*, and which rule a refused
write broke, is decided here, from what the store saw of the items the write
touches:

- the stored value, decoded (an :class:`Account`, a :class:`Product`, ...);
- ``None`` when the item is missing;
- :data:`HELD` for an item whose own condition held, so the store saw nothing
  of it (DynamoDB returns the item, ``ALL_OLD``, only for a failed condition).

Each ``refuse_*`` function returns the domain error that names the broken
rule, or ``None`` when what it saw breaks none. The in-memory store checks
every write with them (it sees everything, under its lock); SQLite reads the
touched rows inside its transaction and DynamoDB decodes the cancellation
reasons, and both raise :func:`failed` of the answer. Where several rules
fail at once, the order here is the order every store reports them in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Final, Literal, TypeAlias, TypeVar

from centli.domain.catalog import Product
from centli.domain.errors import (
    AccountNotFound,
    ConcurrencyConflict,
    CurrencyMismatch,
    DestinationNotFound,
    DomainError,
    InsufficientFunds,
    LimitExceeded,
    OutOfStock,
    ProductNotFound,
)
from centli.domain.events import EventAlreadyProcessed
from centli.domain.idempotency import DuplicateIdempotencyKey, IdempotencyRecord
from centli.domain.ledger import Account, Beneficiary, DestinationIsBeneficiary, Transfer
from centli.domain.money import Money
from centli.domain.orders import Order

T = TypeVar("T")


class Held:
    """What a store saw of an item whose own condition held: nothing, and no rule broken there."""

    def __repr__(self) -> str:
        return "HELD"


HELD: Final = Held()
#: What a store saw of one item: its value, None when missing, or HELD.
Seen: TypeAlias = T | Held | None
StockChange = Literal["reserve", "release", "commit"]
NOT_HELD = "The reservation is no longer held."


def enforce(refusal: Exception | None) -> None:
    """Raise the refusal, if any (a store that checks in code: the in-memory one)."""
    if refusal is not None:
        raise refusal


def failed(refusal: Exception | None) -> Exception:
    """The error a failed condition raises: the rule it names, else a conflict (the state changed under it)."""
    return ConcurrencyConflict() if refusal is None else refusal


# accounts and transfers ---------------------------------------------------------------
def refuse_funds(account: Seen[Account], minimum: Money, field: str = "account_id") -> DomainError | None:
    """The account is the user's, holds ``minimum.currency`` and at least ``minimum``."""
    if account is None:
        return AccountNotFound(field=field)
    if isinstance(account, Held):
        return None
    if account.currency != minimum.currency:
        return CurrencyMismatch()
    if account.balance < minimum:
        return InsufficientFunds()
    return None


def refuse_transfer(
    transfer: Transfer,
    source: Seen[Account],
    target: Seen[Account],
    *,
    saved: Seen[Beneficiary] = None,
    resolve_destination: bool = False,
) -> Exception | None:
    """A posting's rules, in this order: the source is the user's (AccountNotFound); the target exists
    (with ``resolve_destination``: else the user's ``saved`` beneficiary of that id is named by
    DestinationIsBeneficiary, or DestinationNotFound); both hold the transfer's currency
    (CurrencyMismatch); the source holds the amount (InsufficientFunds).

    An own account of that id wins over a beneficiary of the same id: with a target seen, ``saved``
    is ignored (DynamoDB then sends the posting again without its beneficiary check).
    """
    if source is None:
        return AccountNotFound(field="from_account_id")
    if target is None and resolve_destination:
        if isinstance(saved, Beneficiary):
            return DestinationIsBeneficiary(saved)
        return DestinationNotFound(field="destination_id")
    if target is None:
        return AccountNotFound(field="to_account_id")
    currency = transfer.amount.currency
    if any(isinstance(a, Account) and a.currency != currency for a in (source, target)):
        return CurrencyMismatch()
    return None if isinstance(source, Held) else refuse_funds(source, transfer.amount)


def refuse_new(stored: object, what: str) -> ConcurrencyConflict | None:
    """A record written once (a transfer, an order): ``stored`` is what already has its id (None: nothing)."""
    return None if stored is None else ConcurrencyConflict(f"That {what} already exists.")


# limits --------------------------------------------------------------------------------
def refuse_daily_total(total: Seen[Money], amount: Money, limit: Money) -> LimitExceeded | None:
    """The user's total for the day (None: nothing yet) plus ``amount`` stays within ``limit``."""
    if isinstance(total, Held):
        return None
    if (0 if total is None else total.minor) + amount.minor > limit.minor:
        return LimitExceeded(f"This goes over the daily transfer limit of {limit}.")
    return None


# stock ---------------------------------------------------------------------------------
def refuse_stock(product: Seen[Product], change: StockChange, quantity: int) -> DomainError | None:
    """``reserve``: stock - reserved >= quantity (OutOfStock). ``release``: reserved >= quantity;
    ``commit``: reserved >= quantity and stock >= quantity (ConcurrencyConflict: the reservation
    is gone). Every change needs the product (ProductNotFound)."""
    if product is None:
        return ProductNotFound(field="product_id")
    if isinstance(product, Held):
        return None
    if change == "reserve":
        return OutOfStock() if product.available < quantity else None
    if product.reserved < quantity or (change == "commit" and product.stock < quantity):
        return ConcurrencyConflict(NOT_HELD)
    return None


def changed_stock(product: Product, change: StockChange, quantity: int) -> Product:
    """The product after a change that :func:`refuse_stock` allowed."""
    if change == "reserve":
        return replace(product, reserved=product.reserved + quantity)
    if change == "release":
        return replace(product, reserved=product.reserved - quantity)
    return replace(product, reserved=product.reserved - quantity, stock=product.stock - quantity)


# orders --------------------------------------------------------------------------------
def refuse_version(stored: Seen[Order], order: Order) -> ConcurrencyConflict | None:
    """Optimistic locking: the stored order is still the version ``order`` was made from."""
    if isinstance(stored, Held):
        return None
    if stored is None or stored.version != order.version - 1:
        return ConcurrencyConflict()
    return None


# idempotency and the inbox -------------------------------------------------------------
def refuse_claim(existing: Seen[IdempotencyRecord], record: IdempotencyRecord) -> DuplicateIdempotencyKey | None:
    """No live record under the key (now = ``record.created_at``); else the live one answers."""
    if isinstance(existing, IdempotencyRecord) and existing.is_live(record.created_at):
        return DuplicateIdempotencyKey(existing)
    return None


def refuse_processed(processed: bool, consumer: str, event_id: str) -> EventAlreadyProcessed | None:
    """A consumer handles an event once."""
    return EventAlreadyProcessed(consumer, event_id) if processed else None


# the commit's stamp --------------------------------------------------------------------
def answer_at(record: IdempotencyRecord, posted: Sequence[Transfer], at: datetime) -> IdempotencyRecord:
    """The record as its commit stores it: when it answers with a transfer that commit posts (its
    result is that transfer as the caller built it), the answer carries the commit's stamp ``at``,
    so a replay answers exactly what the first call did."""
    for transfer in posted:
        if record.result == transfer.to_dict():
            return replace(record, result=transfer.stamped(at).to_dict())
    return record
