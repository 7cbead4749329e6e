"""Capacity model: the hottest key of every DynamoDB table and index at the target rates, from real traffic.

    PYTHONPATH=. .venv/bin/python bench/capacity.py [--customers 120] [--transfers 200] [--purchases 160]
    PYTHONPATH=. .venv/bin/python bench/capacity.py --code-ref f53e7d1   # the same model on older code

A realistic sample workload (customers moving money to their own accounts and
to beneficiaries; purchases from sellers of Zipf-skewed popularity; every saga
step; the relay marking events published; one sweeper run) goes through the
real DynamoDB adapter and domain services, over HTTP to a moto server that
runs one request at a time. botocore event hooks record every request: its
table, partition key, the index keys each write adds or removes, item sizes
and whether it was transactional. No request is counted by hand.

From the recorded requests the model computes the capacity units per second
on the hottest partition key of every table and GSI at the targets (10,000
transfers/s over 1,000,000 customers, plus 1,000 purchases/s to one seller),
against DynamoDB's per-partition limits, and estimates TransactionConflicts
on the hottest item analytically. It prints a table, the assumptions, and,
last, ``worst headroom: X.Xx (key, table/index)``.

How the sample is scaled up. Each request belongs to one operation of the
workload (a transfer, a purchase and its saga, a sweeper run). Units recorded
during transfers are multiplied by (10,000/s / transfers in the sample),
during purchases by (1,000/s / purchases to the hottest seller in the sample),
during the sweeper run by (1 / the sweeper's interval). A key whose value is
the same at any scale (a seller's account, a constant such as ``PENDING``, a
consumer's name) keeps its measured share. Keys drawn from a population whose
size differs between the sample and the targets are grouped into a family,
and the family's rate is divided evenly over its size at the target: a
customer's keys (1,000,000 customers; the busiest assumed 10x the average),
a write shard ``PENDING#<n>`` (the code's shard count), a seller's clearing
accounts (the code's N), a seller's products (its catalog at the target). A
key that lives for one operation (an event, an inbox record) is counted as
if its whole life fell in one second.

``--code-ref REF`` checks out REF in a temporary git worktree and runs this
same model on that code (the negative control: the layout before issue 9).

moto is a functional fake: it proves which requests the adapter sends, not
DynamoDB's latency, throttling or conflicts. Those come from the limits and
formulas below, stated in the output.
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

# targets ---------------------------------------------------------------------------------------
TRANSFERS_PER_S = 10_000
CUSTOMERS = 1_000_000
HOT_SELLER_PURCHASES_PER_S = 1_000
# DynamoDB per-partition limits (no credit taken for adaptive capacity or burst capacity).
WRITE_UNITS_PER_PARTITION = 1_000
READ_UNITS_PER_PARTITION = 3_000
# assumptions -----------------------------------------------------------------------------------
SWEEP_INTERVAL_S = 300  # template.yaml: the sweeper runs every 5 minutes
CUSTOMER_PEAK = 10  # the busiest customer does 10x the average customer's traffic
PRODUCTS_PER_SELLER = 1_000  # the hot seller's catalog at the target; sales spread evenly over it
TXN_P99_MS = 25.0  # how long one TransactWriteItems holds its items, at p99
ZIPF_S = 1.1  # seller popularity: the k-th seller sells in proportion to 1/k**s
KB = 1024

SECRET = b"capacity-model-cursor-secret-0123"
EXCLUDED = frozenset({"setup", "load", "local-relay"})  # not AWS traffic (the stream relay replaces the local one)


# DynamoDB item sizes -----------------------------------------------------------------------------
def value_size(value: dict[str, Any]) -> int:
    """Bytes of one attribute value, as DynamoDB counts them (close enough for S, N, BOOL, M, L)."""
    ((kind, data),) = value.items()
    if kind == "S":
        return len(str(data).encode())
    if kind == "N":
        digits = len(str(data).lstrip("-").replace(".", "").lstrip("0")) or 1
        return (digits + 1) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "B":
        return len(data)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in data.items())
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in data)
    return sum(len(str(e)) for e in data)  # sets


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / KB))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / (4 * KB)))
    return float(units) if consistent else units / 2


# update expressions (what our adapter sends: SET a = :v, SET a = a + :v, REMOVE a, b, ADD a :v) ------------
def _split_top(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _number(value: dict[str, Any] | None) -> int:
    return int(value["N"]) if value and "N" in value else 0


def apply_update(
    item: dict[str, Any], expression: str, names: dict[str, str], values: dict[str, Any]
) -> dict[str, Any]:
    new = dict(item)

    def name(token: str) -> str:
        return names.get(token.strip(), token.strip())

    def operand(token: str) -> dict[str, Any] | None:
        token = token.strip()
        return values.get(token) if token.startswith(":") else new.get(name(token))

    clauses = re.findall(
        r"\b(SET|REMOVE|ADD|DELETE)\s+(.*?)(?=\s+\b(?:SET|REMOVE|ADD|DELETE)\s|$)", expression, re.S | re.I
    )
    for clause, body in clauses:
        for part in _split_top(body):
            verb = clause.upper()
            if verb == "SET":
                left, right = part.split("=", 1)
                terms = re.split(r"\s*([+-])\s*", right.strip())
                if len(terms) == 3:
                    total = _number(operand(terms[0])) + (1 if terms[1] == "+" else -1) * _number(operand(terms[2]))
                    new[name(left)] = {"N": str(total)}
                else:
                    found = operand(right) or next((values[t] for t in re.findall(r":\w+", right)), None)
                    if found is not None:
                        new[name(left)] = found
            elif verb == "REMOVE":
                new.pop(name(part), None)
            elif verb == "ADD":
                target, placeholder = part.split()
                new[name(target)] = {"N": str(_number(new.get(name(target))) + _number(values[placeholder]))}
    return new


# the recorder ------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Touch:
    label: str
    request: int  # one request (one TransactWriteItems is one request)
    where: str  # "table" or "table/index"
    partition: str
    item: str  # the full key, for items
    kind: str  # "W" or "R"
    units: float
    transactional: bool


@dataclass
class Recorder:
    """Records every DynamoDB request a client makes (botocore ``provide-client-params`` and ``after-call``)."""

    tables: dict[str, Any]  # table name -> TableDef of the code under test
    label: str = "setup"
    touches: list[Touch] = field(default_factory=list)
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)  # (label, operation)
    shadow: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    sizes: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # table -> written item sizes
    cancelled: Counter[str] = field(default_factory=Counter)  # label -> refused transactions
    _request: int = 0

    def attach(self, client: Any) -> None:
        client.meta.events.register("provide-client-params.dynamodb.*", self._keep_params)
        client.meta.events.register("after-call.dynamodb.*", self._record)

    @contextmanager
    def phase(self, label: str) -> Iterator[None]:
        before, self.label = self.label, label
        try:
            yield
        finally:
            self.label = before

    def _keep_params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["capacity_params"] = copy.deepcopy(params)

    def _record(
        self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        params = context.get("capacity_params", {})
        operation = model.name
        if "Error" in parsed or getattr(http_response, "status_code", 200) >= 300:
            if operation == "TransactWriteItems" and self.label not in EXCLUDED:
                self.cancelled[self.label] += 1
            return  # a refused request writes nothing (its capacity is not modelled: see the assumptions)
        self._request += 1
        self.requests[(self.label, operation)] += 1
        if operation == "GetItem":
            item = parsed.get("Item") or params["Key"]
            self._read(params["TableName"], None, params["Key"], item_size(item), params.get("ConsistentRead", False))
        elif operation == "Query":
            size = sum(item_size(i) for i in parsed.get("Items", []))
            self._query(params, size)
        elif operation == "Scan":
            size = sum(item_size(i) for i in parsed.get("Items", []))
            where = self._where(params["TableName"], params.get("IndexName"))
            self._touch(where, "*scan*", "*", "R", read_units(size, params.get("ConsistentRead", False)), False)
        elif operation in ("PutItem", "UpdateItem", "DeleteItem"):
            self._write(operation.removesuffix("Item"), params, transactional=False)
        elif operation == "TransactWriteItems":
            for entry in params["TransactItems"]:
                ((verb, body),) = entry.items()
                self._write(verb, body, transactional=True)
        elif operation == "BatchWriteItem":
            for table, writes in params["RequestItems"].items():
                for write in writes:
                    if "PutRequest" in write:
                        self._write("Put", {"TableName": table, "Item": write["PutRequest"]["Item"]}, False)

    # reads
    def _read(self, table: str, index: str | None, key: dict[str, Any], size: int, consistent: bool) -> None:
        tdef = self.tables[table]
        self._touch(
            self._where(table, index),
            _text(key[tdef.partition_key]),
            _key_text(key),
            "R",
            read_units(size, consistent),
            False,
        )

    def _query(self, params: dict[str, Any], size: int) -> None:
        table, index = params["TableName"], params.get("IndexName")
        tdef = self.tables[table]
        pk = next((i.partition_key for i in tdef.indexes if i.name == index), None) if index else tdef.partition_key
        names = params.get("ExpressionAttributeNames", {})
        condition = params["KeyConditionExpression"]
        for placeholder, real in names.items():
            condition = condition.replace(placeholder, real)
        match = re.search(rf"\b{re.escape(str(pk))}\s*=\s*(:\w+)", condition)
        value = _text(params["ExpressionAttributeValues"][match.group(1)]) if match else "?"
        units = read_units(size, params.get("ConsistentRead", False))
        self._touch(self._where(table, index), value, value, "R", units, False)

    # writes, and what they do to every index
    def _write(self, verb: str, body: dict[str, Any], transactional: bool) -> None:
        table = body["TableName"]
        tdef = self.tables[table]
        key_names = [n for n in (tdef.partition_key, tdef.sort_key) if n]
        key = {n: body["Item"][n] for n in key_names} if verb == "Put" else body["Key"]
        slot = (table, _key_text(key))
        before = self.shadow.get(slot)
        if verb == "Put":
            after: dict[str, Any] | None = body["Item"]
        elif verb == "Update":
            after = apply_update(
                before or dict(key),
                body["UpdateExpression"],
                body.get("ExpressionAttributeNames", {}),
                body.get("ExpressionAttributeValues", {}),
            )
        elif verb == "Delete":
            after = None
        else:  # ConditionCheck: counted as a transactional write of the item (conservative)
            after = before
        size = item_size(after or before or key)
        if self.label not in EXCLUDED:
            self.sizes[table_where(table, self.tables)].append(size)
        units = write_units(size) * (2 if transactional else 1)
        self._touch(table_where(table, self.tables), _text(key[tdef.partition_key]), slot[1], "W", units, transactional)
        if verb == "ConditionCheck":
            return
        for index in tdef.indexes:
            old, new = _index_key(before, index), _index_key(after, index)
            projected_old = _projected(before, index, key_names) if old else 0
            projected_new = _projected(after, index, key_names) if new else 0
            where = self._where(table, index.name)
            if old and new and old == new:
                if getattr(index, "projection", "ALL") == "ALL" and before != after:
                    self._touch(where, new[0], slot[1], "W", write_units(projected_new), False)
                continue
            if old:
                self._touch(where, old[0], slot[1], "W", write_units(projected_old), False)
            if new:
                self._touch(where, new[0], slot[1], "W", write_units(projected_new), False)
        if after is None:
            self.shadow.pop(slot, None)
        else:
            self.shadow[slot] = after

    def _where(self, table: str, index: str | None) -> str:
        where = table_where(table, self.tables)
        return f"{where}/{index}" if index else where

    def _touch(self, where: str, partition: str, item: str, kind: str, units: float, transactional: bool) -> None:
        self.touches.append(Touch(self.label, self._request, where, partition, item, kind, units, transactional))


def table_where(table: str, tables: dict[str, Any]) -> str:
    return str(tables[table].field)


def _text(value: dict[str, Any]) -> str:
    ((_, data),) = value.items()
    return str(data)


def _key_text(key: dict[str, Any]) -> str:
    return "|".join(f"{k}={_text(key[k])}" for k in sorted(key))


def _index_key(item: dict[str, Any] | None, index: Any) -> tuple[str, str] | None:
    if item is None or index.partition_key not in item or (index.sort_key and index.sort_key not in item):
        return None
    return _text(item[index.partition_key]), _text(item[index.sort_key]) if index.sort_key else ""


def _projected(item: dict[str, Any] | None, index: Any, key_names: list[str]) -> int:
    if item is None:
        return 0
    if getattr(index, "projection", "ALL") == "KEYS_ONLY":
        keep = {*key_names, index.partition_key, *([index.sort_key] if index.sort_key else [])}
        return item_size({k: v for k, v in item.items() if k in keep})
    return item_size(item)


# the fake ----------------------------------------------------------------------------------------------
def skip_table_backups() -> None:
    """Make moto's TransactWriteItems O(items), not O(tables), keeping its all-or-nothing rollback.

    moto (in this process) deep-copies every table a transaction touches, once
    per item, to roll back a cancelled transaction: with a few thousand items
    that is seconds per request. Here the backup is of the items the
    transaction names instead, restored when moto cancels it; what is stored
    afterwards is the same, only faster to get.
    """
    import moto.dynamodb.models as moto_models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    class _NoTableCopies:
        @staticmethod
        def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    moto_models.copy = _NoTableCopies  # type: ignore[assignment]
    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = []
        for entry in transact_items:
            op = next(iter(entry.values()))
            table = self.get_table(op["TableName"])
            key = op.get("Key") or op["Item"]
            hash_key = DynamoType(key[table.hash_key_attr])
            range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            saved.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_key, range_key, old in reversed(saved):
                table.delete_item(hash_key, range_key)
                if old is not None:
                    if range_key is None:
                        table.items[hash_key] = old
                    else:
                        table.items[hash_key][range_key] = old
            raise

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


# the workload ------------------------------------------------------------------------------------------
@dataclass
class Sample:
    recorder: Recorder
    customers: set[str]
    sellers: list[str]  # seller user ids, most popular first
    products: dict[str, str]  # product id -> seller user id
    transfers: int
    purchases: Counter[str]  # seller user id -> purchases
    sweeps: int
    clearing_accounts: int | None  # N, or None when the code has no merchant settlement
    shards: dict[str, int]  # "outbox"/"orders" -> write shards of their pending index (1: not sharded)
    code: str


def bank_document(rng: random.Random, customers: int, sellers: int, products: int) -> dict[str, Any]:
    users = [f"c{i:05d}" for i in range(customers)]
    shops = [f"seller{k:02d}" for k in range(sellers)]
    document: dict[str, Any] = {
        "users": [{"user_id": u} for u in users + shops],
        "accounts": [
            {"user_id": u, "account_id": f"acc-{u}-{s}", "opening_balance": "1000000.00"} for u in users for s in "ab"
        ]
        + [{"user_id": s, "account_id": f"acc-{s}", "opening_balance": "0.00"} for s in shops],
        "beneficiaries": [
            {"user_id": u, "beneficiary_id": f"ben-{u}", "account_id": f"acc-{users[rng.randrange(customers)]}-a"}
            for u in users
        ],
        "products": [
            {
                "product_id": f"p-{s}-{j:03d}",
                "name": f"producto {j}",
                "category": "general",
                "price": "10.00",
                "stock": 1_000_000,
                "seller_account_id": f"acc-{s}",
            }
            for s in shops
            for j in range(products)
        ],
    }
    # A beneficiary never points at the customer's own account.
    for ben in document["beneficiaries"]:
        if ben["account_id"].startswith(f"acc-{ben['user_id']}-"):
            ben["account_id"] = f"acc-{users[(users.index(ben['user_id']) + 1) % customers]}-a"
    return document


class LabelledOutbox:
    """The store as the local relay's OutboxReader: its reads are the local relay's, not AWS traffic."""

    def __init__(self, store: Any, recorder: Recorder) -> None:
        self._store = store
        self._recorder = recorder

    def pending(self, limit: int) -> Any:
        with self._recorder.phase("local-relay"):
            return self._store.pending(limit)

    def mark_published(self, event_ids: Sequence[str]) -> None:
        self._store.mark_published(event_ids)  # the stream relay does this on AWS too


def run_sample(args: argparse.Namespace) -> Sample:
    from centli.adapters.dynamodb import DynamoStore, TableNames, schema
    from centli.adapters.memory import ManualClock, SequentialIds
    from centli.domain.application import bootstrap
    from centli.domain.banking import CreateTransfer
    from centli.domain.loading import parse_bank_document
    from centli.domain.marketplace import CreatePurchase
    from centli.domain.messagebus import OverdueOutbox
    from centli.domain.policy import BankPolicy
    from tests.integration.moto_server import moto_endpoint

    try:
        from centli.domain.settlement import CLEARING_ACCOUNTS

        clearing: int | None = CLEARING_ACCOUNTS
    except ImportError:
        clearing = None
    shards = {
        "outbox": int(getattr(schema, "OUTBOX_PENDING_SHARDS", 1)),
        "orders": int(getattr(schema, "ORDER_PENDING_SHARDS", 1)),
    }
    import centli

    rng = random.Random(args.seed)  # noqa: S311 - a reproducible workload, not secrecy
    import boto3
    from botocore.config import Config

    endpoint = moto_endpoint()
    skip_table_backups()
    slow = Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=600, connect_timeout=10)
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", config=slow)
    names = TableNames().with_prefix(f"cap{os.getpid()}-")
    schema.create_tables(client, names, wait=False)
    try:
        recorder = Recorder({getattr(names, t.field): t for t in schema.TABLES})
        recorder.attach(client)
        store = DynamoStore(client, names)
        clock = ManualClock()
        app = bootstrap(
            store.unit_of_work, clock, SequentialIds(), BankPolicy(), SECRET, LabelledOutbox(store, recorder)
        )
        document = bank_document(rng, args.customers, args.sellers, args.products)
        with recorder.phase("load"):
            store.load(parse_bank_document(document, clock.now()))
        customers = [u["user_id"] for u in document["users"] if u["user_id"].startswith("c")]
        sellers = [f"seller{k:02d}" for k in range(args.sellers)]
        weights = [1 / (k + 1) ** ZIPF_S for k in range(args.sellers)]
        plan = ["transfer"] * args.transfers + ["purchase"] * args.purchases
        rng.shuffle(plan)
        five_parameters = "destination_id" in getattr(CreateTransfer, "__dataclass_fields__", {})
        purchases: Counter[str] = Counter()
        for n, step in enumerate(plan):
            if n % 50 == 0:
                print(f"  ... {n}/{len(plan)} operations", file=sys.stderr, flush=True)
            clock.advance(timedelta(milliseconds=10))
            user = rng.choice(customers)
            with recorder.phase(step):
                if step == "transfer":
                    own = rng.random() < 0.5
                    target = f"acc-{user}-b" if own else f"ben-{user}"
                    if five_parameters:
                        cmd = CreateTransfer.parse(
                            user_id=user, from_account_id=f"acc-{user}-a", destination_id=target, amount="1.00",
                            idempotency_key=f"t-{n}",
                        )  # fmt: skip
                    elif own:
                        cmd = CreateTransfer.parse(user, f"acc-{user}-a", "1.00", f"t-{n}", to_account_id=target)
                    else:
                        cmd = CreateTransfer.parse(user, f"acc-{user}-a", "1.00", f"t-{n}", beneficiary_id=target)
                    app.banking.create_transfer(cmd)
                else:
                    seller = rng.choices(sellers, weights)[0]
                    product = f"p-{seller}-{rng.randrange(args.products):03d}"
                    app.marketplace.create_purchase(CreatePurchase.parse(user, product, 1, f"acc-{user}-a", f"p-{n}"))
                    purchases[seller] += 1
                app.settle()  # the saga steps (on AWS: EventBridge -> the saga Lambda), and mark-published
        clock.advance(timedelta(minutes=1))
        with recorder.phase("sweep"):  # one scheduled sweeper run, as on AWS
            app.sweep()
            OverdueOutbox(store, clock, timedelta(minutes=5)).pending(200)
        return Sample(
            recorder=recorder,
            customers=set(customers),
            sellers=sellers,
            products={p["product_id"]: p["product_id"].split("-")[1] for p in document["products"]},
            transfers=args.transfers,
            purchases=purchases,
            sweeps=1,
            clearing_accounts=clearing,
            shards=shards,
            code=os.path.dirname(os.path.dirname(os.path.abspath(centli.__file__))),
        )
    finally:
        schema.delete_tables(client, names)


# the model ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Family:
    """How one recorded key maps to the hottest key of its kind at the targets."""

    name: str  # what the table shows
    population: float  # keys the family's traffic spreads over at the target (1: the key itself)
    unique: bool = False  # lives for one operation: its whole life counted within one second


def classify(partition: str, where: str, sample: Sample) -> Family:
    table = where.split("/", maxsplit=1)[0]
    if "~clr" in partition:
        seller = partition.split("~clr", maxsplit=1)[0]
        return Family(f"{seller}~clrNN (1 of {sample.clearing_accounts})", float(sample.clearing_accounts or 1))
    if re.fullmatch(r"PENDING#\d+", partition):
        shards = sample.shards.get(table, 1)
        return Family(f"PENDING#<shard> (1 of {shards})", float(shards))
    if partition.split("#", maxsplit=1)[0] in sample.customers:
        return Family(f"a customer's key (busiest, {CUSTOMER_PEAK}x average)", CUSTOMERS / CUSTOMER_PEAK)
    if partition in sample.products:
        seller = sample.products[partition]
        return Family(f"a product of {seller} (1 of {PRODUCTS_PER_SELLER})", float(PRODUCTS_PER_SELLER))
    if re.fullmatch(r"(evt|ord|trf)-\d+", partition):
        return Family("one event/order id (its whole life in 1 s)", 1.0, unique=True)
    return Family(partition, 1.0)


@dataclass
class Row:
    where: str
    key: str
    write: float = 0.0
    read: float = 0.0

    @property
    def headroom(self) -> float:
        used = max(self.write / WRITE_UNITS_PER_PARTITION, self.read / READ_UNITS_PER_PARTITION)
        return math.inf if used == 0 else 1 / used


def scales(sample: Sample) -> dict[str, float]:
    hot = sample.purchases.most_common(1)[0][1] if sample.purchases else 1
    return {
        "transfer": TRANSFERS_PER_S / sample.transfers,
        "purchase": HOT_SELLER_PURCHASES_PER_S / hot,
        "sweep": 1 / (SWEEP_INTERVAL_S * sample.sweeps),
    }


def hottest_keys(sample: Sample) -> tuple[dict[str, Row], list[Row]]:
    """The hottest key of every table and index, and the Scans (spread over every partition)."""
    scale = scales(sample)
    families: dict[tuple[str, str, str], float] = defaultdict(float)  # (where, family, kind) -> units/s
    populations: dict[tuple[str, str], Family] = {}
    unique: dict[tuple[str, str, str], float] = defaultdict(float)  # (where, key, kind) -> units in its life
    scans: dict[str, Row] = {}
    for touch in sample.recorder.touches:
        if touch.label in EXCLUDED:
            continue
        if touch.partition == "*scan*":
            row = scans.setdefault(touch.where, Row(touch.where, "Scan (every partition)"))
            row.read += touch.units * scale[touch.label]
            continue
        family = classify(touch.partition, touch.where, sample)
        if family.unique:
            unique[(touch.where, touch.partition, touch.kind)] += touch.units
            populations[(touch.where, family.name)] = family
            continue
        families[(touch.where, family.name, touch.kind)] += touch.units * scale[touch.label]
        populations[(touch.where, family.name)] = family
    per_key: dict[tuple[str, str], Row] = {}
    for (where, name, kind), rate in families.items():
        row = per_key.setdefault((where, name), Row(where, name))
        share = rate / populations[(where, name)].population
        row.write, row.read = (row.write + share, row.read) if kind == "W" else (row.write, row.read + share)
    for (where, _key, kind), units in unique.items():
        name = classify(_key, where, sample).name
        row = per_key.setdefault((where, name), Row(where, name))
        if kind == "W":
            row.write = max(row.write, units)
        else:
            row.read = max(row.read, units)
    hottest: dict[str, Row] = {}
    for row in per_key.values():
        if row.where not in hottest or row.headroom < hottest[row.where].headroom:
            hottest[row.where] = row
    return hottest, list(scans.values())


#: Tables whose items outlive one operation (the rest: events, orders, transfers, inbox and idempotency
#: records are written by the operation that owns them, and ledger entries once).
SHARED_ITEM_TABLES = frozenset({"accounts", "transactions", "products", "daily_limits", "beneficiaries"})


def contention(sample: Sample) -> tuple[str, float]:
    """The item written by the most requests per second at the targets.

    Only items that outlive an operation can see concurrent transactions: an
    account, a ledger head, a product, a daily total. A family's requests are
    spread evenly over its keys, as in the capacity table.
    """
    scale = scales(sample)
    requests: dict[tuple[str, str, str], set[tuple[str, int]]] = defaultdict(set)
    for touch in sample.recorder.touches:
        if touch.label in EXCLUDED or touch.kind != "W" or touch.where not in SHARED_ITEM_TABLES:
            continue
        if re.search(r"(evt|ord|trf|open)-", touch.item):
            continue  # a ledger entry: written once
        requests[(touch.where, touch.partition, touch.item)].add((touch.label, touch.request))
    rates: dict[tuple[str, str], float] = defaultdict(float)
    for (where, partition, _item), seen in requests.items():
        family = classify(partition, where, sample)
        rates[(where, family.name)] += sum(scale[label] for label, _ in seen) / family.population
    (where, name), rate = max(rates.items(), key=lambda kv: kv[1])
    return f"{name}, {where}", rate


def retries(rate: float) -> tuple[float, int]:
    """Expected retries per transaction, and the retries the p99 transaction needs.

    Conflicting transactions arrive as a Poisson process at ``rate`` per second;
    each holds the item for TXN_P99_MS. A transaction conflicts when another one
    holds the item as it arrives: p = 1 - exp(-rate * d). Retries are geometric,
    so the expected number is p / (1 - p) = exp(rate * d) - 1, and the p99 one
    needs the least k with p**(k + 1) <= 1%.
    """
    load = rate * TXN_P99_MS / 1000
    p = 1 - math.exp(-load)
    expected = math.expm1(load)
    p99 = 0 if p <= 0.01 else (math.ceil(math.log(0.01) / math.log(p)) - 1 if p < 1 else 10**9)
    return expected, p99


def report(sample: Sample) -> float:
    hottest, scans = hottest_keys(sample)
    scale = scales(sample)
    hot_seller, hot_count = sample.purchases.most_common(1)[0]
    total_purchases = HOT_SELLER_PURCHASES_PER_S * sum(sample.purchases.values()) / hot_count
    print(f"code under test: {sample.code}")
    print(
        f"sample: {len(sample.customers)} customers, {sample.transfers} transfers, {sum(sample.purchases.values())} "
        f"purchases ({hot_count} to the hottest seller, {hot_seller}), {sample.sweeps} sweeper run; "
        f"{len(sample.recorder.touches)} item touches from {sum(sample.recorder.requests.values())} requests"
    )
    print(
        f"targets: {TRANSFERS_PER_S:,} transfers/s over {CUSTOMERS:,} customers; {HOT_SELLER_PURCHASES_PER_S:,} "
        f"purchases/s to {hot_seller} ({total_purchases:,.0f}/s in all at this Zipf s={ZIPF_S} mix)"
    )
    print(
        f"scale: transfer x{scale['transfer']:.1f}, purchase x{scale['purchase']:.1f}, sweeper run every "
        f"{SWEEP_INTERVAL_S} s; clearing accounts per seller: {sample.clearing_accounts or 'none'}; "
        f"pending-index shards: outbox {sample.shards['outbox']}, orders {sample.shards['orders']}"
    )
    print()
    print("requests per operation in the sample (AWS traffic only):")
    by_label: dict[str, Counter[str]] = defaultdict(Counter)
    for (label, operation), count in sample.recorder.requests.items():
        if label not in EXCLUDED:
            by_label[label][operation] += count
    counts = {"transfer": sample.transfers, "purchase": sum(sample.purchases.values()), "sweep": sample.sweeps}
    for label, ops in sorted(by_label.items()):
        each = ", ".join(f"{op} {n / counts[label]:.2f}" for op, n in sorted(ops.items()))
        print(f"  {label:<9} {each}")
    for label, n in sorted(sample.recorder.cancelled.items()):
        refused = f"refused TransactWriteItems {n / counts[label]:.2f}"
        print(f"  {label:<9} {refused} (not counted below; they touch the customer's own keys)")
    print()
    header = (
        f"{'table/index':<42} {'hottest partition key at the targets':<52} {'WCU/s':>9} {'RCU/s':>9} {'headroom':>9}"
    )
    print(header)
    print("-" * len(header))
    for where in sorted(hottest):
        row = hottest[where]
        print(f"{where:<42} {row.key[:52]:<52} {row.write:>9.1f} {row.read:>9.1f} {_x(row.headroom):>9}")
    for row in scans:
        print(f"{row.where:<42} {row.key:<52} {'-':>9} {row.read:>9.2f} {'spread':>9}")
    print()
    item, rate = contention(sample)
    expected, p99 = retries(rate)
    load = rate * TXN_P99_MS / 1000
    print(
        f"contention, hottest item: {item}: {rate:,.1f} writes/s x {TXN_P99_MS:.0f} ms held (p99) = {load:.3f} "
        f"concurrent, P(conflict) {100 * -math.expm1(-load):.1f}%"
    )
    print(
        f"  expected TransactionConflict retries per transaction: {_retries(expected)} (goal: <= 1); "
        f"the 99th-percentile transaction retries {p99 if p99 < 10**6 else 'without end'} time(s) "
        f"(the adapter retries up to 3 times, then answers 409)"
    )
    print()
    print("assumptions:")
    print(
        f"  per partition: {WRITE_UNITS_PER_PARTITION:,} WCU/s and {READ_UNITS_PER_PARTITION:,} RCU/s; no credit for "
        "adaptive capacity, burst capacity or split-for-heat"
    )
    print(
        "  a write: 1 WCU per KB (rounded up), 2 in a transaction (ConditionCheck counted as a transactional "
        "write); a GSI write: 1 WCU per KB of the projected item (not doubled), a key change = delete + put"
    )
    print("  a read: 1 RCU per 4 KB consistent, half eventually consistent (every GSI read)")
    sizes = ", ".join(f"{table} {sum(v) // len(v)} B" for table, v in sorted(sample.recorder.sizes.items()) if v)
    print(f"  item sizes, measured from the requests (mean written): {sizes}")
    print(
        f"  the busiest customer {CUSTOMER_PEAK}x the average; the hot seller's sales spread over "
        f"{PRODUCTS_PER_SELLER:,} products; the sweeper every {SWEEP_INTERVAL_S} s; a transaction holds its "
        f"items {TXN_P99_MS:.0f} ms (p99); moto measured none of DynamoDB's latency, throttling or conflicts"
    )
    print()
    worst = min(hottest.values(), key=lambda r: r.headroom)
    print(f"worst headroom: {_x(worst.headroom)} ({worst.key}, {worst.where})")
    return worst.headroom


def _x(headroom: float) -> str:
    if math.isinf(headroom):
        return "inf"
    return f"{headroom:.2f}x" if headroom < 0.1 else f"{headroom:.1f}x"


def _retries(expected: float) -> str:
    return f"{expected:.2f}" if expected < 1000 else ">1000"


def run_at(ref: str, argv: list[str]) -> int:
    """This same model on the code at git ``ref``, from a temporary worktree."""
    git = shutil.which("git") or "git"
    root = subprocess.run([git, "rev-parse", "--show-toplevel"], check=True, capture_output=True, text=True)  # noqa: S603
    workdir = tempfile.mkdtemp(prefix="centli-capacity-")
    tree = os.path.join(workdir, "tree")
    top = root.stdout.strip()
    try:
        add = [git, "-C", top, "worktree", "add", "--detach", tree, ref]
        subprocess.run(add, check=True, capture_output=True)  # noqa: S603 - our own arguments
        env = {**os.environ, "PYTHONPATH": tree}
        model = [sys.executable, os.path.abspath(__file__), *argv]
        return subprocess.run(model, env=env, cwd=tree, check=False).returncode  # noqa: S603
    finally:
        remove = [git, "-C", top, "worktree", "remove", "--force", tree]
        subprocess.run(remove, check=False, capture_output=True)  # noqa: S603
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=120)
    parser.add_argument("--sellers", type=int, default=4)
    parser.add_argument("--products", type=int, default=10, help="products per seller in the sample")
    parser.add_argument("--transfers", type=int, default=200)
    parser.add_argument("--purchases", type=int, default=160)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--code-ref", help="run the model on the code at this git ref (e.g. the layout before)")
    args = parser.parse_args(argv)
    if args.code_ref:
        passthrough = [a for a in (argv if argv is not None else sys.argv[1:]) if not a.startswith("--code-ref")]
        passthrough = [a for a in passthrough if a != args.code_ref]
        return run_at(args.code_ref, passthrough)
    logging.disable(logging.WARNING)
    report(run_sample(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
