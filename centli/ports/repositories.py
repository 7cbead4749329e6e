"""Repositories a unit of work exposes.

Reads go to the store at once. Writes are *intents with guards*: they are
buffered and applied at ``commit()`` in one atomic step (one lock, one SQLite
transaction, one DynamoDB ``TransactWriteItems``). A guard that fails at commit
raises the domain error named in its docstring and nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from centli.domain.catalog import Product
from centli.domain.events import DomainEvent
from centli.domain.idempotency import IdempotencyRecord
from centli.domain.ledger import Account, AccountRef, Beneficiary, LedgerEntry, NewAccount, Transfer
from centli.domain.money import Money
from centli.domain.orders import Order

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list; ``next_position`` is the store's opaque resume point."""

    items: list[T]
    next_position: str | None

    @classmethod
    def cut(cls, rows: Sequence[T], limit: int, position: Callable[[T], str]) -> Page[T]:
        """The first ``limit`` of ``rows`` (fetched one past the limit, to know there is more);
        the next page resumes after the last item shown."""
        items = list(rows[:limit])
        return cls(items, position(items[-1]) if len(rows) > limit else None)


class AccountRepository(Protocol):
    def list_for_user(self, user_id: str) -> list[Account]: ...

    def get(self, user_id: str, account_id: str) -> Account | None: ...

    def get_many(self, refs: Sequence[AccountRef]) -> list[Account]:
        """The accounts that exist among ``refs`` (in no particular order): consistent reads, batched."""
        ...

    def open(self, account: NewAccount) -> None:
        """Write intent: create the account and its opening entry, unless it already exists (then no-op)."""
        ...

    def require(self, user_id: str, account_id: str, minimum: Money) -> None:
        """Guard only: the account is the user's (AccountNotFound), holds ``minimum.currency``
        (CurrencyMismatch) and at least ``minimum`` (InsufficientFunds)."""
        ...


class BeneficiaryRepository(Protocol):
    def list_for_user(self, user_id: str) -> list[Beneficiary]: ...

    def get(self, user_id: str, beneficiary_id: str) -> Beneficiary | None: ...

    def add(self, beneficiary: Beneficiary) -> None:
        """Write intent: save or replace (data loading only; the agent never adds one)."""
        ...


class LedgerRepository(Protocol):
    def post(self, transfer: Transfer, *, resolve_destination: bool = False) -> None:
        """Write intent: one debit and one credit plus the transfer record, all stamped with the
        commit's stamp (``transfer.created_at`` is the caller's guess; see ``UnitOfWork.commit``).

        Guards: the source account is ``transfer.user_id``'s and the target
        exists (AccountNotFound), both hold the transfer's currency
        (CurrencyMismatch), the source holds the amount (InsufficientFunds).

        With ``resolve_destination`` the target is a destination id taken as
        one of the user's own accounts first: when no such account exists,
        commit raises DestinationIsBeneficiary (carrying the user's saved
        beneficiary of that id) or DestinationNotFound, and nothing is
        written. Stores answer it within the same atomic write (DynamoDB: a
        condition check on the beneficiary in the same transaction), so an
        own-account transfer still needs no read.
        """
        ...

    def get_transfer(self, user_id: str, transfer_id: str) -> Transfer | None:
        """A transfer the user sent, or None."""
        ...

    def history(self, user_id: str, account_id: str, limit: int, position: str | None) -> Page[LedgerEntry]:
        """The account's entries, newest first, each with its ``balance_after``.

        Raises AccountNotFound when the account is not the user's.
        """
        ...


class DailyLimitRepository(Protocol):
    def add(self, user_id: str, day: str, amount: Money, limit: Money) -> None:
        """Write intent: add to the user's total for ``day``; guard: it stays <= limit (LimitExceeded)."""
        ...

    def total(self, user_id: str, day: str, currency: str) -> Money: ...


class IdempotencyRepository(Protocol):
    def claim(self, record: IdempotencyRecord) -> None:
        """Write intent: store the record. Guard, checked before every other guard:
        no live record (``now < expires_at`` with now = ``record.created_at``)
        under the same user and key, else DuplicateIdempotencyKey(existing). A record that
        answers with a transfer the same commit posts is stored with the commit's stamp
        (:func:`centli.domain.rules.answer_at`)."""
        ...

    def get(self, user_id: str, key: str) -> IdempotencyRecord | None: ...


class ProductRepository(Protocol):
    def get(self, product_id: str) -> Product | None: ...

    def search(self, query: str | None, category: str | None, limit: int, position: str | None) -> Page[Product]:
        """Products matching :meth:`Product.matches`, ordered by product_id."""
        ...

    def add(self, product: Product) -> None:
        """Write intent: create the product unless it exists (then no-op; stock is not reset)."""
        ...

    def reserve(self, product_id: str, quantity: int) -> None:
        """Write intent: reserved += quantity; guards: exists (ProductNotFound),
        stock - reserved >= quantity (OutOfStock)."""
        ...

    def release(self, product_id: str, quantity: int) -> None:
        """Write intent: reserved -= quantity; guard: reserved >= quantity (ConcurrencyConflict)."""
        ...

    def commit_reserved(self, product_id: str, quantity: int) -> None:
        """Write intent: stock -= quantity and reserved -= quantity; guard as release."""
        ...


class OrderRepository(Protocol):
    def get(self, user_id: str, order_id: str) -> Order | None: ...

    def list_for_user(self, user_id: str, limit: int, position: str | None) -> Page[Order]:
        """The user's orders, newest first."""
        ...

    def list_pending_before(self, cutoff: datetime, limit: int) -> list[Order]:
        """PENDING orders whose ``sweep_time`` is before ``cutoff`` (for the sweeper), oldest
        ``sweep_time`` first, ties by order id."""
        ...

    def add(self, order: Order) -> None:
        """Write intent; guard: no order with that id (ConcurrencyConflict)."""
        ...

    def update(self, order: Order) -> None:
        """Write intent; guard: the stored version is ``order.version - 1`` (ConcurrencyConflict)."""
        ...


class Inbox(Protocol):
    def mark_processed(
        self, consumer: str, event_id: str, outcome: str = "processed", at: datetime | None = None
    ) -> None:
        """Write intent; guard: not processed before by ``consumer`` (EventAlreadyProcessed).

        ``outcome`` (what the consumer did: paid, declined, confirmed, ...) and
        ``at`` (the application's clock) are stored with the mark, for ``centli trace``.
        """
        ...


class Outbox(Protocol):
    def add(self, event: DomainEvent) -> None:
        """Write intent: the event is published after the commit, at least once."""
        ...
