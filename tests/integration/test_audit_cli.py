"""``centli audit`` and ``centli trace`` as an operator runs them: exit codes, JSON, quiet off a terminal."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from centli.adapters.memory import ManualClock
from centli.adapters.sqlite import SqliteStore
from centli.domain.banking import CreateTransfer
from centli.domain.marketplace import CreatePurchase
from centli.entrypoints.cli import main
from tests.backends import Backend
from tests.conftest import make_bank


@pytest.fixture
def sqlite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "bank.db"
    clock = ManualClock()
    store = SqliteStore(path, clock=clock)
    try:
        bank = make_bank(Backend("sqlite", store.unit_of_work, store.load, store, clock, {"store": store}))
        bank.app.banking.create_transfer(CreateTransfer.parse("u-ana", "acc-0001", "10.00", "k1", "ben-mama"))
        order = bank.app.marketplace.create_purchase(CreatePurchase.parse("u-ana", "p-100", 1, "acc-0001", "k2"))
        bank.settle()
        (tmp_path / "order_id").write_text(order.order_id)
    finally:
        store.close()
    monkeypatch.setenv("CENTLI_BACKEND", "sqlite")
    monkeypatch.setenv("CENTLI_SQLITE_PATH", str(path))
    return path


def test_a_clean_store_exits_0(sqlite_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--json"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert (report["clean"], report["backend"], report["findings"]) == (True, "sqlite", [])
    assert report["summary"]["transfers"] == 2  # the transfer and the purchase's payment
    assert err == ""  # progress only on a terminal


def test_findings_exit_1_with_a_json_report(sqlite_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with sqlite3.connect(sqlite_file) as db:
        db.execute("UPDATE accounts SET balance_minor = balance_minor + 1 WHERE account_id = 'acc-0002'")
    assert main(["audit", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["clean"] is False
    assert {f["code"] for f in report["findings"]} == {"BALANCE_MISMATCH", "MONEY_NOT_CONSERVED"}
    assert main(["audit"]) == 1
    text = capsys.readouterr().out
    assert "FINDINGS" in text and "BALANCE_MISMATCH u-luis/acc-0002" in text


def test_usage_errors_exit_2(sqlite_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as usage:
        main(["audit", "--no-such-flag"])
    assert usage.value.code == 2
    assert main(["audit", "--stale-minutes", "0"]) == 2
    assert "stale-minutes" in capsys.readouterr().err


def test_trace_prints_a_purchase_timeline(sqlite_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    order_id = (sqlite_file.parent / "order_id").read_text()
    assert main(["trace", order_id, "--json"]) == 0
    timeline = json.loads(capsys.readouterr().out)
    assert timeline["order"]["status"] == "CONFIRMED"
    assert [(e["type"], [c["outcome"] for c in e["consumers"]]) for e in timeline["timeline"]] == [
        ("INVENTORY_RESERVED", []),
        ("PURCHASE_INITIATED", ["paid"]),
        ("PAYMENT_COMPLETED", ["confirmed"]),
        ("ORDER_CONFIRMED", []),
    ]
    assert main(["trace", order_id]) == 0
    assert "-> marketplace.confirm: confirmed" in capsys.readouterr().out
    assert main(["trace", "ord-nope"]) == 1
    assert "nothing found" in capsys.readouterr().out
    with pytest.raises(SystemExit) as usage:
        main(["trace"])
    assert usage.value.code == 2
