"""DynamoDB over HTTP on the shared moto server: fresh tables (a unique prefix) per backend."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from centli.adapters.dynamodb import DynamoStore, TableNames, make_dynamodb_client
from centli.adapters.dynamodb.schema import create_tables, delete_tables
from centli.adapters.memory import ManualClock
from centli.adapters.resilience import CircuitBreaker
from centli.ports.faults import FaultPoints
from tests.backends import Backend
from tests.integration.moto_server import moto_endpoint

_counter = itertools.count(1)


def fresh_tables() -> TableNames:
    return TableNames().with_prefix(f"t{os.getpid()}-{next(_counter)}-")


@contextmanager
def open_store(
    faults: FaultPoints | None = None,
    wrap: Callable[[Any], Any] | None = None,
    breaker: CircuitBreaker | None = None,
    clock: ManualClock | None = None,
) -> Iterator[DynamoStore]:
    """A store on fresh tables; ``wrap`` may put a fault-injecting wrapper around its client."""
    client = make_dynamodb_client(moto_endpoint())
    tables = fresh_tables()
    create_tables(client, tables, wait=False)
    try:
        yield DynamoStore(client if wrap is None else wrap(client), tables, faults=faults, breaker=breaker, clock=clock)
    finally:
        delete_tables(client, tables)


@contextmanager
def open_backend(workdir: Path) -> Iterator[Backend]:
    clock = ManualClock()
    with open_store(clock=clock) as store:
        yield Backend(
            "dynamodb", store.unit_of_work, store.load, store, clock, {"store": store, "client": store.client}
        )
