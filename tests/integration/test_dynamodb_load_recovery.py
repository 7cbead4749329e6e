"""Loading again after a load that failed half-way, and replacing beneficiaries, against moto over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError, NoRegionError

from centli.adapters.dynamodb import DynamoStore, make_dynamodb_client
from centli.adapters.memory import ManualClock, SequentialIds
from centli.adapters.resilience import CircuitBreaker
from centli.domain.application import Application, bootstrap
from centli.domain.errors import DependencyUnavailable
from centli.domain.ledger import AccountRef
from centli.domain.loading import BankData, parse_bank_document
from centli.domain.policy import BankPolicy
from centli.domain.settlement import CLEARING_ACCOUNTS, is_clearing
from centli.entrypoints.settings import Settings
from tests.backends.dynamodb import open_store
from tests.conftest import CURSOR_SECRET
from tests.integration.moto_server import moto_endpoint
from tests.integration.test_dynamodb_load import USERS, batches, big_bank

pytestmark = pytest.mark.integration


class DiesMidBatch:
    """Fails the n-th BatchWriteItem after writing only its first ``keep`` items (a crash mid-request)."""

    def __init__(self, client: Any, batch: int, keep: int) -> None:
        self.real = client
        self.batch, self.keep = batch, keep
        self.seen = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.real, name)
        if name != "batch_write_item":
            return attr

        def call(**params: Any) -> Any:
            self.seen += 1
            if self.seen != self.batch + 1:
                return attr(**params)
            kept: dict[str, list[Any]] = {}
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    if sum(len(v) for v in kept.values()) < self.keep:
                        kept.setdefault(table, []).append(request)
            if kept:
                attr(RequestItems=kept)
            raise EndpointConnectionError(endpoint_url="http://dynamodb.invalid")

        return call


@pytest.fixture
def failing_store(request: pytest.FixtureRequest) -> Iterator[DynamoStore]:
    batch, keep = request.param
    with open_store(
        wrap=lambda client: DiesMidBatch(client, batch, keep), breaker=CircuitBreaker("test", failure_threshold=99)
    ) as store:
        store.sleep = lambda _: None
        yield store


def app_on(store: DynamoStore) -> Application:
    return bootstrap(store.unit_of_work, ManualClock(), SequentialIds(), BankPolicy(), CURSOR_SECRET, store)


#: BatchWriteItem requests of the ledger phase (heads and opening entries, clearing accounts' included).
LEDGER_BATCHES = len(batches(2 * (2 * USERS + CLEARING_ACCOUNTS)))


@pytest.mark.parametrize(
    "failing_store",
    [(0, 1), (0, 4), (0, 13), (1, 7), (LEDGER_BATCHES - 1, 5), (LEDGER_BATCHES, 0), (LEDGER_BATCHES, 3),
     (LEDGER_BATCHES + 1, 9)],
    indirect=True,
)  # fmt: skip
def test_a_load_that_died_mid_batch_completes_on_the_next_run(failing_store: DynamoStore) -> None:
    data = big_bank()
    with pytest.raises(DependencyUnavailable):
        failing_store.load(data)
    # The re-run happens later: opening entries must not be written a second time under a new key.
    later = [replace(a, opened_at=a.opened_at + timedelta(hours=1)) for a in data.accounts]
    report = failing_store.load(replace(data, accounts=later))
    assert (report.accounts, report.beneficiaries, report.products) == (2 * USERS, USERS, 5)
    banking = app_on(failing_store).banking
    clearing = [a for a in data.accounts if is_clearing(a.account_id)]
    with failing_store.unit_of_work() as uow:
        found = uow.accounts.get_many([AccountRef(a.user_id, a.account_id) for a in clearing])
        assert sorted(a.account_id for a in found) == sorted(a.account_id for a in clearing)
        for account in (clearing[0], clearing[-1]):  # one opening entry each, like any account
            history = uow.ledger.history(account.user_id, account.account_id, 10, None).items
            assert [(e.direction, e.amount.minor, e.balance_after.minor) for e in history] == [("CREDIT", 0, 0)]
    for account in (a for a in data.accounts if not is_clearing(a.account_id)):
        entries = banking.list_transactions(account.user_id, account.account_id).entries
        assert [(e.description, e.balance_after.to_decimal_string()) for e in entries] == [
            (entries[0].description, "100.00")
        ]
        assert entries[0].direction == "CREDIT"
        assert banking.get_balance(account.user_id, account.account_id).balance.to_decimal_string() == "100.00"
    assert len(banking.list_beneficiaries("u-03")) == 1


def with_beneficiary(alias: str, account_id: str) -> BankData:
    document = {
        "users": [{"user_id": "u-ana"}, {"user_id": "u-luis"}],
        "accounts": [
            {"user_id": "u-ana", "account_id": "acc-1", "opening_balance": "10.00"},
            {"user_id": "u-luis", "account_id": "acc-2", "opening_balance": "10.00"},
            {"user_id": "u-luis", "account_id": "acc-3", "opening_balance": "10.00"},
        ],
        "beneficiaries": [{"user_id": "u-ana", "beneficiary_id": "ben-1", "alias": alias, "account_id": account_id}],
    }
    return parse_bank_document(document, ManualClock().now())


def test_loading_replaces_a_changed_beneficiary_and_rewrites_nothing_unchanged() -> None:
    writes: list[dict[str, Any]] = []

    class Recording:
        def __init__(self, client: Any) -> None:
            self.real = client

        def __getattr__(self, name: str) -> Any:
            attr = getattr(self.real, name)
            if name != "batch_write_item":
                return attr

            def call(**params: Any) -> Any:
                writes.append(params["RequestItems"])
                return attr(**params)

            return call

    with open_store(wrap=Recording) as store:
        store.load(with_beneficiary("Luis", "acc-2"))
        writes.clear()
        store.load(with_beneficiary("Luis", "acc-2"))
        assert writes == []
        store.load(with_beneficiary("Luis (ahorro)", "acc-3"))
        assert [list(w) for w in writes] == [[store.tables.beneficiaries]]
        [ben] = app_on(store).banking.list_beneficiaries("u-ana")
        assert (ben.alias, ben.account_id, ben.account_user_id) == ("Luis (ahorro)", "acc-3", "u-luis")


@pytest.fixture
def no_region(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


def test_without_an_endpoint_a_missing_region_is_an_error(no_region: None) -> None:
    with pytest.raises(NoRegionError):
        make_dynamodb_client()


def test_a_local_endpoint_defaults_the_region(no_region: None, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = moto_endpoint()
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    assert make_dynamodb_client(endpoint).meta.region_name == "us-east-1"
    # The environment's endpoint reaches the client through the settings (the only reader of the environment).
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    client = make_dynamodb_client(Settings.from_env().aws_endpoint("dynamodb"))
    assert client.meta.region_name == "us-east-1"
    assert client.meta.endpoint_url == endpoint
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint + "/")
    assert Settings.from_env().aws_endpoint("dynamodb") == endpoint + "/"  # the service's own wins
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert make_dynamodb_client(endpoint).meta.region_name == "eu-west-1"  # an explicit region still wins
