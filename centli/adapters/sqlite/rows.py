"""Rows to domain values and back, for the SQLite store; and the one-row lookups by key.

A row holds a domain dataclass's fields, one rule for every table: money is
integer minor units in ``<field>_minor`` beside a ``currency`` column, an
account reference is ``<field>_user_id`` and ``<field>_account_id``, a time is
fixed-width UTC ISO text (so text order is time order), a dict is JSON.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, TypeVar, cast, get_args, get_origin, get_type_hints

from centli.domain.audit import InboxRecord, OutboxRecord
from centli.domain.catalog import Product
from centli.domain.events import DomainEvent
from centli.domain.idempotency import IdempotencyRecord
from centli.domain.ledger import Account, AccountRef, Beneficiary, LedgerEntry, Transfer
from centli.domain.money import Money
from centli.domain.orders import Order

T = TypeVar("T")
Row = sqlite3.Row
Rows = Callable[[str, Sequence[Any]], list[Row]]


def utc_text(moment: datetime) -> str:
    """A timestamp as fixed-width UTC ISO text, so text order is time order."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


_COLUMNS: dict[type, list[tuple[str, type]]] = {}


def _columns(kind: type) -> list[tuple[str, type]]:
    """Each field of ``kind`` with what its column holds: Money, AccountRef, datetime, dict, or the value itself."""
    if kind not in _COLUMNS:
        hints = get_type_hints(kind)
        held: list[tuple[str, type]] = []
        for field in fields(kind):
            hint = hints[field.name]
            as_type = next((t for t in (Money, AccountRef, datetime) if t is hint or t in get_args(hint)), object)
            held.append((field.name, dict if get_origin(hint) is dict else as_type))
        _COLUMNS[kind] = held
    return _COLUMNS[kind]


def row(data: Any) -> dict[str, Any]:
    """The columns of a domain dataclass (see the module docstring)."""
    columns: dict[str, Any] = {}
    for name, held in _columns(type(data)):
        part = getattr(data, name)
        if held is Money:
            columns[f"{name}_minor"], columns["currency"] = part.minor, part.currency
        elif held is AccountRef:
            columns[f"{name}_user_id"], columns[f"{name}_account_id"] = part.user_id, part.account_id
        elif held is datetime and part is not None:
            columns[name] = utc_text(part)
        elif held is dict:
            columns[name] = json.dumps(part, separators=(",", ":"), ensure_ascii=False)
        else:
            columns[name] = part
    return columns


def value(kind: type[T], found: Row) -> T:
    """The ``kind`` a row holds: :func:`row` undone."""
    read = _READERS.get(kind)
    if read is not None:
        return cast(T, read(found))
    values: dict[str, Any] = {}
    for name, held in _columns(kind):
        if held is Money:
            values[name] = Money(found[f"{name}_minor"], found["currency"])
        elif held is AccountRef:
            values[name] = AccountRef(found[f"{name}_user_id"], found[f"{name}_account_id"])
        elif held is datetime and found[name] is not None:
            values[name] = datetime.fromisoformat(found[name])
        elif held is dict:
            values[name] = json.loads(found[name])
        else:
            values[name] = found[name]
    return kind(**values)


def _entry(found: Row) -> LedgerEntry:
    """By position, in the table's column order: the history's hot path (by name, decoding takes 40% longer)."""
    _, entry_id, user_id, account_id, transfer_id, direction, amount, currency, description, at, after = found
    return LedgerEntry(
        entry_id=entry_id,
        account_id=account_id,
        user_id=user_id,
        transfer_id=transfer_id,
        direction=direction,
        amount=Money(amount, currency),
        description=description,
        timestamp=datetime.fromisoformat(at),
        balance_after=Money(after, currency),
    )


#: The kinds not read field for field.
_READERS: dict[type, Callable[[Row], Any]] = {
    LedgerEntry: _entry,
    Order: lambda found: Order.from_dict(dict(found)),  # it knows a sweep_from equal to created_at means none
    OutboxRecord: lambda found: OutboxRecord(value(DomainEvent, found), found["published_at"] is not None),
}


def order_row(order: Order) -> dict[str, Any]:
    return {**row(order), "sweep_from": utc_text(order.sweep_time)}  # always set: the sweeper's index


def get(rows: Rows, kind: type[T], key: Sequence[Any]) -> T | None:
    """The one row of ``kind`` with ``key`` (see :data:`BY_KEY`), decoded; None when missing."""
    found = rows(BY_KEY[kind], key)
    return value(kind, found[0]) if found else None


#: The one-row lookups by key: the repositories' reads, and what a failed condition saw.
BY_KEY: dict[type, str] = {
    Account: "SELECT * FROM accounts WHERE user_id = ? AND account_id = ?",
    Beneficiary: "SELECT * FROM beneficiaries WHERE user_id = ? AND beneficiary_id = ?",
    Transfer: "SELECT * FROM transfers WHERE user_id = ? AND transfer_id = ?",
    Money: "SELECT total_minor AS minor, currency FROM daily_totals WHERE user_id = ? AND day = ? AND currency = ?",
    IdempotencyRecord: "SELECT * FROM idempotency WHERE user_id = ? AND key = ?",
    Product: "SELECT * FROM products WHERE product_id = ?",
    Order: "SELECT * FROM orders WHERE user_id = ? AND order_id = ?",
    InboxRecord: "SELECT * FROM inbox WHERE consumer = ? AND event_id = ?",
}
