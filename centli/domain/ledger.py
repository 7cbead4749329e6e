"""Accounts, beneficiaries, immutable transfers and ledger entries.

A transfer is one debit and one credit of the same amount. Balances are
derived from entries: an account's balance is its opening entry plus the sum
of its entries, and never goes below zero.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from functools import cache
from types import UnionType
from typing import Any, ClassVar, Literal, Protocol, TypeVar, Union, get_args, get_origin, get_type_hints

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
        return to_flat(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Transfer:
        transfer = from_flat(cls, data)
        return transfer if transfer.kind in _KINDS else replace(transfer, kind="TRANSFER")


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


class Record(Protocol):
    """A dataclass instance (what :func:`dataclasses.fields` takes)."""

    __dataclass_fields__: ClassVar[dict[str, Any]]


def to_flat(record: Record, time: Callable[[datetime], str] = datetime.isoformat) -> dict[str, Any]:
    """A stored record as flat data, field by field: a Money ``x`` as ``x_minor`` plus ``currency``, an
    AccountRef ``x`` as ``x_user_id`` plus ``x_account_id``, a datetime as ``time`` makes it text."""
    data: dict[str, Any] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if isinstance(value, Money):
            data[f"{f.name}_minor"], data["currency"] = value.minor, value.currency
        elif isinstance(value, AccountRef):
            data[f"{f.name}_user_id"], data[f"{f.name}_account_id"] = value.user_id, value.account_id
        else:
            data[f.name] = time(value) if isinstance(value, datetime) else value
    return data


R = TypeVar("R", bound=Record)


def from_flat(cls: type[R], data: Mapping[str, Any]) -> R:
    """The record :func:`to_flat` wrote; a dict may be JSON text. A value missing, or null where the field's
    type allows no None, takes the field's default."""
    values: dict[str, Any] = {}
    for name, parse, nullable in _layout(cls):
        if parse is Money:
            values[name] = Money(int(data[f"{name}_minor"]), str(data["currency"]))
        elif parse is AccountRef:
            values[name] = AccountRef(str(data[f"{name}_user_id"]), str(data[f"{name}_account_id"]))
        elif data.get(name) is not None:
            values[name] = parse(data[name])
        elif nullable and name in data:
            values[name] = None
    return cls(**values)


@cache
def _layout(cls: type[Record]) -> tuple[tuple[str, Callable[..., Any], bool], ...]:
    """Each field's name, how its flat value is read back, and whether it may be None."""
    hints = get_type_hints(cls)
    layout = []
    for f in fields(cls):
        options = get_args(hints[f.name]) if get_origin(hints[f.name]) in (Union, UnionType) else (hints[f.name],)
        (kind,) = [o for o in options if o is not type(None)]
        base = Literal if get_origin(kind) is Literal else get_origin(kind) or kind  # dict[str, Any] -> dict
        if base not in _PARSERS:
            raise TypeError(f"{cls.__name__}.{f.name}: no flat form for {kind}")
        layout.append((f.name, _PARSERS[base], type(None) in options))
    return tuple(layout)


def _dict(raw: Any) -> dict[str, Any]:
    return json.loads(raw) if isinstance(raw, str) else dict(raw)


_PARSERS: dict[object, Callable[..., Any]] = {
    Money: Money,
    AccountRef: AccountRef,
    str: str,
    Literal: str,
    int: int,
    datetime: datetime.fromisoformat,
    dict: _dict,
}
