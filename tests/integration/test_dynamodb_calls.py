"""AWS round trips per operation, counted on the wire (botocore ``before-send``) against moto over HTTP."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from centli.domain.banking import CreateTransfer
from centli.domain.errors import AccountNotFound, DestinationNotFound, InsufficientFunds, LimitExceeded
from centli.domain.ledger import TransferLimits
from centli.domain.marketplace import CreatePurchase
from centli.domain.money import Money
from centli.domain.policy import BankPolicy
from tests.backends.dynamodb import open_backend
from tests.conftest import Bank, make_bank

pytestmark = pytest.mark.integration


class RequestCounter:
    """Counts every HTTP request the client sends, by operation name."""

    def __init__(self, client: Any) -> None:
        self.sent: Counter[str] = Counter()
        client.meta.events.register("before-send.dynamodb", self._on_send)

    def _on_send(self, request: Any, **_: Any) -> None:
        target = request.headers.get("X-Amz-Target", b"")
        name = target.decode() if isinstance(target, bytes) else str(target)
        self.sent[name.rsplit(".", 1)[-1]] += 1

    def during(self, action: Any) -> tuple[Any, Counter[str]]:
        self.sent.clear()
        result = action()
        return result, Counter(self.sent)


@pytest.fixture
def bank(tmp_path: Path) -> Iterator[Bank]:
    with open_backend(tmp_path) as backend:
        yield make_bank(backend)


@pytest.fixture
def counter(bank: Bank) -> RequestCounter:
    return RequestCounter(bank.backend.extras["client"])


def test_each_read_is_one_request(bank: Bank, counter: RequestCounter) -> None:
    banking = bank.app.banking
    accounts, sent = counter.during(lambda: banking.list_accounts("u-ana"))
    assert [a.account_id for a in accounts] == ["acc-0001", "acc-0003"]
    assert sent == {"Query": 1}

    beneficiaries, sent = counter.during(lambda: banking.list_beneficiaries("u-ana"))
    assert [b.beneficiary_id for b in beneficiaries] == ["ben-mama"]
    assert sent == {"Query": 1}

    product, sent = counter.during(lambda: bank.app.marketplace.get_product("p-100"))
    assert product.price.to_decimal_string() == "499.00"
    assert sent == {"GetItem": 1}

    account, sent = counter.during(lambda: banking.get_balance("u-ana", "acc-0001"))
    assert account.balance.to_decimal_string() == "25000.00"
    assert sent == {"GetItem": 1}

    for n in range(3):
        banking.create_transfer(
            CreateTransfer.parse("u-ana", "acc-0001", f"{n + 1}.00", f"k-{n}", destination_id="acc-0003")
        )
    first, sent = counter.during(lambda: banking.list_transactions("u-ana", "acc-0001", 2))
    assert [e.amount.to_decimal_string() for e in first.entries] == ["3.00", "2.00"]
    assert [e.balance_after.to_decimal_string() for e in first.entries] == ["24994.00", "24997.00"]
    assert sent == {"Query": 1}
    second, sent = counter.during(lambda: banking.list_transactions("u-ana", "acc-0001", 2, first.next_cursor))
    assert [e.balance_after.to_decimal_string() for e in second.entries] == ["24999.00", "25000.00"]
    assert second.next_cursor is None
    assert sent == {"Query": 1}

    transfer_id = first.entries[0].transfer_id
    transfer, sent = counter.during(lambda: banking.get_transfer("u-ana", transfer_id))
    assert transfer.amount.to_decimal_string() == "3.00"
    assert sent == {"GetItem": 1}


def test_own_account_transfer_and_its_replay_are_one_request_each(bank: Bank, counter: RequestCounter) -> None:
    banking = bank.app.banking
    command = CreateTransfer.parse("u-ana", "acc-0001", "150.00", "pay-rent", destination_id="acc-0003")
    transfer, sent = counter.during(lambda: banking.create_transfer(command))
    assert sent == {"TransactWriteItems": 1}
    replayed, sent = counter.during(lambda: banking.send_transfer(command))
    # The cancellation reason carries the stored record (ALL_OLD): no GetItem needed, and the domain knows.
    assert sent == {"TransactWriteItems": 1}
    assert (replayed.value, replayed.replayed) == (transfer, True)
    assert banking.get_balance("u-ana", "acc-0001").balance.to_decimal_string() == "24850.00"


def test_beneficiary_transfer_and_purchase_take_at_most_two_requests(bank: Bank, counter: RequestCounter) -> None:
    banking, market = bank.app.banking, bank.app.marketplace
    beneficiary = banking.list_beneficiaries("u-ana")[0]
    command = CreateTransfer.parse("u-ana", "acc-0001", "10.00", "to-ben", destination_id=beneficiary.beneficiary_id)
    transfer, sent = counter.during(lambda: banking.create_transfer(command))
    assert transfer.to.account_id == beneficiary.account_id
    # The first transaction takes the id as an own account; its condition check on the beneficiary fails
    # and hands back the beneficiary (ALL_OLD), so the second one pays it: two requests, no read.
    assert sent == {"TransactWriteItems": 2}
    again, sent = counter.during(lambda: banking.send_transfer(command))
    assert (again.value, again.replayed, sent) == (transfer, True, {"TransactWriteItems": 1})
    purchase = CreatePurchase.parse("u-ana", "p-100", 1, "acc-0001", "buy")
    first, sent = counter.during(lambda: market.place_purchase(purchase))
    assert sent == {"GetItem": 1, "TransactWriteItems": 1}
    repeat, _ = counter.during(lambda: market.place_purchase(purchase))
    assert (first.replayed, repeat.replayed, repeat.value) == (False, True, first.value)
    order = first.value
    assert order.status == "PENDING"

    found, sent = counter.during(lambda: market.get_order("u-ana", order.order_id))
    assert found == order
    assert sent == {"GetItem": 1}
    page, sent = counter.during(lambda: market.list_orders("u-ana"))
    assert [o.order_id for o in page.orders] == [order.order_id]
    assert sent == {"Query": 1}


def test_which_condition_failed_names_the_error_in_one_request(tmp_path: Path) -> None:
    policy = BankPolicy(limits={"MXN": TransferLimits(Money.of("50000.00"), Money.of("20000.00"))})
    with open_backend(tmp_path) as backend:
        bank = make_bank(backend, policy=policy)
        counter = RequestCounter(backend.extras["client"])
        banking = bank.app.banking
        cases: list[tuple[CreateTransfer, type[Exception], str | None]] = [
            (
                CreateTransfer.parse("u-ana", "acc-0003", "5000.00", "a", destination_id="acc-0001"),
                InsufficientFunds,
                None,
            ),
            (
                CreateTransfer.parse("u-ana", "acc-0001", "20000.01", "b", destination_id="acc-0003"),
                LimitExceeded,
                None,
            ),
            # Both the daily limit and the funds fail: the limit is named first, as in memory.
            (
                CreateTransfer.parse("u-ana", "acc-0003", "30000.00", "c", destination_id="acc-0001"),
                LimitExceeded,
                None,
            ),
            (
                CreateTransfer.parse("u-ana", "acc-0001", "1.00", "d", destination_id="acc-nope"),
                DestinationNotFound,
                "destination_id",
            ),
            (
                CreateTransfer.parse("u-ana", "acc-nope", "1.00", "e", destination_id="acc-0001"),
                AccountNotFound,
                "from_account_id",
            ),
        ]
        for command, error, field in cases:
            counter.sent.clear()
            with pytest.raises(error) as raised:
                banking.create_transfer(command)
            assert dict(counter.sent) == {"TransactWriteItems": 1}, command
            if field is not None:
                assert raised.value.field == field  # type: ignore[attr-defined]
        # A replay wins over every other failing guard: the funds are gone, the original result comes back.
        done = banking.create_transfer(
            CreateTransfer.parse("u-ana", "acc-0003", "1000.00", "all", destination_id="acc-0001")
        )
        counter.sent.clear()
        again = banking.create_transfer(
            CreateTransfer.parse("u-ana", "acc-0003", "1000.00", "all", destination_id="acc-0001")
        )
        assert again == done
        assert dict(counter.sent) == {"TransactWriteItems": 1}
        assert banking.get_balance("u-ana", "acc-0003").balance.to_decimal_string() == "0.00"
