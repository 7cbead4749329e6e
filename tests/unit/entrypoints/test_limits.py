"""No serialized Lambda response exceeds 20 KB (json.dumps defaults): pages shrink, fixed lists are truncated."""

from __future__ import annotations

import json
from typing import Any

import pytest

from centli.entrypoints.pipeline import MAX_RESPONSE_BYTES
from tests.unit.entrypoints.conftest import FORMATS, Reply, bank_document, open_harness


def size(reply: Reply) -> int:
    """The whole Lambda response as json.dumps writes it by default: ASCII escapes, the body a string in JSON."""
    return len(json.dumps(reply.raw))


def big_bank() -> dict[str, Any]:
    document = bank_document()
    for n in range(60):
        document["products"].append(
            {
                "product_id": f"p-big-{n:03d}",
                "name": f"Producto {n} " + "ñ" * 68,
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
                "alias": "Cuenta " + "á" * 70,
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
            assert reply.status == 200 and size(reply) <= MAX_RESPONSE_BYTES
            assert reply.body["products"]
            seen.extend(p["product_id"] for p in reply.body["products"])
            cursor = reply.body["next_cursor"]
            if cursor is None:
                break
        assert seen == [f"p-big-{n:03d}" for n in range(60)]


def test_a_list_without_cursor_is_truncated_and_says_so() -> None:
    with open_harness(big_bank()) as harness:
        reply = harness.call("openapi", "listAccounts")
        assert reply.status == 200 and size(reply) <= MAX_RESPONSE_BYTES
        assert reply.body["truncated"] is True
        assert 0 < len(reply.body["accounts"]) < 122
        raw_body = reply.raw["response"]["responseBody"]["application/json"]["body"]
        assert json.loads(raw_body) == reply.body  # whole JSON, never cut mid-way


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_50_entry_history_with_multibyte_concepts_fits_in_every_format(fmt: str) -> None:
    """The reported case: 50 Spanish concepts came to 29.6 KB once serialized with json.dumps defaults."""
    with open_harness() as harness:
        concept = "Pago de colegiatura ñoña, útiles y café para María José: ¡gracias!"  # 66 characters
        for n in range(50):
            params = {"from_account_id": "acc-0001", "destination_id": "acc-0003", "amount": "1.00"}
            done = harness.call("openapi", "createTransfer", {**params, "concept": f"{n:02d} {concept}"}, text=f"{n}")
            assert done.status == 200, done.body
        seen: list[str] = []
        cursor = None
        for _ in range(60):
            params = {"account_id": "acc-0001", "limit": 50, **({"cursor": cursor} if cursor else {})}
            reply = harness.call(fmt, "listTransactions", params)
            assert reply.status == 200 and size(reply) <= MAX_RESPONSE_BYTES, size(reply)
            unshrunk = json.dumps(reply.body, ensure_ascii=False).encode("utf-8")
            assert len(unshrunk) <= size(reply)  # the escaped form is the larger one: it is what is measured
            seen.extend(t["description"] for t in reply.body["transactions"])
            cursor = reply.body["next_cursor"]
            if cursor is None:
                break
        # Nothing lost to the cap: every movement is reachable by paging, newest first.
        assert seen[:50] == [f"{n:02d} {concept}" for n in reversed(range(50))]
        assert seen[50:] == ["Saldo inicial"]
