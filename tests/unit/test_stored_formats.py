"""What the stores keep, pinned: the flat records are derived from the dataclasses' fields, so renaming or
reordering a field must fail here before it silently changes DynamoDB items, SQLite rows or idempotency results.

The expected values are what the hand-written codecs wrote before one codec replaced them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from centli.adapters.sqlite import rows
from centli.domain.catalog import Product
from centli.domain.events import DomainEvent
from centli.domain.idempotency import IdempotencyRecord
from centli.domain.ledger import Account, AccountRef, Transfer, from_flat
from centli.domain.money import Money
from centli.domain.orders import Order

T = datetime(2026, 12, 2, 10, 30, tzinfo=UTC)
SQL_T = "2026-12-02T10:30:00.000000+00:00"
TRANSFER = Transfer(
    "trf-1", "u-ana", "acc-0001", AccountRef("u-ben", "acc-0009"), Money(12345), "Renta", T, "TRANSFER", "ben-mama"
)
ORDER = Order(
    "ord-1", "u-ana", "prd-1", 2, Money(5000), "acc-0001", AccountRef("seller00", "acc-s"), "PENDING", 1, T, T, "corr-1"
)
TRANSFER_DICT = {
    "transfer_id": "trf-1",
    "user_id": "u-ana",
    "from_account_id": "acc-0001",
    "to_user_id": "u-ben",
    "to_account_id": "acc-0009",
    "amount_minor": 12345,
    "currency": "MXN",
    "concept": "Renta",
    "created_at": "2026-12-02T10:30:00+00:00",
    "kind": "TRANSFER",
    "beneficiary_id": "ben-mama",
    "status": "COMPLETED",
}
ORDER_DICT = {
    "order_id": "ord-1",
    "user_id": "u-ana",
    "product_id": "prd-1",
    "quantity": 2,
    "total_minor": 5000,
    "currency": "MXN",
    "account_id": "acc-0001",
    "seller_user_id": "seller00",
    "seller_account_id": "acc-s",
    "status": "PENDING",
    "version": 1,
    "created_at": "2026-12-02T10:30:00+00:00",
    "updated_at": "2026-12-02T10:30:00+00:00",
    "correlation_id": "corr-1",
    "cancel_reason": None,
    "payment_transfer_id": None,
    "sweep_from": None,
    "sweep_attempts": 0,
}


def test_transfers_and_orders_keep_their_stored_keys_in_order() -> None:
    assert list(TRANSFER.to_dict().items()) == list(TRANSFER_DICT.items())
    assert list(ORDER.to_dict().items()) == list(ORDER_DICT.items())
    assert Transfer.from_dict(TRANSFER_DICT) == TRANSFER
    assert Order.from_dict(ORDER_DICT) == ORDER


@pytest.mark.parametrize(
    ("record", "columns"),
    [
        (TRANSFER, {**TRANSFER_DICT, "created_at": SQL_T}),
        (
            Account("acc-0001", "u-ana", "Nómina", Money(100)),
            {"user_id": "u-ana", "account_id": "acc-0001", "alias": "Nómina", "currency": "MXN", "balance_minor": 100},
        ),
        (
            Product("prd-1", "Café", "food", Money(5000), 10, 2, AccountRef("seller00", "acc-s")),
            {
                "product_id": "prd-1",
                "name": "Café",
                "category": "food",
                "stock": 10,
                "reserved": 2,
                "seller_user_id": "seller00",
                "seller_account_id": "acc-s",
                "price_minor": 5000,
                "currency": "MXN",
            },
        ),
        (
            IdempotencyRecord("u-ana", "k1", "createTransfer", "fp", {"a": 1, "ñ": "é"}, T, T),
            {
                "user_id": "u-ana",
                "key": "k1",
                "operation": "createTransfer",
                "fingerprint": "fp",
                "result": '{"a":1,"ñ":"é"}',
                "created_at": SQL_T,
                "expires_at": SQL_T,
            },
        ),
        (
            DomainEvent("evt-1", "ORDER_CONFIRMED", T, "corr", None, "u-ana", {"order_id": "ord-1"}),
            {
                "event_id": "evt-1",
                "type": "ORDER_CONFIRMED",
                "occurred_at": SQL_T,
                "correlation_id": "corr",
                "causation_id": None,
                "user_id": "u-ana",
                "payload": '{"order_id":"ord-1"}',
            },
        ),
    ],
)
def test_sqlite_rows_keep_their_columns_and_values(record: Any, columns: dict[str, Any]) -> None:
    assert rows.row(record) == columns


def test_an_orders_sqlite_row_always_carries_its_sweep_time() -> None:
    assert rows.order_row(ORDER) == {**ORDER_DICT, "created_at": SQL_T, "updated_at": SQL_T, "sweep_from": SQL_T}


def test_a_stored_null_where_none_is_not_allowed_reads_as_the_fields_default() -> None:
    assert Order.from_dict({**ORDER_DICT, "sweep_attempts": None}).sweep_attempts == 0
    assert Transfer.from_dict({**TRANSFER_DICT, "status": None}).status == "COMPLETED"
    assert Transfer.from_dict({**TRANSFER_DICT, "beneficiary_id": None}).beneficiary_id is None


@dataclass(frozen=True)
class _Unknown:
    ratio: float


def test_a_field_type_the_codec_does_not_know_is_refused_not_read_as_text() -> None:
    with pytest.raises(TypeError, match=r"_Unknown\.ratio"):
        from_flat(_Unknown, {"ratio": 0.5})
