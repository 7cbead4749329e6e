"""Rows to domain values and back, for the SQLite store; and the one-row lookups by key.

Times are fixed-width UTC ISO text (so text order is time order), money is
integer minor units beside a currency, JSON columns hold results and payloads.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

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


def get(rows: Rows, kind: type[T], key: Sequence[Any]) -> T | None:
    """The one row of ``kind`` with ``key`` (see :data:`BY_KEY`), decoded; None when missing."""
    sql, decode = BY_KEY[kind]
    found = rows(sql, key)
    return cast(T, decode(found[0])) if found else None


def account_row(account: Account) -> dict[str, Any]:
    row = {"user_id": account.user_id, "account_id": account.account_id, "alias": account.alias}
    return {**row, "currency": account.currency, "balance_minor": account.balance.minor}


def account(row: Row) -> Account:
    return Account(row["account_id"], row["user_id"], row["alias"], Money(int(row["balance_minor"]), row["currency"]))


def beneficiary(row: Row) -> Beneficiary:
    return Beneficiary(**dict(row))


def transfer_row(transfer: Transfer) -> dict[str, Any]:
    return {**transfer.to_dict(), "created_at": utc_text(transfer.created_at)}


def transfer(row: Row) -> Transfer:
    return Transfer.from_dict(dict(row))


def entry_row(e: LedgerEntry) -> dict[str, Any]:
    row = {k: getattr(e, k) for k in ("entry_id", "user_id", "account_id", "transfer_id", "direction", "description")}
    amounts = {
        "amount_minor": e.amount.minor,
        "currency": e.amount.currency,
        "balance_after_minor": e.balance_after.minor,
    }
    return {**row, **amounts, "timestamp": utc_text(e.timestamp)}


def entry(row: Row) -> LedgerEntry:
    _, entry_id, user_id, account_id, transfer_id, direction, amount, currency, description, at, after = row
    return LedgerEntry(
        entry_id=entry_id,
        account_id=account_id,
        user_id=user_id,
        transfer_id=transfer_id,
        direction="DEBIT" if direction == "DEBIT" else "CREDIT",
        amount=Money(int(amount), currency),
        description=description,
        timestamp=datetime.fromisoformat(at),
        balance_after=Money(int(after), currency),
    )


def record_row(record: IdempotencyRecord) -> dict[str, Any]:
    times = {k: utc_text(getattr(record, k)) for k in ("created_at", "expires_at")}
    return {**asdict(record), **times, "result": json.dumps(record.result, separators=(",", ":"), ensure_ascii=False)}


def record(row: Row) -> IdempotencyRecord:
    times = {k: datetime.fromisoformat(row[k]) for k in ("created_at", "expires_at")}
    return IdempotencyRecord(**{**dict(row), **times, "result": json.loads(row["result"])})


def product_row(p: Product) -> dict[str, Any]:
    row = {"product_id": p.product_id, "name": p.name, "category": p.category, "stock": p.stock, "reserved": p.reserved}
    seller = {"seller_user_id": p.seller.user_id, "seller_account_id": p.seller.account_id}
    return {**row, **seller, "price_minor": p.price.minor, "currency": p.price.currency}


def product(row: Row) -> Product:
    price = Money(int(row["price_minor"]), row["currency"])
    seller = AccountRef(row["seller_user_id"], row["seller_account_id"])
    return Product(row["product_id"], row["name"], row["category"], price, row["stock"], row["reserved"], seller)


def order_row(order: Order) -> dict[str, Any]:
    times = {"created_at": order.created_at, "updated_at": order.updated_at, "sweep_from": order.sweep_time}
    return {**order.to_dict(), **{k: utc_text(v) for k, v in times.items()}}  # sweep_from always set: indexed


def order(row: Row) -> Order:
    return Order.from_dict(dict(row))


def inbox_record(row: Row) -> InboxRecord:
    at = row["processed_at"]
    return InboxRecord(row["consumer"], row["event_id"], row["outcome"], at and datetime.fromisoformat(at))


def event_row(event: DomainEvent) -> dict[str, Any]:
    payload = json.dumps(event.payload, separators=(",", ":"), ensure_ascii=False)
    return {**asdict(event), "occurred_at": utc_text(event.occurred_at), "payload": payload}


def event(row: Row) -> DomainEvent:
    data = {k: row[k] for k in ("event_id", "type", "correlation_id", "causation_id", "user_id")}
    return DomainEvent(
        **data, occurred_at=datetime.fromisoformat(row["occurred_at"]), payload=json.loads(row["payload"])
    )


def outbox_record(row: Row) -> OutboxRecord:
    return OutboxRecord(event(row), row["published_at"] is not None)


#: The one-row lookups by key: the repositories' reads, and what a failed condition saw.
BY_KEY: dict[type, tuple[str, Callable[[Row], Any]]] = {
    Account: ("SELECT * FROM accounts WHERE user_id = ? AND account_id = ?", account),
    Beneficiary: ("SELECT * FROM beneficiaries WHERE user_id = ? AND beneficiary_id = ?", beneficiary),
    Transfer: ("SELECT * FROM transfers WHERE user_id = ? AND transfer_id = ?", transfer),
    Money: (
        "SELECT total_minor, currency FROM daily_totals WHERE user_id = ? AND day = ? AND currency = ?",
        lambda r: Money(int(r[0]), r[1]),
    ),
    IdempotencyRecord: ("SELECT * FROM idempotency WHERE user_id = ? AND key = ?", record),
    Product: ("SELECT * FROM products WHERE product_id = ?", product),
    Order: ("SELECT * FROM orders WHERE user_id = ? AND order_id = ?", order),
    InboxRecord: ("SELECT * FROM inbox WHERE consumer = ? AND event_id = ?", inbox_record),
}
