"""Bulk loading with batch requests, and ``centli tables create``, against moto over HTTP."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from centli.adapters.dynamodb import DynamoStore, TableNames, make_dynamodb_client
from centli.adapters.dynamodb.schema import TABLES, delete_tables
from centli.adapters.memory import ManualClock, SequentialIds
from centli.domain.application import bootstrap
from centli.domain.banking import CreateTransfer
from centli.domain.ledger import AccountRef
from centli.domain.loading import BankData, parse_bank_document
from centli.domain.policy import BankPolicy
from centli.domain.settlement import CLEARING_ACCOUNTS, is_clearing
from centli.entrypoints.cli import main
from tests.backends.dynamodb import open_store
from tests.conftest import CURSOR_SECRET
from tests.integration.moto_server import moto_endpoint

pytestmark = pytest.mark.integration

USERS = 12


def big_bank() -> BankData:
    users = [f"u-{i:02d}" for i in range(USERS)]
    document = {
        "users": [{"user_id": u} for u in users],
        "accounts": [
            {"user_id": u, "account_id": f"acc-{u}-{k}", "opening_balance": "100.00"} for u in users for k in range(2)
        ],
        "beneficiaries": [
            {"user_id": u, "beneficiary_id": f"ben-{u}", "account_id": f"acc-{users[0]}-0"} for u in users
        ],
        "products": [
            {"product_id": f"p-{n}", "name": f"Producto {n}", "category": "misc", "price": "10.00", "stock": 3,
             "seller_account_id": f"acc-{users[0]}-0"}
            for n in range(5)
        ],
    }  # fmt: skip
    return parse_bank_document(document, ManualClock().now())


def batches(items: int) -> list[int]:
    """The sizes of the BatchWriteItem requests that write ``items`` items, 25 at most each."""
    return [25] * (items // 25) + ([items % 25] if items % 25 else [])


class Recorder:
    def __init__(self, client: Any) -> None:
        self.real = client
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.unprocess_first_write = False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.real, name)
        if name.startswith("_") or not callable(attr):
            return attr

        def call(**params: Any) -> Any:
            self.calls.append((name, params))
            if name == "batch_write_item" and self.unprocess_first_write:
                # DynamoDB may accept part of a batch: write the first table's first items, hand back the rest.
                self.unprocess_first_write = False
                first, *others = params["RequestItems"].items()
                half = len(first[1]) // 2
                attr(RequestItems={first[0]: first[1][:half]})
                return {"UnprocessedItems": {first[0]: first[1][half:], **dict(others)}}
            return attr(**params)

        return call

    def count(self) -> Counter[str]:
        return Counter(name for name, _ in self.calls)


@pytest.fixture
def recorded() -> Any:
    holder: list[Recorder] = []

    def wrap(client: Any) -> Recorder:
        holder.append(Recorder(client))
        return holder[0]

    with open_store(wrap=wrap) as store:
        store.sleep = lambda _: None
        yield store, holder[0]


def test_load_batches_25_items_reports_progress_and_is_idempotent(recorded: tuple[DynamoStore, Recorder]) -> None:
    store, client = recorded
    data = big_bank()
    progress: list[tuple[int, int]] = []
    report = store.load(data, lambda done, total: progress.append((done, total)))
    assert (report.accounts, report.beneficiaries, report.products) == (2 * USERS, USERS, 5)
    writes = [p for name, p in client.calls if name == "batch_write_item"]
    sizes = [sum(len(v) for v in p["RequestItems"].values()) for p in writes]
    # The customers' 24 accounts plus the seller account's clearing accounts (merchant settlement).
    accounts = 2 * USERS + CLEARING_ACCOUNTS
    assert len(data.accounts) == accounts
    # First every account's ledger head and opening entry, then the account rows, beneficiaries
    # and products: full batches except the last of each phase.
    ledger = batches(2 * accounts)
    assert sizes == ledger + batches(accounts + USERS + 5)
    ledger_first = {t for p in writes[: len(ledger)] for t in p["RequestItems"]}
    assert ledger_first == {store.tables.transactions}
    assert store.tables.transactions not in {t for p in writes[len(ledger) :] for t in p["RequestItems"]}
    assert progress[-1] == (data.size, data.size)
    assert len(progress) == len(writes)
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)

    # Money moves; a second load must not reset anything and writes nothing.
    app = bootstrap(store.unit_of_work, ManualClock(), SequentialIds(), BankPolicy(), CURSOR_SECRET, store)
    app.banking.create_transfer(CreateTransfer.parse("u-01", "acc-u-01-0", "40.00", "k", destination_id="acc-u-01-1"))
    client.calls.clear()
    store.load(data)
    assert client.count()["batch_write_item"] == 0
    # Every record's key, and every id that could clash with a destination, up to 100 keys a request.
    assert client.count()["batch_get_item"] == -(-((accounts + USERS + 5) + (USERS + accounts)) // 100)
    assert app.banking.get_balance("u-01", "acc-u-01-0").balance.to_decimal_string() == "60.00"
    history = app.banking.list_transactions("u-01", "acc-u-01-0").entries
    assert [e.balance_after.to_decimal_string() for e in history] == ["60.00", "100.00"]


def test_unprocessed_items_are_resent(recorded: tuple[DynamoStore, Recorder]) -> None:
    store, client = recorded
    client.unprocess_first_write = True
    data = big_bank()
    store.load(data)
    items = (2 * USERS + CLEARING_ACCOUNTS) * 3 + USERS + 5
    assert client.count()["batch_write_item"] > -(-items // 25)  # at least one resend
    app = bootstrap(store.unit_of_work, ManualClock(), SequentialIds(), BankPolicy(), CURSOR_SECRET, store)
    customers = [a for a in data.accounts if not is_clearing(a.account_id)]
    for account in customers:
        assert app.banking.get_balance(account.user_id, account.account_id).balance.to_decimal_string() == "100.00"
    with store.unit_of_work() as uow:
        clearing = uow.accounts.get_many([AccountRef(a.user_id, a.account_id) for a in data.accounts])
    assert sorted(a.balance.minor for a in clearing) == [0] * CLEARING_ACCOUNTS + [10_000] * len(customers)
    assert len(app.marketplace.search_products("u-00").products) == 5
    assert len(app.banking.list_beneficiaries("u-05")) == 1


def test_tables_create_command(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = moto_endpoint()
    names = TableNames().with_prefix("cli-")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    for field, name in names.items():
        monkeypatch.setenv(f"CENTLI_TABLE_{field.upper()}", name)
    client = make_dynamodb_client(endpoint)
    try:
        assert main(["tables", "create"]) == 0
        assert capsys.readouterr().out.count("created ") == len(TABLES)
        assert main(["tables", "create"]) == 0  # a second run changes nothing
        assert capsys.readouterr().out.count("exists ") == len(TABLES)
        described = client.describe_table(TableName=names.transactions)["Table"]
        assert [i["IndexName"] for i in described["GlobalSecondaryIndexes"]] == ["user_id-timestamp-index"]
        outbox = client.describe_table(TableName=names.outbox)["Table"]
        assert outbox["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
        ttl = client.describe_time_to_live(TableName=names.idempotency)["TimeToLiveDescription"]
        assert ttl["AttributeName"] == "ttl" and ttl["TimeToLiveStatus"] == "ENABLED"
        assert client.describe_table(TableName=names.accounts)["Table"]["BillingModeSummary"]["BillingMode"] == (
            "PAY_PER_REQUEST"
        )
    finally:
        delete_tables(client, names)
