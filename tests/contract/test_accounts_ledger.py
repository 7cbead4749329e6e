"""Contract: accounts, beneficiaries and the ledger, through the ports of every backend."""

from __future__ import annotations

from datetime import timedelta

import pytest

from centli.domain.errors import AccountNotFound, CurrencyMismatch, DomainError, InsufficientFunds
from centli.domain.ledger import OPENING_DESCRIPTION, AccountRef, Beneficiary, Transfer
from centli.domain.money import Money
from tests.backends import Backend
from tests.contract.conftest import (
    ANA,
    LUIS,
    SHOP,
    T0,
    account,
    balance,
    commit,
    full_history,
    seed,
    snapshot,
    transfer,
)

pytestmark = pytest.mark.contract


# accounts --------------------------------------------------------------------------
def test_open_writes_the_account_and_its_opening_entry(any_backend: Backend) -> None:
    commit(any_backend, lambda uow: uow.accounts.open(account(ANA, "acc-a1", "1234.56")))
    with any_backend.uow() as uow:
        opened = uow.accounts.get(ANA, "acc-a1")
    assert opened is not None
    assert (opened.account_id, opened.user_id, opened.alias) == ("acc-a1", ANA, "alias acc-a1")
    assert (opened.balance, opened.currency) == (Money(123_456), "MXN")
    [opening] = full_history(any_backend, ANA, "acc-a1")
    assert (opening.direction, opening.amount, opening.balance_after) == ("CREDIT", Money(123_456), Money(123_456))
    assert (opening.entry_id, opening.description, opening.timestamp) == ("open-acc-a1", OPENING_DESCRIPTION, T0)
    assert (opening.user_id, opening.account_id) == (ANA, "acc-a1")


def test_open_is_idempotent(any_backend: Backend) -> None:
    commit(any_backend, lambda uow: uow.accounts.open(account(ANA, "acc-a1", "100.00")))
    commit(any_backend, lambda uow: uow.accounts.open(account(ANA, "acc-a1", "999.00")))
    assert balance(any_backend, ANA, "acc-a1") == Money.of("100.00")
    assert len(full_history(any_backend, ANA, "acc-a1")) == 1


def test_open_with_a_zero_balance_and_another_currency(any_backend: Backend) -> None:
    commit(
        any_backend,
        lambda uow: uow.accounts.open(account(ANA, "acc-z", "0.00")),
        lambda uow: uow.accounts.open(account(ANA, "acc-usd", "10.50", "USD")),
    )
    assert balance(any_backend, ANA, "acc-z") == Money(0)
    assert balance(any_backend, ANA, "acc-usd") == Money(1050, "USD")


def test_get_and_list_are_per_user(any_backend: Backend) -> None:
    seed(any_backend)
    with any_backend.uow() as uow:
        assert uow.accounts.get(LUIS, "acc-a1") is None
        assert uow.accounts.get(ANA, "acc-nope") is None
        assert sorted(a.account_id for a in uow.accounts.list_for_user(ANA)) == ["acc-a1", "acc-a2", "acc-usd"]
        assert [a.account_id for a in uow.accounts.list_for_user(LUIS)] == ["acc-l1"]
        assert uow.accounts.list_for_user("u-nobody") == []


def test_require_passes_when_funds_suffice_and_writes_nothing(any_backend: Backend) -> None:
    seed(any_backend)
    before = snapshot(any_backend)
    commit(any_backend, lambda uow: uow.accounts.require(ANA, "acc-a1", Money.of("1000.00")))
    assert snapshot(any_backend) == before


REQUIRE_GUARDS: list[tuple[str, str, Money, type[DomainError]]] = [
    (ANA, "acc-nope", Money(1), AccountNotFound),
    (LUIS, "acc-a1", Money(1), AccountNotFound),  # another user's account does not exist for him
    (ANA, "acc-a1", Money(1, "USD"), CurrencyMismatch),
    (ANA, "acc-a1", Money.of("1000.01"), InsufficientFunds),
    (ANA, "acc-a2", Money(1), InsufficientFunds),
]


def test_require_guards(any_backend: Backend) -> None:
    # One backend for every case (a DynamoDB setup costs a second); each case must fail alone.
    seed(any_backend)
    for user, account_id, minimum, error in REQUIRE_GUARDS:
        with pytest.raises(error), any_backend.uow() as uow:
            uow.accounts.require(user, account_id, minimum)
            uow.commit()


# beneficiaries -----------------------------------------------------------------------
def test_beneficiaries_add_get_list_replace(any_backend: Backend) -> None:
    seed(any_backend)
    with any_backend.uow() as uow:
        assert uow.beneficiaries.get(ANA, "ben-luis") == Beneficiary("ben-luis", ANA, "Luis", "acc-l1", LUIS)
        assert uow.beneficiaries.get(LUIS, "ben-luis") is None
        assert uow.beneficiaries.list_for_user(LUIS) == []
    replaced = Beneficiary("ben-luis", ANA, "Luis P.", "acc-l1", LUIS)
    commit(
        any_backend,
        lambda uow: uow.beneficiaries.add(replaced),
        lambda uow: uow.beneficiaries.add(Beneficiary("ben-shop", ANA, "Tienda", "acc-s1", SHOP)),
    )
    with any_backend.uow() as uow:
        assert uow.beneficiaries.get(ANA, "ben-luis") == replaced
        assert sorted(b.beneficiary_id for b in uow.beneficiaries.list_for_user(ANA)) == ["ben-luis", "ben-shop"]


# ledger -------------------------------------------------------------------------------
def test_post_moves_money_on_both_sides_with_entries_and_a_record(any_backend: Backend) -> None:
    seed(any_backend)
    sent = transfer("trf-1", "250.25")
    any_backend.clock.advance(timedelta(minutes=5))
    stamp = commit(any_backend, lambda uow: uow.ledger.post(sent))
    # The commit stamps the transfer with the store's clock at commit: the caller's created_at was a guess.
    assert stamp == any_backend.clock.now() != sent.created_at
    assert balance(any_backend, ANA, "acc-a1") == Money.of("749.75")
    assert balance(any_backend, LUIS, "acc-l1") == Money.of("750.25")
    debit, opening = full_history(any_backend, ANA, "acc-a1")
    assert (debit.direction, debit.amount, debit.balance_after) == ("DEBIT", Money(25_025), Money(74_975))
    assert (debit.transfer_id, debit.entry_id, debit.timestamp) == ("trf-1", sent.debit_entry_id, stamp)
    assert debit.description == sent.concept
    assert opening.entry_id == "open-acc-a1"
    credit = full_history(any_backend, LUIS, "acc-l1")[0]
    assert (credit.direction, credit.amount, credit.balance_after) == ("CREDIT", Money(25_025), Money(75_025))
    assert (credit.transfer_id, credit.entry_id, credit.user_id) == ("trf-1", sent.credit_entry_id, LUIS)
    assert credit.timestamp == stamp
    with any_backend.uow() as uow:
        assert uow.ledger.get_transfer(ANA, "trf-1") == sent.stamped(stamp)
        assert uow.ledger.get_transfer(LUIS, "trf-1") is None  # the recipient did not send it
        assert uow.ledger.get_transfer(ANA, "trf-nope") is None


def test_post_round_trips_every_transfer_field(any_backend: Backend) -> None:
    seed(any_backend)
    payment = Transfer(
        transfer_id="trf-pay",
        user_id=ANA,
        from_account_id="acc-a1",
        to=AccountRef(SHOP, "acc-s1"),
        amount=Money(1),
        concept="",
        created_at=T0.replace(microsecond=123_000),
        kind="PURCHASE_PAYMENT",
        beneficiary_id="ben-x",
    )
    any_backend.clock.advance(timedelta(milliseconds=123))  # the stamp keeps its microseconds
    assert commit(any_backend, lambda uow: uow.ledger.post(payment)) == payment.created_at
    with any_backend.uow() as uow:
        assert uow.ledger.get_transfer(ANA, "trf-pay") == payment
    assert full_history(any_backend, ANA, "acc-a1")[0].description == "Compra"
    assert full_history(any_backend, SHOP, "acc-s1")[0].description == "Venta"


def test_post_can_empty_an_account_exactly(any_backend: Backend) -> None:
    seed(any_backend)
    commit(any_backend, lambda uow: uow.ledger.post(transfer("trf-1", "1000.00", to=(ANA, "acc-a2"))))
    assert balance(any_backend, ANA, "acc-a1") == Money(0)
    assert balance(any_backend, ANA, "acc-a2") == Money.of("1000.00")


POST_GUARDS: list[tuple[Transfer, type[DomainError]]] = [
    (transfer("trf-x", "1", source="acc-nope"), AccountNotFound),
    (transfer("trf-x", "1", user=LUIS), AccountNotFound),  # acc-a1 is not Luis's
    (transfer("trf-x", "1", to=(LUIS, "acc-nope")), AccountNotFound),
    (transfer("trf-x", "1", to=(ANA, "acc-l1")), AccountNotFound),  # wrong owner of the target
    (transfer("trf-x", "1", currency="USD"), CurrencyMismatch),
    (transfer("trf-x", "1", to=(ANA, "acc-usd")), CurrencyMismatch),
    (transfer("trf-x", "1000.01"), InsufficientFunds),
    (transfer("trf-x", "0.01", source="acc-a2", to=(ANA, "acc-a1")), InsufficientFunds),
]


def test_post_guards_write_nothing(any_backend: Backend) -> None:
    seed(any_backend)
    before = snapshot(any_backend)
    for bad, error in POST_GUARDS:
        with pytest.raises(error), any_backend.uow() as uow:
            uow.ledger.post(bad)
            uow.commit()
        assert snapshot(any_backend) == before, bad


def test_history_pages_newest_first_with_positions(any_backend: Backend) -> None:
    seed(any_backend)
    for n in range(1, 8):
        commit(any_backend, lambda uow: uow.ledger.post(transfer(f"trf-{n}", f"{n}.00", minute=n)))
    for page_size in (1, 2, 3, 8, 50):
        entries = full_history(any_backend, ANA, "acc-a1", page=page_size)
        assert [e.transfer_id for e in entries] == [f"trf-{n}" for n in range(7, 0, -1)] + ["open-acc-a1"]
        assert [e.timestamp for e in entries] == sorted((e.timestamp for e in entries), reverse=True)
    entries = full_history(any_backend, ANA, "acc-a1")
    assert [e.balance_after.minor for e in entries] == [97_200, 97_900, 98_500, 99_000, 99_400, 99_700, 99_900, 100_000]
    # Every page boundary resumes exactly where the last page stopped.
    with any_backend.uow() as uow:
        first = uow.ledger.history(ANA, "acc-a1", 3, None)
        assert first.next_position is not None
        second = uow.ledger.history(ANA, "acc-a1", 3, first.next_position)
    assert [e.transfer_id for e in first.items + second.items] == ["trf-7", "trf-6", "trf-5", "trf-4", "trf-3", "trf-2"]
    credits = full_history(any_backend, LUIS, "acc-l1")
    assert [e.direction for e in credits] == ["CREDIT"] * 8
    assert credits[0].balance_after == balance(any_backend, LUIS, "acc-l1") == Money.of("528.00")


def test_history_of_an_account_that_is_not_the_users(any_backend: Backend) -> None:
    seed(any_backend)
    for user, account_id in [(LUIS, "acc-a1"), (ANA, "acc-nope")]:
        with pytest.raises(AccountNotFound), any_backend.uow() as uow:
            uow.ledger.history(user, account_id, 10, None)


def test_history_sums_to_the_balance_after_many_posts(any_backend: Backend) -> None:
    seed(any_backend)
    moves = [("acc-a1", "acc-a2", "300.00"), ("acc-a2", "acc-a1", "100.10"), ("acc-a1", "acc-a2", "0.01")]
    for n, (source, target, amount) in enumerate(moves):
        sent = transfer(f"trf-{n}", amount, source=source, to=(ANA, target), minute=n + 1)
        commit(any_backend, lambda uow: uow.ledger.post(sent))
    for account_id in ("acc-a1", "acc-a2"):
        entries = full_history(any_backend, ANA, account_id)
        assert sum(e.signed_minor for e in entries) == balance(any_backend, ANA, account_id).minor
        running = 0
        for entry in reversed(entries):
            running += entry.signed_minor
            assert entry.balance_after.minor == running
