"""No response body exceeds 20 KB: pages shrink (the cursor stays exact) and fixed lists are truncated."""

from __future__ import annotations

import json
from typing import Any

import pytest

from centli.entrypoints.operations import MAX_BODY_BYTES
from tests.unit.entrypoints.conftest import FORMATS, bank_document, open_harness


def size(body: dict[str, Any]) -> int:
    return len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def big_bank() -> dict[str, Any]:
    document = bank_document()
    for n in range(60):
        document["products"].append(
            {
                "product_id": f"p-big-{n:03d}",
                "name": f"Producto {n} " + "ñ" * 300,
                "category": "bulk",
                "price": "1.00",
                "currency": "MXN",
                "stock": 5,
                "seller_account_id": "acc-9000",
            }
        )
    for n in range(120):
        document["accounts"].append(
            {
                "user_id": "u-ana",
                "account_id": f"acc-x{n:04d}",
                "alias": "Cuenta " + "á" * 200,
                "currency": "MXN",
                "opening_balance": "1.00",
            }
        )
    return document


@pytest.mark.parametrize("fmt", FORMATS)
def test_pages_shrink_under_the_cap_and_paging_still_sees_everything(fmt: str) -> None:
    with open_harness(big_bank()) as harness:
        seen: list[str] = []
        cursor = None
        for _ in range(100):
            params = {"category": "bulk", "limit": 50, **({"cursor": cursor} if cursor else {})}
            reply = harness.call(fmt, "searchProducts", params)
            assert reply.status == 200 and size(reply.body) <= MAX_BODY_BYTES
            assert reply.body["products"]
            seen.extend(p["product_id"] for p in reply.body["products"])
            cursor = reply.body["next_cursor"]
            if cursor is None:
                break
        assert seen == [f"p-big-{n:03d}" for n in range(60)]


def test_a_list_without_cursor_is_truncated_and_says_so() -> None:
    with open_harness(big_bank()) as harness:
        reply = harness.call("openapi", "listAccounts")
        assert reply.status == 200 and size(reply.body) <= MAX_BODY_BYTES
        assert reply.body["truncated"] is True
        assert 0 < len(reply.body["accounts"]) < 122
        raw_body = reply.raw["response"]["responseBody"]["application/json"]["body"]
        assert json.loads(raw_body) == reply.body  # whole JSON, never cut mid-way
