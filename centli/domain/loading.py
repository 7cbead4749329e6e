"""The data-loading format (``centli load FILE.json``): parsing and validation.

Adapters write the result: the in-memory and SQLite ones through a unit of
work (:func:`load_through_unit_of_work`), DynamoDB with batch writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from centli.domain.catalog import Product
from centli.domain.errors import InvalidInput
from centli.domain.ledger import AccountRef, Beneficiary, NewAccount
from centli.domain.money import Money
from centli.domain.policy import MAX_NAME_LENGTH, customer_text, require_id
from centli.domain.settlement import clearing_openings, is_clearing
from centli.ports.unit_of_work import UnitOfWorkFactory

#: Called with (records written so far, records in all).
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class BankData:
    accounts: list[NewAccount]
    beneficiaries: list[Beneficiary]
    products: list[Product]

    def report(self) -> LoadReport:
        """What was loaded, as the customer's file counts it (clearing accounts are not in the file)."""
        customer_accounts = sum(not is_clearing(a.account_id) for a in self.accounts)
        return LoadReport(customer_accounts, len(self.beneficiaries), len(self.products))

    @property
    def size(self) -> int:
        return len(self.accounts) + len(self.beneficiaries) + len(self.products)


@dataclass(frozen=True, slots=True)
class LoadReport:
    accounts: int
    beneficiaries: int
    products: int


def parse_bank_document(document: Mapping[str, Any], opened_at: datetime) -> BankData:
    """Validate a bank document; raises InvalidInput naming the first bad record."""
    known_users = {require_id(u.get("user_id"), "users[].user_id") for u in _records(document, "users")}
    accounts: list[NewAccount] = []
    owners: dict[str, str] = {}
    for raw in _records(document, "accounts"):
        user_id = require_id(raw.get("user_id"), "accounts[].user_id")
        account_id = require_id(raw.get("account_id"), "accounts[].account_id")
        if user_id not in known_users:
            raise InvalidInput(f"account {account_id} names an unknown user {user_id}")
        if account_id in owners:
            raise InvalidInput(f"account {account_id} appears twice")
        opening = _decimal(raw.get("opening_balance", "0.00"), str(raw.get("currency", "MXN")), account_id)
        if opening.is_negative:
            raise InvalidInput(f"account {account_id} has a negative opening balance")
        owners[account_id] = user_id
        alias = customer_text(raw.get("alias"), f"account {account_id} alias", MAX_NAME_LENGTH)
        accounts.append(NewAccount(account_id, user_id, alias, opening, opened_at))
    beneficiaries: list[Beneficiary] = []
    for raw in _records(document, "beneficiaries"):
        user_id = require_id(raw.get("user_id"), "beneficiaries[].user_id")
        account_id = require_id(raw.get("account_id"), "beneficiaries[].account_id")
        beneficiary_id = require_id(raw.get("beneficiary_id"), "beneficiaries[].beneficiary_id")
        if account_id not in owners:
            raise InvalidInput(f"beneficiary {beneficiary_id} names an unknown account")
        if owners.get(beneficiary_id) == user_id:
            raise _clash(user_id, beneficiary_id)
        alias = customer_text(raw.get("alias"), f"beneficiary {beneficiary_id} alias", MAX_NAME_LENGTH)
        beneficiaries.append(
            Beneficiary(
                beneficiary_id=beneficiary_id,
                user_id=user_id,
                alias=alias,
                account_id=account_id,
                account_user_id=owners[account_id],
            )
        )
    products: list[Product] = []
    for raw in _records(document, "products"):
        product_id = require_id(raw.get("product_id"), "products[].product_id")
        seller_account = require_id(raw.get("seller_account_id"), "products[].seller_account_id")
        if seller_account not in owners:
            raise InvalidInput(f"product {product_id} names an unknown seller account")
        price = _decimal(raw.get("price"), str(raw.get("currency", "MXN")), product_id)
        stock = raw.get("stock")
        if price.minor <= 0 or not isinstance(stock, int) or isinstance(stock, bool) or stock < 0:
            raise InvalidInput(f"product {product_id} needs a positive price and a whole, non-negative stock")
        name = customer_text(raw.get("name"), f"product {product_id} name", MAX_NAME_LENGTH)
        seller = AccountRef(owners[seller_account], seller_account)
        products.append(
            Product(
                product_id=product_id,
                name=name,
                category=str(raw.get("category", "")),
                price=price,
                stock=stock,
                reserved=0,
                seller=seller,
            )
        )
    # Every seller account gets its clearing accounts (merchant settlement), opened like any other account.
    currencies = {a.account_id: a.opening_balance.currency for a in accounts}
    for seller in dict.fromkeys(p.seller for p in products):
        accounts.extend(clearing_openings(seller, currencies[seller.account_id], opened_at))
    return BankData(accounts, beneficiaries, products)


def _clash(user_id: str, beneficiary_id: str) -> InvalidInput:
    # A transfer's destination_id is resolved own accounts first: the two must never be ambiguous.
    return InvalidInput(f"beneficiary {beneficiary_id} has the id of one of {user_id}'s own accounts")


def refuse_destination_clashes(
    data: BankData,
    own_account: Callable[[str, str], bool],
    saved_beneficiary: Callable[[str, str], bool],
) -> None:
    """Refuse a load that would give a customer a beneficiary and an account of the same id.

    ``parse_bank_document`` checks one document; a store checks what is already
    stored with ``own_account(user_id, account_id)`` and
    ``saved_beneficiary(user_id, beneficiary_id)`` before it writes anything.
    """
    for ben in data.beneficiaries:
        if own_account(ben.user_id, ben.beneficiary_id):
            raise _clash(ben.user_id, ben.beneficiary_id)
    for account in data.accounts:
        if saved_beneficiary(account.user_id, account.account_id):
            raise _clash(account.user_id, account.account_id)


def load_through_unit_of_work(
    uow: UnitOfWorkFactory, data: BankData, progress: Progress | None = None, chunk: int = 25
) -> LoadReport:
    """Write a bank in chunks; existing accounts and products are left as they are (idempotent)."""
    with uow() as reads:
        refuse_destination_clashes(
            data,
            lambda user, account: reads.accounts.get(user, account) is not None,
            lambda user, beneficiary: reads.beneficiaries.get(user, beneficiary) is not None,
        )
    records: list[NewAccount | Beneficiary | Product] = [*data.accounts, *data.beneficiaries, *data.products]
    for start in range(0, len(records), chunk):
        with uow() as work:
            for record in records[start : start + chunk]:
                if isinstance(record, NewAccount):
                    work.accounts.open(record)
                elif isinstance(record, Beneficiary):
                    work.beneficiaries.add(record)
                else:
                    work.products.add(record)
            work.commit()
        if progress is not None:
            progress(min(start + chunk, len(records)), len(records))
    return data.report()


def _records(document: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    records = document.get(name, [])
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InvalidInput(f"'{name}' must be a list of objects")
    return records


def _decimal(raw: object, currency: str, owner: str) -> Money:
    try:
        return Money.of(str(raw), currency)
    except ValueError:
        raise InvalidInput(f"{owner}: {raw!r} is not an amount with at most two decimals") from None
