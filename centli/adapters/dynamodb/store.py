"""The DynamoDB store: one ``TransactWriteItems`` per command, one request per read; the operators' reads.

The package: :mod:`.codecs` (items and keys), :mod:`.runner` (requests, the breaker, the transaction and
its cancellation), :mod:`.ledger` (heads, postings, history), :mod:`.repositories`, :mod:`.loader`.
Reads are consistent GetItem or Query on base tables; product search is the only Scan. The sweeper's
pending orders and the local relay's pending events use sparse GSIs (eventually consistent, tolerated).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from centli.adapters.buffered import BufferedUnitOfWork, Repositories
from centli.adapters.dynamodb import codecs as c
from centli.adapters.dynamodb import repositories as r
from centli.adapters.dynamodb.ledger import Ledger
from centli.adapters.dynamodb.runner import Explain, Intent, Runner, condition_failed
from centli.adapters.dynamodb.schema import PENDING_OUTBOX_INDEX, TableNames
from centli.adapters.resilience import CircuitBreaker
from centli.adapters.system import SystemClock
from centli.domain.events import DomainEvent
from centli.domain.ledger import AccountRef, Transfer
from centli.ports.clock import Clock
from centli.ports.faults import FaultPoints

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient

    # Loading, audit and trace are operator paths: a Lambda's cold start does not import them.
    from centli.domain.audit import AuditSnapshot, InboxRecord, OutboxRecord
    from centli.domain.loading import BankData, LoadReport, Progress
    from centli.ports.audit import ReadProgress


class DynamoStore(Runner):
    """All tables behind one client, one circuit breaker and the fault points."""

    def __init__(
        self,
        client: DynamoDBClient,
        tables: TableNames,
        faults: FaultPoints | None = None,
        breaker: CircuitBreaker | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(client, faults, breaker)
        self.tables = tables
        self.clock: Clock = clock or SystemClock()

    def unit_of_work(self) -> DynamoUnitOfWork:
        return DynamoUnitOfWork(self)

    def load(self, data: BankData, progress: Progress | None = None) -> LoadReport:
        from centli.adapters.dynamodb.loader import load

        return load(self, data, progress)

    # AuditReader: paginated, strongly consistent Scans of the base tables (never an index) ----
    def scan_all(self, table: str, progress: ReadProgress | None = None, **filters: object) -> list[c.Item]:
        """Every item of a base table (that passes ``filters``); each page is a consistent Scan, which
        costs 1 read unit per 4 KB read, filtered out or not."""
        return self.all_items("scan", progress, TableName=table, ConsistentRead=True, **filters)

    def audit_snapshot(self, progress: ReadProgress | None = None) -> AuditSnapshot:
        """Not one snapshot: tables are read one after another, so run it on a quiet store
        (a write landing between two tables' reads can show as a finding; a re-run tells)."""
        from centli.domain.audit import AccountLedger, AuditSnapshot

        t = self.tables
        partitions: dict[str, list[c.Item]] = {}
        heads: dict[str, int] = {}
        for item in self.scan_all(t.transactions, progress):
            key = c.text(item, "account_key")
            if c.text(item, "entry_key") == c.HEAD_KEY:
                heads[key] = c.number(item, "balance")
            else:
                partitions.setdefault(key, []).append(item)
        ledgers: list[AccountLedger] = []
        for item in self.scan_all(t.accounts, progress):
            account = c.account_from_item(item)
            key = c.partition(AccountRef(account.user_id, account.account_id))
            newest_first = sorted(partitions.get(key, []), key=lambda i: c.text(i, "entry_key"), reverse=True)
            # balance_after as history computes it: walking back from the head (forward from 0 without one).
            balance = heads[key] if key in heads else sum(e.signed_minor for e in c.walk_back(newest_first, 0))
            ledgers.append(AccountLedger(account, c.walk_back(newest_first, balance)[::-1]))
        return AuditSnapshot(
            ledgers=ledgers,
            transfers=[c.transfer_from_item(i) for i in self.scan_all(t.transfers, progress)],
            idempotency=[c.record_from_item(i) for i in self.scan_all(t.idempotency, progress)],
            products=[c.product_from_item(i) for i in self.scan_all(t.products, progress)],
            orders=[c.order_from_item(i) for i in self.scan_all(t.orders, progress)],
            outbox=self._outbox_records(self.scan_all(t.outbox, progress)),
        )

    # TraceReader: an operator's lookup; it scans the outbox (7 days of events, TTL) -------
    def events_naming(self, text: str) -> list[OutboxRecord]:
        filters: c.Item = {"FilterExpression": "contains(detail, :t)", "ExpressionAttributeValues": c.values(t=text)}
        return self._outbox_records(self.scan_all(self.tables.outbox, **filters))

    def handled(self, consumer: str, event_id: str) -> InboxRecord | None:
        item = self.get_item(self.tables.processed, c.attrs(consumer=consumer, event_id=event_id))
        return None if item is None else c.inbox_record(item)

    @staticmethod
    def _outbox_records(items: list[c.Item]) -> list[OutboxRecord]:
        from centli.domain.audit import OutboxRecord

        return [OutboxRecord(c.event_from_stream_image(i), "pending" not in i) for i in items]

    # OutboxReader (local relays and tests; on AWS the outbox stream is relayed) -----
    def pending(self, limit: int) -> list[DomainEvent]:
        """The oldest ``limit`` unpublished events: a Scan of the sparse, write-sharded pending index.

        The index holds only events in flight (the stream relay marks each one
        published within moments), so a Scan reads little, spreads its reads over
        every shard, and is one request where a Query per shard would be 128.
        """
        items = self.all_items("scan", TableName=self.tables.outbox, IndexName=PENDING_OUTBOX_INDEX)
        items.sort(key=lambda item: c.text(item, "pending_key"))
        return [c.event_from_stream_image(item) for item in items[:limit]]

    def mark_published(self, event_ids: Sequence[str]) -> None:
        for event_id in event_ids:
            try:
                self.call(
                    "update_item",
                    TableName=self.tables.outbox,
                    Key=c.attrs(event_id=event_id),
                    UpdateExpression="REMOVE #p, #k",
                    ConditionExpression="attribute_exists(event_id)",
                    ExpressionAttributeNames={"#p": "pending", "#k": "pending_key"},
                )
            except ClientError as error:
                if not condition_failed(error):
                    raise


class DynamoUnitOfWork(BufferedUnitOfWork[Intent, DynamoStore]):
    repositories = Repositories(
        r.Accounts, r.Beneficiaries, Ledger, r.DailyLimits, r.Idempotency, r.Products, r.Orders, r.Inbox, r.Outbox
    )

    def __init__(self, store: DynamoStore) -> None:
        super().__init__(store)
        self.tables = store.tables

    def buffer_items(self, items: list[c.Item], explain: Explain, *, first: bool = False) -> None:
        self.buffer(Intent(items, explain), first=first)

    def _apply(self, writes: list[Intent], posted: list[Transfer]) -> datetime:
        """One TransactWriteItems, stamped with the clock read now; a re-stamp when a head holds a later entry."""
        return self.store.transact(writes, self.clock.now(), posted)
