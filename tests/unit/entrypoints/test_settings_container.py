"""Settings from the environment, the container's backend choice, and the `centli load` command."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from dependency_injector import providers

from centli.domain.settlement import CLEARING_ACCOUNTS
from centli.entrypoints import aws_lambda
from centli.entrypoints.commands import load_command
from centli.entrypoints.container import Container
from centli.entrypoints.settings import Settings, SettingsError
from tests.containers import overridden
from tests.unit.entrypoints.conftest import bank_document, decode, example


def test_defaults_are_the_embedded_sqlite_run() -> None:
    settings = Settings.from_env({})
    assert settings.backend == "sqlite" and settings.sqlite_path == ".centli/centli.db"
    assert settings.identity_secret_source() is None  # AgentCore refused until configured
    assert settings.policy().limits["MXN"].per_transfer.to_decimal_string() == "50000.00"


@pytest.mark.parametrize(
    ("env", "mentioned"),
    [
        ({"AWS_LAMBDA_FUNCTION_NAME": "centli-core-banking"}, "CENTLI_BACKEND"),
        ({"CENTLI_BACKEND": "dynamodb"}, "CENTLI_CURSOR_SECRET"),
        ({"CENTLI_BACKEND": "postgres"}, "CENTLI_BACKEND"),
        ({"CENTLI_LIMIT_DAILY": "-5"}, "CENTLI_LIMIT_DAILY"),
        ({"CENTLI_LIMIT_PER_TRANSFER": "1e5"}, "CENTLI_LIMIT_PER_TRANSFER"),
        ({"CENTLI_TIMEZONE": "Mars/Olympus"}, "CENTLI_TIMEZONE"),
        ({"CENTLI_CURSOR_SECRET": "short"}, "CENTLI_CURSOR_SECRET"),
    ],
)
def test_bad_environments_are_refused_clearly(env: dict[str, str], mentioned: str) -> None:
    with pytest.raises(SettingsError, match=mentioned):
        Settings.from_env(env)


def test_the_settings_read_the_table_names_log_settings_and_endpoints() -> None:
    settings = Settings.from_env(
        {
            "CENTLI_TABLE_ACCOUNTS": "acc-table",
            "CENTLI_LOG_LEVEL": "warning",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
            "AWS_ENDPOINT_URL_EVENTS": "http://127.0.0.1:5001",
        }
    )
    assert (settings.table_names().accounts, settings.table_names().orders) == ("acc-table", "centli-orders")
    assert settings.log_level == "WARNING"
    assert settings.aws_endpoint("dynamodb") == "http://127.0.0.1:5000"
    assert settings.aws_endpoint("events") == "http://127.0.0.1:5001"
    assert Settings.from_env({}).aws_endpoint("dynamodb") is None  # AWS itself
    with pytest.raises(SettingsError, match="CENTLI_TABLE_ACOUNTS"):
        Settings.from_env({"CENTLI_TABLE_ACOUNTS": "typo"})
    with pytest.raises(SettingsError, match="CENTLI_TABLE_<NAME>: not used by the interceptor role"):
        Settings.from_env({"CENTLI_ROLE": "interceptor", "CENTLI_TABLE_ACCOUNTS": "acc-table"})


def test_configured_limits_reach_the_domain(tmp_path: Path) -> None:
    settings = Settings.from_env({"CENTLI_LIMIT_PER_TRANSFER": "100.00", "CENTLI_LIMIT_DAILY": "150.00"})
    with overridden(aws_lambda.container, settings=settings):
        event = example("bedrock-openapi-createTransfer.json")  # 500.00 > 100.00
        reply = decode("openapi", aws_lambda.core_banking_handler(event, None))
        assert (reply.status, reply.body["error"]["code"]) == (422, "LIMIT_EXCEEDED")


def test_the_memory_backend_serves_the_demo_bank() -> None:
    container = Container()
    container.settings.override(providers.Object(Settings(backend="memory")))
    app = container.application()
    assert app.banking.get_balance("u-ana", "acc-0001").balance.to_decimal_string() == "25000.00"
    assert container.application() is app  # one per process


def test_load_then_serve_from_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    database = tmp_path / "bank.db"
    monkeypatch.setenv("CENTLI_BACKEND", "sqlite")
    monkeypatch.setenv("CENTLI_SQLITE_PATH", str(database))
    document = tmp_path / "bank.json"
    document.write_text(json.dumps(bank_document()), "utf-8")
    out, err = io.StringIO(), io.StringIO()
    assert load_command(document, out=out, err=err) == 0
    assert "loaded into sqlite: 5 accounts, 2 beneficiaries, 2 products" in out.getvalue()
    assert load_command(document, out=io.StringIO(), err=err) == 0  # idempotent
    container = aws_lambda.container
    container.reset_singletons()
    try:
        reply = decode("openapi", aws_lambda.core_banking_handler(example("bedrock-openapi-getBalance.json"), None))
        assert reply.body["balance"] == "25000.00"
    finally:
        container.reset_singletons()


def test_load_refuses_a_bad_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CENTLI_BACKEND", "memory")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"accounts": [{"user_id": "nobody", "account_id": "acc-1"}]}), "utf-8")
    err = io.StringIO()
    assert load_command(bad, out=io.StringIO(), err=err) == 2
    assert "unknown user" in err.getvalue()


def test_load_shows_progress_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("CENTLI_BACKEND", "sqlite")
    monkeypatch.setenv("CENTLI_SQLITE_PATH", str(tmp_path / "bank.db"))
    document = tmp_path / "bank.json"
    document.write_text(json.dumps(bank_document()), "utf-8")
    terminal = Terminal()
    assert load_command(document, out=io.StringIO(), err=terminal) == 0
    records = 9 + CLEARING_ACCOUNTS  # the file's records, plus the one seller account's clearing accounts
    assert f"\rloading {records}/{records} records" in terminal.getvalue()
