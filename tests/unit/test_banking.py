"""Core banking through the services: transfers, limits, history, cursors, idempotency, ownership."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from centli.adapters.memory.store import InMemoryStore
from centli.domain.banking import CreateTransfer
from centli.domain.cursor import CursorCodec
from centli.domain.errors import (
    AccountNotFound,
    CurrencyMismatch,
    DestinationNotFound,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidCursor,
    InvalidInput,
    LimitExceeded,
    TransferNotFound,
    UnsupportedCurrency,
)
from centli.domain.ledger import Transfer, TransferLimits
from centli.domain.money import Money
from centli.domain.policy import BankPolicy, page_size
from tests.backends import opener
from tests.conftest import CURSOR_SECRET, Bank, make_bank
from tests.unit.helpers import assert_ledger_invariants, rich_bank, transfer_debits

ANA = "u-ana"
LUIS = "u-luis"


@pytest.fixture
def rich(tmp_path: Path) -> Iterator[Bank]:
    with opener("memory")(tmp_path) as backend:
        yield make_bank(backend, rich_bank())


def store_of(bank: Bank) -> InMemoryStore:
    store: InMemoryStore = bank.backend.extras["store"]
    return store


def balance(bank: Bank, user: str, account: str) -> Money:
    return bank.app.banking.get_balance(user, account).balance


def transfer(bank: Bank, amount: object, key: str, *, user: str = ANA, **target: object) -> Transfer:
    source = target.pop("from_account_id", "acc-rich" if user == ANA else "acc-luis")
    return bank.app.banking.create_transfer(CreateTransfer.parse(user, source, amount, key, **target))  # type: ignore[arg-type]


# transfers -------------------------------------------------------------------
def test_own_account_transfer_moves_money_both_ways(memory_bank: Bank) -> None:
    banking = memory_bank.app.banking
    done = banking.create_transfer(CreateTransfer.parse(ANA, "acc-0001", "1500.50", "k-1", destination_id="acc-0003"))
    assert done.status == "COMPLETED"
    assert done.amount == Money(150_050)
    assert balance(memory_bank, ANA, "acc-0001") == Money.of("23499.50")
    assert balance(memory_bank, ANA, "acc-0003") == Money.of("2500.50")
    assert banking.get_transfer(ANA, done.transfer_id) == done
    assert_ledger_invariants(store_of(memory_bank))


def test_beneficiary_transfer_credits_the_recipient(memory_bank: Bank) -> None:
    # The seed's transfer debited the sender and never credited anyone.
    banking = memory_bank.app.banking
    done = banking.create_transfer(CreateTransfer.parse(ANA, "acc-0001", "500", "k-1", destination_id="ben-mama"))
    assert done.to.account_id == "acc-0002" and done.beneficiary_id == "ben-mama"
    assert balance(memory_bank, ANA, "acc-0001") == Money.of("24500.00")
    assert balance(memory_bank, LUIS, "acc-0002") == Money.of("1300.50")
    credit = banking.list_transactions(LUIS, "acc-0002").entries[0]
    assert (credit.direction, credit.amount, credit.transfer_id) == ("CREDIT", Money(50_000), done.transfer_id)
    assert credit.balance_after == Money.of("1300.50")
    assert_ledger_invariants(store_of(memory_bank))


def test_insufficient_funds_moves_nothing(memory_bank: Bank) -> None:
    with pytest.raises(InsufficientFunds) as raised:
        memory_bank.app.banking.create_transfer(
            CreateTransfer.parse(ANA, "acc-0003", "1000.01", "k-1", destination_id="acc-0001")
        )
    assert raised.value.status == 422
    assert balance(memory_bank, ANA, "acc-0003") == Money.of("1000.00")
    assert transfer_debits(store_of(memory_bank)) == []
    # The whole balance can go, to exactly zero.
    transfer(memory_bank, "1000.00", "k-2", from_account_id="acc-0003", destination_id="acc-0001")
    assert balance(memory_bank, ANA, "acc-0003") == Money(0)


def test_unknown_destinations_and_accounts(memory_bank: Bank) -> None:
    for n, unknown in enumerate(("ben-nobody", "acc-7777")):
        with pytest.raises(DestinationNotFound) as raised:
            transfer(memory_bank, "1", f"k-{n}", from_account_id="acc-0001", destination_id=unknown)
        assert raised.value.status == 404 and raised.value.field == "destination_id"
    with pytest.raises(AccountNotFound):
        transfer(memory_bank, "1", "k-3", from_account_id="acc-7777", destination_id="acc-0001")


def test_per_transfer_limit(rich: Bank) -> None:
    transfer(rich, "50000.00", "k-1", destination_id="acc-save")
    with pytest.raises(LimitExceeded) as raised:
        transfer(rich, "50000.01", "k-2", destination_id="acc-save")
    assert raised.value.status == 422
    assert balance(rich, ANA, "acc-save") == Money.of("50000.00")


def test_daily_limit_resets_on_the_next_business_day_in_mexico_city(rich: Bank) -> None:
    # The clock starts at 18:00 UTC, which is noon in Mexico City (UTC-6).
    transfer(rich, "50000", "k-1", destination_id="acc-save")
    transfer(rich, "49999.99", "k-2", destination_id="ben-luis")
    with pytest.raises(LimitExceeded):
        transfer(rich, "0.02", "k-3", destination_id="acc-save")
    transfer(rich, "0.01", "k-4", destination_id="acc-save")  # exactly 100,000.00 is allowed
    with pytest.raises(LimitExceeded):
        transfer(rich, "0.01", "k-5", destination_id="acc-save")
    rich.clock.advance(timedelta(hours=11, minutes=59))  # 05:59 UTC = 23:59 local: still the same day
    with pytest.raises(LimitExceeded):
        transfer(rich, "0.01", "k-6", destination_id="acc-save")
    rich.clock.advance(timedelta(minutes=1))  # midnight in Mexico City, though still 06:00 UTC
    transfer(rich, "50000", "k-7", destination_id="acc-save")
    assert balance(rich, ANA, "acc-rich") == Money.of("350000.00")
    assert_ledger_invariants(store_of(rich))


def test_daily_limit_is_per_user(rich: Bank) -> None:
    transfer(rich, "50000", "k-1", destination_id="acc-save")
    transfer(rich, "50000", "k-2", destination_id="acc-save")
    # Luis has his own daily total; only his funds stop him.
    transfer(rich, "100", "k-1", user=LUIS, destination_id="ben-ana")
    assert balance(rich, LUIS, "acc-luis") == Money(0)


def test_same_account_is_invalid(memory_bank: Bank) -> None:
    with pytest.raises(InvalidInput, match="same"):
        transfer(memory_bank, "1", "k-1", from_account_id="acc-0001", destination_id="acc-0001")


@pytest.mark.parametrize("destination", [None, "", "acc 0003"])
def test_the_destination_must_be_a_valid_id(memory_bank: Bank, destination: object) -> None:
    with pytest.raises(InvalidInput) as raised:
        transfer(memory_bank, "1", "k-1", from_account_id="acc-0001", destination_id=destination)
    assert raised.value.code == "INVALID_INPUT" and raised.value.field == "destination_id"
    assert transfer_debits(store_of(memory_bank)) == []


def test_the_currency_is_the_source_accounts(tmp_path: Path) -> None:
    limits = BankPolicy().limits["MXN"]
    document = rich_bank()
    document["accounts"].append({"user_id": ANA, "account_id": "acc-usd", "currency": "USD", "opening_balance": "9"})
    eur = {"EUR": TransferLimits(Money.of("10", "EUR"), Money.of("10", "EUR"))}
    with opener("memory")(tmp_path) as backend:
        # One supported currency: assumed, and the posting refuses a source account holding another.
        only_mxn = make_bank(backend, document)
        with pytest.raises(CurrencyMismatch):
            only_mxn.app.banking.create_transfer(
                CreateTransfer.parse(ANA, "acc-usd", "1", "k1", destination_id="acc-save")
            )
        # Several: read from the source account, and it must be one of them.
        several = make_bank(backend, document, BankPolicy(limits={"MXN": limits, **eur}))
        with pytest.raises(UnsupportedCurrency):
            several.app.banking.create_transfer(
                CreateTransfer.parse(ANA, "acc-usd", "1", "k2", destination_id="acc-save")
            )
        done = several.app.banking.create_transfer(
            CreateTransfer.parse(ANA, "acc-rich", "1.5", "k3", destination_id="acc-save")
        )
        assert done.amount == Money.of("1.50", "MXN")


def test_invalid_request_fields(memory_bank: Bank) -> None:
    banking = memory_bank.app.banking
    with pytest.raises(InvalidInput, match="idempotency"):
        banking.create_transfer(CreateTransfer.parse(ANA, "acc-0001", "1", "", destination_id="acc-0003"))
    with pytest.raises(InvalidInput):
        banking.create_transfer(CreateTransfer.parse(ANA, "acc 0001", "1", "k", destination_id="acc-0003"))


# opening entries and history ---------------------------------------------------
def test_opening_entry_is_the_oldest_credit(memory_bank: Bank) -> None:
    page = memory_bank.app.banking.list_transactions(ANA, "acc-0001")
    assert page.next_cursor is None
    [opening] = page.entries
    assert (opening.direction, opening.amount, opening.balance_after) == (
        "CREDIT",
        Money.of("25000"),
        Money.of("25000"),
    )
    assert opening.description == "Saldo inicial"


def test_history_newest_first_with_balance_after_and_cursor_paging(memory_bank: Bank) -> None:
    banking = memory_bank.app.banking
    for n in range(1, 6):
        memory_bank.clock.advance(timedelta(minutes=1))
        transfer(memory_bank, f"{n}00", f"k-{n}", from_account_id="acc-0001", destination_id="acc-0003")
    seen = []
    cursor = None
    while True:
        page = banking.list_transactions(ANA, "acc-0001", limit=2, cursor=cursor)
        assert len(page.entries) <= 2
        seen.extend(page.entries)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [e.amount.minor for e in seen] == [50_000, 40_000, 30_000, 20_000, 10_000, 2_500_000]
    assert [e.direction for e in seen] == ["DEBIT"] * 5 + ["CREDIT"]
    assert [e.timestamp for e in seen] == sorted((e.timestamp for e in seen), reverse=True)
    assert [e.balance_after.to_decimal_string() for e in seen] == [
        "23500.00",
        "24000.00",
        "24400.00",
        "24700.00",
        "24900.00",
        "25000.00",
    ]
    assert seen[0].balance_after == balance(memory_bank, ANA, "acc-0001")


def test_history_limit_is_validated() -> None:
    """Parsed once, by the domain's parser the edge's models call (the service takes an int)."""
    assert page_size("2") == page_size(2.0) == 2
    for bad in (0, 51, "x", -1, True, 1.5):
        with pytest.raises(InvalidInput):
            page_size(bad)


def _a_cursor(bank: Bank) -> str:
    for n in range(3):
        transfer(bank, "1", f"c-{n}", from_account_id="acc-0001", destination_id="acc-0003")
    cursor = bank.app.banking.list_transactions(ANA, "acc-0001", limit=1).next_cursor
    assert cursor is not None
    return cursor


def test_cursor_tampering_is_rejected(memory_bank: Bank) -> None:
    cursor = _a_cursor(memory_bank)
    body, mac = cursor.split(".")
    flipped = body[:-1] + ("A" if body[-1] != "A" else "B")
    for forged in (f"{flipped}.{mac}", f"{body}.{mac[::-1]}", "not-a-cursor", f"{body}.", "a.b.c", "x" * 3000):
        with pytest.raises(InvalidCursor) as raised:
            memory_bank.app.banking.list_transactions(ANA, "acc-0001", cursor=forged)
        assert raised.value.code == "INVALID_CURSOR"


def test_another_users_cursor_is_rejected(memory_bank: Bank) -> None:
    cursor = _a_cursor(memory_bank)
    for account_id in ("acc-0001", "acc-0002"):
        with pytest.raises(InvalidCursor):
            memory_bank.app.banking.list_transactions(LUIS, account_id, cursor=cursor)
    # A cursor signed for Luis, with a position on Ana's account, does not work for Ana.
    for_luis = CursorCodec(CURSOR_SECRET).encode(LUIS, "tx:acc-0001", "1")
    with pytest.raises(InvalidCursor):
        memory_bank.app.banking.list_transactions(ANA, "acc-0001", cursor=for_luis)
    # ... while the same position signed for Ana is accepted: the user binding is what failed.
    for_ana = CursorCodec(CURSOR_SECRET).encode(ANA, "tx:acc-0001", "1")
    assert memory_bank.app.banking.list_transactions(ANA, "acc-0001", cursor=for_ana).entries


def test_another_accounts_cursor_is_rejected(memory_bank: Bank) -> None:
    cursor = _a_cursor(memory_bank)
    with pytest.raises(InvalidCursor):
        memory_bank.app.banking.list_transactions(ANA, "acc-0003", cursor=cursor)
    # The genuine cursor works where it belongs.
    assert memory_bank.app.banking.list_transactions(ANA, "acc-0001", cursor=cursor).entries


# idempotency -------------------------------------------------------------------
def test_same_key_same_request_returns_the_original_without_a_second_effect(memory_bank: Bank) -> None:
    cmd = CreateTransfer.parse(ANA, "acc-0001", "500.00", "same-key", destination_id="ben-mama", concept="Renta")
    first = memory_bank.app.banking.create_transfer(cmd)
    memory_bank.clock.advance(timedelta(hours=23, minutes=59))
    again = memory_bank.app.banking.create_transfer(cmd)
    # "500" is the same amount as "500.00": the canonical request is what counts.
    equivalent = CreateTransfer.parse(ANA, " acc-0001 ", 500, "same-key", destination_id="ben-mama", concept=" Renta ")
    third = memory_bank.app.banking.create_transfer(equivalent)
    assert again == first == third
    assert balance(memory_bank, ANA, "acc-0001") == Money.of("24500.00")
    assert balance(memory_bank, LUIS, "acc-0002") == Money.of("1300.50")
    assert len(transfer_debits(store_of(memory_bank))) == 1


@pytest.mark.parametrize(
    "different",
    [
        {"amount": "500.01"},
        {"concept": "Otra cosa"},
        {"destination_id": "acc-0003"},
        {"from_account_id": "acc-0003"},
    ],
)
def test_same_key_different_request_is_a_conflict(memory_bank: Bank, different: dict[str, object]) -> None:
    base: dict[str, object] = {
        "from_account_id": "acc-0001",
        "amount": "500.00",
        "idempotency_key": "same-key",
        "destination_id": "ben-mama",
        "concept": "Renta",
    }
    memory_bank.app.banking.create_transfer(CreateTransfer.parse(ANA, **base))  # type: ignore[arg-type]
    with pytest.raises(IdempotencyConflict) as raised:
        memory_bank.app.banking.create_transfer(CreateTransfer.parse(ANA, **{**base, **different}))  # type: ignore[arg-type]
    assert raised.value.status == 409
    assert len(transfer_debits(store_of(memory_bank))) == 1


def test_keys_are_scoped_per_customer(rich: Bank) -> None:
    ana = transfer(rich, "10", "shared-key", destination_id="ben-luis")
    luis = transfer(rich, "10", "shared-key", user=LUIS, destination_id="ben-ana")
    assert ana != luis
    assert len(transfer_debits(store_of(rich))) == 2
    assert balance(rich, LUIS, "acc-luis") == Money.of("100.00")
    assert balance(rich, ANA, "acc-save") == Money.of("10.00")


def test_idempotency_record_expires_after_24_hours(memory_bank: Bank) -> None:
    cmd = CreateTransfer.parse(ANA, "acc-0001", "100", "old-key", destination_id="acc-0003")
    first = memory_bank.app.banking.create_transfer(cmd)
    memory_bank.clock.advance(timedelta(hours=24))
    second = memory_bank.app.banking.create_transfer(cmd)
    assert second.transfer_id != first.transfer_id
    assert balance(memory_bank, ANA, "acc-0003") == Money.of("1200.00")
    # After expiry the key is free for a different request too.
    memory_bank.clock.advance(timedelta(hours=24, seconds=1))
    transfer(memory_bank, "7", "old-key", from_account_id="acc-0003", destination_id="acc-0001")
    assert balance(memory_bank, ANA, "acc-0003") == Money.of("1193.00")


def test_a_refused_request_does_not_burn_its_key(memory_bank: Bank) -> None:
    with pytest.raises(InsufficientFunds):
        transfer(memory_bank, "5000", "k", from_account_id="acc-0003", destination_id="acc-0001")
    # Nothing was stored under the key, so a different request with it succeeds.
    transfer(memory_bank, "5", "k", from_account_id="acc-0003", destination_id="acc-0001")
    assert balance(memory_bank, ANA, "acc-0003") == Money.of("995.00")


# ownership -----------------------------------------------------------------------
def test_another_users_account_is_not_found(memory_bank: Bank) -> None:
    banking = memory_bank.app.banking
    with pytest.raises(AccountNotFound) as raised:
        banking.get_balance(LUIS, "acc-0001")
    assert raised.value.status == 404
    with pytest.raises(AccountNotFound):
        banking.list_transactions(LUIS, "acc-0001")
    assert [a.account_id for a in banking.list_accounts(LUIS)] == ["acc-0002"]
    with pytest.raises(AccountNotFound):
        transfer(memory_bank, "1", "k", user=LUIS, from_account_id="acc-0001", destination_id="acc-0002")
    # Nor can a customer send to another customer's account by typing its id.
    with pytest.raises(DestinationNotFound):
        transfer(memory_bank, "1", "k2", from_account_id="acc-0001", destination_id="acc-0002")
    assert balance(memory_bank, ANA, "acc-0001") == Money.of("25000.00")


def test_another_users_transfer_is_not_found(memory_bank: Bank) -> None:
    done = transfer(memory_bank, "1", "k", from_account_id="acc-0001", destination_id="ben-mama")
    with pytest.raises(TransferNotFound) as raised:
        memory_bank.app.banking.get_transfer(LUIS, done.transfer_id)
    assert raised.value.status == 404


def test_beneficiaries_are_per_user(memory_bank: Bank) -> None:
    [mama] = memory_bank.app.banking.list_beneficiaries(ANA)
    assert (mama.beneficiary_id, mama.account_last4) == ("ben-mama", "0002")
    assert memory_bank.app.banking.list_beneficiaries(LUIS) == []
    with pytest.raises(DestinationNotFound):
        transfer(memory_bank, "1", "k", user=LUIS, from_account_id="acc-0002", destination_id="ben-mama")


def test_a_beneficiary_that_is_the_source_account_is_refused(tmp_path: Path) -> None:
    document = rich_bank()
    document["beneficiaries"].append(
        {"user_id": ANA, "beneficiary_id": "ben-me", "alias": "Yo", "account_id": "acc-rich"}
    )
    with opener("memory")(tmp_path) as backend:
        bank = make_bank(backend, document)
        with pytest.raises(InvalidInput) as raised:
            transfer(bank, "1", "k", destination_id="ben-me")
        assert (raised.value.message, raised.value.field) == (
            "That beneficiary is the source account itself.",
            "destination_id",
        )


def test_own_accounts_come_first_when_a_beneficiary_has_the_same_id(tmp_path: Path) -> None:
    """Loading refuses the clash; a store holding one anyway (older data) still pays the own account."""
    from centli.domain.ledger import Beneficiary

    with opener("memory")(tmp_path) as backend:
        bank = make_bank(backend, rich_bank())
        with backend.uow() as uow:
            uow.beneficiaries.add(Beneficiary("acc-save", ANA, "Luis", "acc-luis", LUIS))
            uow.commit()
        done = transfer(bank, "5", "k", destination_id="acc-save")
        assert (done.to.account_id, done.beneficiary_id) == ("acc-save", None)
        assert balance(bank, ANA, "acc-save") == Money.of("5.00")


def test_loading_refuses_a_beneficiary_id_that_is_one_of_the_customers_account_ids() -> None:
    from centli.domain.loading import parse_bank_document

    document = rich_bank()
    document["beneficiaries"].append(
        {"user_id": ANA, "beneficiary_id": "acc-save", "alias": "Luis", "account_id": "acc-luis"}
    )
    with pytest.raises(InvalidInput) as raised:
        parse_bank_document(document, datetime(2026, 11, 24, tzinfo=UTC))
    assert raised.value.message == "beneficiary acc-save has the id of one of u-ana's own accounts"
    # Another customer's account id is no clash: destinations are resolved among the caller's own accounts.
    document["beneficiaries"][-1] = {"user_id": LUIS, "beneficiary_id": "acc-save", "account_id": "acc-rich"}
    assert parse_bank_document(document, datetime(2026, 11, 24, tzinfo=UTC)).beneficiaries[-1].user_id == LUIS
