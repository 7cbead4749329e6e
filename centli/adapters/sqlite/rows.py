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
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from centli.domain.audit import InboxRecord, OutboxRecord
from centli.domain.catalog import Product
from centli.domain.events import DomainEvent
from centli.domain.idempotency import IdempotencyRecord
from centli.domain.ledger import Account, Beneficiary, LedgerEntry, Transfer, from_flat, to_flat
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


def row(data: Any) -> dict[str, Any]:
    """The columns of a domain dataclass (see the module docstring)."""
    flat = to_flat(data, time=utc_text)
    return {
        k: json.dumps(v, separators=(",", ":"), ensure_ascii=False) if isinstance(v, dict) else v
        for k, v in flat.items()
    }


def value(kind: type[T], found: Row) -> T:
    """The ``kind`` a row holds: :func:`row` undone."""
    read = _READERS.get(kind)
    return cast(T, read(found) if read is not None else from_flat(kind, dict(found)))  # type: ignore[type-var]


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
