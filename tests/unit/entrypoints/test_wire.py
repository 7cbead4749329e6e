"""Parse once: the edge's models call the domain's own parser for each value, and keep its refusal."""

from __future__ import annotations

import pytest

from centli.domain.errors import InvalidAmount, InvalidInput
from centli.entrypoints.operations import BY_ID
from centli.entrypoints.pipeline import validate
from centli.entrypoints.wire import CreatePurchaseRequest, CreateTransferRequest

TRANSFER = BY_ID["createTransfer"]


def test_a_request_carries_the_domains_parsed_values() -> None:
    raw = {
        "from_account_id": " acc-0001 ",
        "destination_id": "ben-mama",
        "amount": 0.1,
        "concept": "  Renta <b>de</b>\u200b noviembre ",
        "idempotency_key": " k-1 ",
    }
    request = validate(TRANSFER, raw)
    assert isinstance(request, CreateTransferRequest)
    assert (request.from_account_id, request.amount, request.idempotency_key) == ("acc-0001", 10, "k-1")
    assert request.concept == "Renta de noviembre"
    # Dumped back (a quote's parameters, a derived key) as the contract's decimal text.
    assert request.model_dump(mode="json")["amount"] == "0.10"
    purchase = validate(BY_ID["createPurchase"], {"product_id": "p-1", "quantity": "3", "account_id": "acc-0001"})
    assert isinstance(purchase, CreatePurchaseRequest) and purchase.quantity == 3


@pytest.mark.parametrize(
    ("field", "value", "error", "message"),
    [
        ("amount", "1.001", InvalidAmount, "at most two decimals"),
        ("amount", "1e3", InvalidAmount, "plain digits"),
        ("idempotency_key", "order-payment:ord-1", InvalidInput, "letters, digits, dashes or underscores"),
        ("from_account_id", "acc 0001", InvalidInput, "from_account_id is not a valid identifier"),
    ],
)
def test_a_refusal_is_the_domains_own(field: str, value: object, error: type[Exception], message: str) -> None:
    raw = {"from_account_id": "acc-0001", "destination_id": "ben-mama", "amount": "10", field: value}
    with pytest.raises(error, match=message) as raised:
        validate(TRANSFER, raw)
    assert raised.value.field == field  # type: ignore[attr-defined]


def test_the_first_problem_in_field_order_is_named() -> None:
    with pytest.raises(InvalidInput, match="from_account_id is required"):
        validate(TRANSFER, {"destination_id": "ben-mama", "amount": "1e3"})
