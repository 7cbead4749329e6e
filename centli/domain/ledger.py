"""Accounts, beneficiaries, immutable transfers and ledger entries.

A transfer is one debit and one credit of the same amount. Balances are
derived from entries: an account's balance is its opening entry plus the sum
of its entries, and never goes below zero.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from centli.domain.money import Money

Direction = Literal["CREDIT", "DEBIT"]
TransferKind = Literal["TRANSFER", "PURCHASE_PAYMENT", "SETTLEMENT"]
_KINDS: tuple[TransferKind, ...] = ("TRANSFER", "PURCHASE_PAYMENT", "SETTLEMENT")
OPENING_DESCRIPTION = "Saldo inicial"
_PAYMENT_PREFIX = "Compra "


def last4(account_id: str) -> str:
    """What may be shown or logged of an account id."""
    return account_id[-4:]


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    user_id: str
    alias: str
    balance: Money

    @property
    def currency(self) -> str:
        return self.balance.currency


@dataclass(frozen=True, slots=True)
class Beneficiary:
    """A payee saved by the bank's own app: an account, possibly another customer's."""

    beneficiary_id: str
    user_id: str
    alias: str
    account_id: str
    account_user_id: str

    @property
    def account_last4(self) -> str:
        return last4(self.account_id)


@dataclass(frozen=True, slots=True)
class AccountRef:
    """Where money lands: the owner is part of the key in every store."""

    user_id: str
    account_id: str


@dataclass(frozen=True, slots=True)
class Transfer:
    transfer_id: str
    user_id: str
    from_account_id: str
    to: AccountRef
    amount: Money
    concept: str
    created_at: datetime
    kind: TransferKind = "TRANSFER"
    beneficiary_id: str | None = None
    status: str = "COMPLETED"

    @property
    def debit_entry_id(self) -> str:
        return f"{self.transfer_id}-D"

    @property
    def credit_entry_id(self) -> str:
        return f"{self.transfer_id}-C"

    @property
    def source(self) -> AccountRef:
        return AccountRef(self.user_id, self.from_account_id)

    def stamped(self, at: datetime) -> Transfer:
        """The transfer as committed at ``at`` (its :func:`commit_stamp`): the caller's ``created_at`` is a guess."""
        return replace(self, created_at=at)

    def entries(self, source_after: Money, target_after: Money) -> tuple[LedgerEntry, LedgerEntry]:
        """The debit and the credit, stamped ``created_at``, each with its account's balance after it."""
        return (
            self._entry(self.debit_entry_id, self.source, "DEBIT", source_after),
            self._entry(self.credit_entry_id, self.to, "CREDIT", target_after),
        )

    def _entry(self, entry_id: str, ref: AccountRef, direction: Direction, after: Money) -> LedgerEntry:
        return LedgerEntry(
            entry_id=entry_id,
            account_id=ref.account_id,
            user_id=ref.user_id,
            transfer_id=self.transfer_id,
            direction=direction,
            amount=self.amount,
            description=describe_entry(self, direction),
            timestamp=self.created_at,
            balance_after=after,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "transfer_id": self.transfer_id,
            "user_id": self.user_id,
            "from_account_id": self.from_account_id,
            "to_user_id": self.to.user_id,
            "to_account_id": self.to.account_id,
            "amount_minor": self.amount.minor,
            "currency": self.amount.currency,
            "concept": self.concept,
            "created_at": self.created_at.isoformat(),
            "kind": self.kind,
            "beneficiary_id": self.beneficiary_id,
            "status": self.status,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transfer:
        return cls(
            transfer_id=str(data["transfer_id"]),
            user_id=str(data["user_id"]),
            from_account_id=str(data["from_account_id"]),
            to=AccountRef(str(data["to_user_id"]), str(data["to_account_id"])),
            amount=Money(int(data["amount_minor"]), str(data["currency"])),
            concept=str(data["concept"]),
            created_at=datetime.fromisoformat(str(data["created_at"])),
            kind=next((k for k in _KINDS if k == data.get("kind")), "TRANSFER"),
            beneficiary_id=None if data.get("beneficiary_id") is None else str(data["beneficiary_id"]),
            status=str(data.get("status", "COMPLETED")),
        )


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One side of a transfer (or an opening balance) as the account holder sees it."""

    entry_id: str
    account_id: str
    user_id: str
    transfer_id: str
    direction: Direction
    amount: Money
    description: str
    timestamp: datetime
    balance_after: Money

    @property
    def signed_minor(self) -> int:
        return self.amount.minor if self.direction == "CREDIT" else -self.amount.minor


@dataclass(frozen=True, slots=True)
class NewAccount:
    """An account to open with its opening ledger entry (data loading)."""

    account_id: str
    user_id: str
    alias: str
    opening_balance: Money
    opened_at: datetime

    @property
    def account(self) -> Account:
        """The account as opened: its balance is the opening balance."""
        return Account(self.account_id, self.user_id, self.alias, self.opening_balance)

    def opening_entry(self) -> LedgerEntry:
        """The first entry of every account: a CREDIT of the opening balance, its own transfer."""
        entry_id = f"open-{self.account_id}"
        return LedgerEntry(
            entry_id=entry_id,
            account_id=self.account_id,
            user_id=self.user_id,
            transfer_id=entry_id,
            direction="CREDIT",
            amount=self.opening_balance,
            description=OPENING_DESCRIPTION,
            timestamp=self.opened_at,
            balance_after=self.opening_balance,
        )


@dataclass(frozen=True, slots=True)
class TransferLimits:
    """Per-transfer maximum and per-user daily total, in one currency."""

    per_transfer: Money
    daily_total: Money


class DestinationIsBeneficiary(Exception):
    """Raised at commit by a posting that resolves its destination: it is not one of the customer's
    own accounts, but the customer has a saved beneficiary with that id (internal to the service)."""

    def __init__(self, beneficiary: Beneficiary) -> None:
        super().__init__("the destination is a saved beneficiary")
        self.beneficiary = beneficiary


def commit_stamp(now: datetime, *previous: datetime | None) -> datetime:
    """The one timestamp a commit gives its transfer and both entries: the clock read at commit
    (inside the lock or transaction), but never earlier than the previous entry of any account it
    posts to, so a statement reads in time order even when clocks are skewed (``None``: unknown)."""
    return max((now, *(p for p in previous if p is not None)))


def describe_entry(transfer: Transfer, direction: Direction) -> str:
    """The history line a customer reads for one side of a transfer."""
    if transfer.concept:
        return transfer.concept
    if transfer.kind == "PURCHASE_PAYMENT":
        return "Compra" if direction == "DEBIT" else "Venta"
    return "Transferencia enviada" if direction == "DEBIT" else "Transferencia recibida"


def payment_concept(order_id: str) -> str:
    """The concept of an order's payment transfer: how a payment names its order."""
    return f"{_PAYMENT_PREFIX}{order_id}"


def order_of_payment(transfer: Transfer) -> str | None:
    """The order a purchase payment pays for (None for any other transfer)."""
    if transfer.kind != "PURCHASE_PAYMENT" or not transfer.concept.startswith(_PAYMENT_PREFIX):
        return None
    return transfer.concept[len(_PAYMENT_PREFIX) :]
