"""Every DynamoDB table, index, stream and TTL, defined once.

``centli tables create`` and the tests create tables from these definitions,
and ``tests/integration/test_template.py`` checks that ``template.yaml``
declares exactly the same ones.

Table names come from the settings (``CENTLI_TABLE_<FIELD>``, see
``Settings.table_names``); the defaults are the template's names. Keys are (partition key / sort key):

- ``CENTLI_TABLE_ACCOUNTS`` (``centli-accounts``): accounts (user_id / account_id) with their balance.
- ``CENTLI_TABLE_TRANSACTIONS`` (``centli-transactions``): ledger entries and each account's head item
  (account_key / entry_key); GSI ``user_id-timestamp-index`` (the seed's; KEYS_ONLY, customers' entries only).
- ``CENTLI_TABLE_TRANSFERS`` (``centli-transfers``): transfers (user_id / transfer_id).
- ``CENTLI_TABLE_BENEFICIARIES`` (``centli-beneficiaries``): saved beneficiaries (user_id / beneficiary_id).
- ``CENTLI_TABLE_PRODUCTS`` (``centli-products``): the catalog (product_id).
- ``CENTLI_TABLE_ORDERS`` (``centli-orders``): orders (user_id / order_id); sparse GSI
  ``pending-created-index`` (pending orders only, ``pending = PENDING#<shard>`` / ``created_key`` = the
  order's sweep time) that the sweeper queries shard by shard.
- ``CENTLI_TABLE_IDEMPOTENCY`` (``centli-idempotency``): idempotency records (user_id / idempotency_key), TTL.
- ``CENTLI_TABLE_OUTBOX`` (``centli-outbox``): outbox events (event_id), NEW_IMAGE stream, TTL; sparse GSI
  ``pending-index`` (unpublished events only, ``pending = PENDING#<shard>``) that the sweeper's overdue
  check (and a local relay) scans; the stream relay does not need it.
- ``CENTLI_TABLE_DAILY_LIMITS`` (``centli-daily-limits``): daily totals (user_id / day#currency), TTL.
- ``CENTLI_TABLE_PROCESSED`` (``centli-processed-events``): the consumers' inbox (event_id / consumer).

Every table is on-demand, with point-in-time recovery in the template.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

TRANSACTIONS_BY_USER_INDEX = "user_id-timestamp-index"
PENDING_ORDERS_INDEX = "pending-created-index"
PENDING_OUTBOX_INDEX = "pending-index"
TTL_ATTRIBUTE = "ttl"


@dataclass(frozen=True, slots=True)
class TableNames:
    accounts: str = "centli-accounts"
    transactions: str = "centli-transactions"
    transfers: str = "centli-transfers"
    beneficiaries: str = "centli-beneficiaries"
    products: str = "centli-products"
    orders: str = "centli-orders"
    idempotency: str = "centli-idempotency"
    outbox: str = "centli-outbox"
    daily_limits: str = "centli-daily-limits"
    processed: str = "centli-processed-events"

    def with_prefix(self, prefix: str) -> TableNames:
        """The same tables under ``prefix`` (isolated test runs)."""
        return replace(self, **{f.name: prefix + getattr(self, f.name) for f in fields(self)})

    def items(self) -> list[tuple[str, str]]:
        """(field, table name) pairs in declaration order."""
        return [(f.name, getattr(self, f.name)) for f in fields(self)]


#: Write shards of the sparse pending indexes: their partition key is ``PENDING#<shard>``, the shard a
#: stable hash of the item's id, so no one index key takes every write (docs/architecture.md, "How it scales").
OUTBOX_PENDING_SHARDS = 128
ORDER_PENDING_SHARDS = 32


@dataclass(frozen=True, slots=True)
class Index:
    name: str
    partition_key: str
    sort_key: str | None
    projection: str = "ALL"


@dataclass(frozen=True, slots=True)
class TableDef:
    """One table: ``field`` is its name in :class:`TableNames`; every key attribute is a string."""

    field: str
    partition_key: str
    sort_key: str | None = None
    indexes: tuple[Index, ...] = ()
    stream: str | None = None
    ttl: bool = False

    def key_schema(self, partition: str, sort: str | None) -> list[dict[str, str]]:
        schema = [{"AttributeName": partition, "KeyType": "HASH"}]
        if sort is not None:
            schema.append({"AttributeName": sort, "KeyType": "RANGE"})
        return schema

    def attribute_definitions(self) -> list[dict[str, str]]:
        names: list[str] = []
        for name in (
            self.partition_key,
            self.sort_key,
            *(a for i in self.indexes for a in (i.partition_key, i.sort_key)),
        ):
            if name is not None and name not in names:
                names.append(name)
        return [{"AttributeName": n, "AttributeType": "S"} for n in names]

    def properties(self, table_name: str) -> dict[str, Any]:
        """The CloudFormation ``AWS::DynamoDB::Table`` properties (also CreateTable's arguments)."""
        props: dict[str, Any] = {
            "TableName": table_name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": self.attribute_definitions(),
            "KeySchema": self.key_schema(self.partition_key, self.sort_key),
        }
        if self.indexes:
            props["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": i.name,
                    "KeySchema": self.key_schema(i.partition_key, i.sort_key),
                    "Projection": {"ProjectionType": i.projection},
                }
                for i in self.indexes
            ]
        if self.stream is not None:
            props["StreamSpecification"] = {"StreamViewType": self.stream}
        if self.ttl:
            props["TimeToLiveSpecification"] = {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
        props["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": True}
        return props

    def create_table_request(self, table_name: str) -> dict[str, Any]:
        """CreateTable's arguments (TTL is set afterwards with UpdateTimeToLive; PITR is a deployment setting)."""
        request = self.properties(table_name)
        request.pop("TimeToLiveSpecification", None)
        request.pop("PointInTimeRecoverySpecification")
        if self.stream is not None:
            request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": self.stream}
        return request


TABLES: tuple[TableDef, ...] = (
    TableDef("accounts", "user_id", "account_id"),
    TableDef(
        "transactions",
        "account_key",
        "entry_key",
        # The seed's index, never queried: KEYS_ONLY, and clearing accounts' entries stay out of it.
        indexes=(Index(TRANSACTIONS_BY_USER_INDEX, "user_id", "timestamp", "KEYS_ONLY"),),
    ),
    TableDef("transfers", "user_id", "transfer_id"),
    TableDef("beneficiaries", "user_id", "beneficiary_id"),
    TableDef("products", "product_id"),
    TableDef("orders", "user_id", "order_id", indexes=(Index(PENDING_ORDERS_INDEX, "pending", "created_key"),)),
    TableDef("idempotency", "user_id", "idempotency_key", ttl=True),
    TableDef(
        "outbox",
        "event_id",
        indexes=(Index(PENDING_OUTBOX_INDEX, "pending", "pending_key"),),
        stream="NEW_IMAGE",
        ttl=True,
    ),
    TableDef("daily_limits", "user_id", "day_currency", ttl=True),
    # The event id leads: a consumer's name as partition key would take every event of that consumer.
    TableDef("processed", "event_id", "consumer"),
)

#: The template's logical resource id of each table.
LOGICAL_IDS: dict[str, str] = {
    "accounts": "AccountsTable",
    "transactions": "TransactionsTable",
    "transfers": "TransfersTable",
    "beneficiaries": "BeneficiariesTable",
    "products": "ProductsTable",
    "orders": "OrdersTable",
    "idempotency": "IdempotencyTable",
    "outbox": "OutboxTable",
    "daily_limits": "DailyLimitsTable",
    "processed": "ProcessedEventsTable",
}


def create_tables(client: Any, names: TableNames, *, wait: bool = True) -> list[str]:
    """Create every missing table (with its indexes, stream and TTL); returns the names created."""
    created: list[str] = []
    for table in TABLES:
        name = getattr(names, table.field)
        try:
            client.create_table(**table.create_table_request(name))
        except client.exceptions.ResourceInUseException:
            continue
        created.append(name)
    for table in TABLES:
        name = getattr(names, table.field)
        if name not in created:
            continue
        if wait:
            client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        if table.ttl:
            client.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
            )
    return created


def delete_tables(client: Any, names: TableNames) -> None:
    for table in TABLES:
        try:
            client.delete_table(TableName=getattr(names, table.field))
        except client.exceptions.ResourceNotFoundException:
            continue
