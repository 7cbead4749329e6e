"""The purchase saga in process: events delivered per second on memory and SQLite, as ratios.

    PYTHONPATH=. .venv/bin/python bench/saga.py [--purchases 200] [--markdown]

A bank whose one product has ample stock and whose buyer ample funds; the
purchases are committed first (their events wait in the outbox), then the
relay delivers the whole saga (payment, confirmation: four events per
purchase) and the time of that delivery is what is measured. For scale, the
same backend's createTransfer rate is measured in the same run: the ratio
says how many saga events are delivered in the time of one transfer.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from time import perf_counter
from typing import Any

from centli.adapters.memory import InMemoryStore, ManualClock
from centli.adapters.system import UlidGenerator
from centli.domain.application import bootstrap
from centli.domain.banking import CreateTransfer
from centli.domain.loading import parse_bank_document
from centli.domain.marketplace import CreatePurchase
from centli.domain.policy import BankPolicy

SECRET = b"bench-cursor-secret-0123456789"


def bank(purchases: int) -> dict[str, Any]:
    return {
        "users": [{"user_id": "u-buyer"}, {"user_id": "u-shop"}],
        "accounts": [
            {"user_id": "u-buyer", "account_id": "acc-buyer", "opening_balance": "9000000.00"},
            {"user_id": "u-buyer", "account_id": "acc-save", "opening_balance": "0.00"},
            {"user_id": "u-shop", "account_id": "acc-shop", "opening_balance": "0.00"},
        ],
        "products": [
            {
                "product_id": "p-1",
                "name": "Taza",
                "category": "home",
                "price": "10.00",
                "stock": purchases + 1,
                "seller_account_id": "acc-shop",
            }
        ],
    }


def run_backend(store: Any, purchases: int) -> dict[str, float]:
    clock = ManualClock()
    app = bootstrap(store.unit_of_work, clock, UlidGenerator(), BankPolicy(), SECRET, store)
    store.load(parse_bank_document(bank(purchases), clock.now()))
    started = perf_counter()
    for i in range(purchases):
        app.banking.create_transfer(CreateTransfer.parse("u-buyer", "acc-buyer", "1.00", f"t-{i}", "acc-save"))
    transfers_per_second = purchases / (perf_counter() - started)
    store_events = app.settle()  # the transfers' own events (no consumers)
    for i in range(purchases):
        app.marketplace.create_purchase(CreatePurchase.parse("u-buyer", "p-1", 1, "acc-buyer", f"p-{i}"))
    started = perf_counter()
    delivered = app.settle()
    elapsed = perf_counter() - started
    assert store_events == purchases and delivered == 4 * purchases, (store_events, delivered)
    assert app.marketplace.list_orders("u-buyer", 1).orders[0].status == "CONFIRMED"
    return {"events_per_second": delivered / elapsed, "transfers_per_second": transfers_per_second}


def run(purchases: int) -> dict[str, dict[str, float]]:
    from centli.adapters.sqlite import SqliteStore

    with tempfile.TemporaryDirectory() as tmp:
        sqlite = SqliteStore(Path(tmp) / "saga.db")
        try:
            return {"memory": run_backend(InMemoryStore(), purchases), "sqlite": run_backend(sqlite, purchases)}
        finally:
            sqlite.close()


def markdown(result: dict[str, dict[str, float]], purchases: int) -> str:
    memory = result["memory"]["events_per_second"]
    lines = [
        "## The purchase saga in process",
        "",
        f"`bench/saga.py`: {purchases} purchases committed, then their whole saga delivered by the in-process relay "
        "(4 events each). Ratios within the run.",
        "",
        "| backend | saga events/s × memory's | saga events per createTransfer time (same backend) |",
        "|---|---|---|",
    ]
    for name, figures in result.items():
        lines.append(
            f"| {name} | {figures['events_per_second'] / memory:.2f} | "
            f"{figures['events_per_second'] / figures['transfers_per_second']:.2f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--purchases", type=int, default=200)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    print(markdown(run(args.purchases), args.purchases))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
