"""The DynamoDB store: one ``TransactWriteItems`` per command, one request per read.

Writes
    A unit of work buffers *intents*; each intent is a few transaction items
    with their conditions plus a function that explains a failed condition
    as a domain error. ``commit()`` sends every item in ONE
    ``TransactWriteItems``, never reading first. On ``TransactionCanceledException``
    the ``CancellationReasons`` are matched to intents by item index:
    idempotency and inbox intents come first, so they take precedence over
    every other failing guard, as in the in-memory store. Items that fail a
    condition return the stored item (``ReturnValuesOnConditionCheckFailure=ALL_OLD``),
    which tells a missing account from a wrong currency from too little money,
    and hands an idempotent replay its stored result in the same round trip.
    Intents that are no-ops when their item exists (opening an account, adding
    a product) are dropped and the rest resent. ``TransactionConflict`` is
    retried with jittered backoff, then becomes a 409 ConcurrencyConflict.

Balances after each history entry
    A transaction cannot return new values, so the ledger partition of an
    account (``account_key = user_id#account_id`` in the transactions table)
    holds a *head* item mirroring the account's balance, updated in the same
    transaction as the account item, with a sort key (``~HEAD``) after every
    entry key (``E#<utc timestamp>#<rank>#<entry id>``). A first history page
    is ONE strongly consistent Query, newest first: the head, then the
    entries; ``balance_after`` is computed walking backwards from the head.
    The page's position carries the cut's entry key and the balance before
    it; the domain signs positions inside cursors, so they cannot be forged.
    Older entries never change, so a later page stays exact even after new
    transfers. Entries carry ``user_id`` and ``timestamp`` for the seed's
    ``user_id-timestamp-index`` GSI (the head has neither, so it stays out).

Key order is commit order
    Walking back from the head is right only if the partition's key order is
    the order in which entries committed. An entry key starts with the
    transfer's ``created_at``, stamped by the caller's clock before commit, so
    a transfer stamped earlier may commit later (skewed clocks, a slow
    commit). The head therefore records the last entry key written to its
    partition (``last_sk``, set when the account is opened); every posting's
    head update carries ``attribute_not_exists(last_sk) OR last_sk < :sk`` and
    sets ``last_sk = :sk``. On the normal path this costs nothing: still one
    request. When only that condition fails, the head's stored ``last_sk``
    comes back in the cancellation reason (ALL_OLD), the entries are re-keyed
    one microsecond after it (their displayed ``timestamp`` stays
    ``created_at``; only the sort key moves) and the transaction is resent, a
    bounded number of times. Every other failing guard (idempotency and inbox
    first, then accounts, funds, limits, a duplicated transfer) is named
    exactly as before and wins over a re-key.

Every write is conditional
    The transfer record and its entries must not exist (else
    ConcurrencyConflict, as in SQLite). An outbox event id that already exists
    is ignored, as SQLite does: that intent is dropped and the rest resent.

Reads
    Balance, transfer, order, product and beneficiary: one consistent GetItem.
    Accounts, orders, history: one consistent Query on the base table (never
    on a GSI). Product search is the only Scan, and only on the catalog.
    The sweeper's pending orders and the local relay's pending events use
    sparse GSIs (eventually consistent, which both tolerate).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from centli.adapters.aws_clients import make_client
from centli.adapters.buffered import BufferedUnitOfWork
from centli.adapters.dynamodb.schema import (
    ORDER_PENDING_SHARDS,
    OUTBOX_PENDING_SHARDS,
    PENDING_ORDERS_INDEX,
    PENDING_OUTBOX_INDEX,
    TableNames,
)
from centli.adapters.resilience import CircuitBreaker, retry_with_jitter
from centli.domain.backoff import jittered
from centli.domain.catalog import Product, fold
from centli.domain.errors import (
    AccountNotFound,
    ConcurrencyConflict,
    CurrencyMismatch,
    DependencyUnavailable,
    DestinationNotFound,
    InsufficientFunds,
    InvalidCursor,
    LimitExceeded,
    OutOfStock,
    ProductNotFound,
)
from centli.domain.events import PROCESSED, DomainEvent, EventAlreadyProcessed
from centli.domain.idempotency import DuplicateIdempotencyKey, IdempotencyRecord
from centli.domain.ledger import (
    OPENING_DESCRIPTION,
    Account,
    AccountRef,
    Beneficiary,
    DestinationIsBeneficiary,
    Direction,
    LedgerEntry,
    NewAccount,
    Transfer,
    describe_entry,
)
from centli.domain.money import Money
from centli.domain.orders import Order
from centli.domain.settlement import bucket, is_clearing
from centli.ports.faults import FaultPoints, NoFaults
from centli.ports.repositories import Page

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient

    # Loading, audit and trace are operator paths: a Lambda's cold start does not import them.
    from centli.domain.audit import AuditSnapshot, InboxRecord, OutboxRecord
    from centli.domain.loading import BankData, LoadReport, Progress
    from centli.ports.audit import ReadProgress

Item = dict[str, Any]
Reason = dict[str, Any]

HEAD_KEY = "~HEAD"
PENDING = "PENDING"
#: Errors that mean the dependency, not the request, is in trouble.
_DEPENDENCY_ERRORS = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "ResourceNotFoundException",
    }
)
#: Attempts per request (the first included) in botocore's standard retry mode (throttling, 5xx, connection errors).
CONFLICT_ATTEMPTS = 4
#: Times one transfer's entries are re-keyed after later-keyed entries committed first.
RESTAMP_ATTEMPTS = 5
BATCH_WRITE_SIZE = 25
BATCH_GET_SIZE = 100
BATCH_ATTEMPTS = 8
OUTBOX_RETENTION = timedelta(days=7)
LIMIT_COUNTER_RETENTION = timedelta(days=3)


# attribute values and keys --------------------------------------------------
def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _str(item: Item, name: str) -> str:
    return str(item[name]["S"])


def _int(item: Item, name: str) -> int:
    return int(item[name]["N"])


def _ts(moment: datetime) -> str:
    """Fixed-width UTC text: string order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def pending_shard(shard: int) -> str:
    """A sparse pending index's partition key value: one of its write shards."""
    return f"{PENDING}#{shard:03d}"


def account_key(user_id: str, account_id: str) -> str:
    return f"{user_id}#{account_id}"


#: Every opening entry sorts at this instant: its key must not depend on when a (re-run) load happened.
OPENING_KEY_TIME = datetime(1970, 1, 1, tzinfo=UTC)


def entry_key(timestamp: datetime, entry_id: str, *, opening: bool = False) -> str:
    return f"E#{_ts(OPENING_KEY_TIME if opening else timestamp)}#{0 if opening else 1}#{entry_id}"


def entry_key_after(last_key: str, entry_id: str) -> str:
    """A key sorting just after ``last_key``: one microsecond later, whatever the entry's own timestamp."""
    later = datetime.fromisoformat(last_key.split("#")[1]) + timedelta(microseconds=1)
    return f"E#{_ts(later)}#1#{entry_id}"


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _is_dependency_failure(error: BaseException) -> bool:
    if isinstance(error, BotoCoreError):
        return not isinstance(error, ParamValidationError)  # connection refused, timeouts; not our own bugs
    if isinstance(error, ClientError):
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return _error_code(error) in _DEPENDENCY_ERRORS or status >= 500
    return False


def make_dynamodb_client(endpoint_url: str | None = None) -> DynamoDBClient:
    """A DynamoDB client: standard retries, short timeouts, a region only by default for a local endpoint."""
    client: DynamoDBClient = make_client("dynamodb", endpoint_url)
    return client


# intents ------------------------------------------------------------------------
class _Resend:
    """An intent's answer to a cancellation: "I rewrote my items; send the transaction again"."""


RESEND = _Resend()
#: Explains its items' cancellation reasons: an error to raise, None for "a no-op; drop me", or RESEND.
Explain = Callable[[list[Reason]], Exception | _Resend | None]


@dataclass(eq=False)
class _Intent:
    items: list[Item]
    explain: Explain


def _failed(reason: Reason) -> bool:
    return reason.get("Code") == "ConditionalCheckFailed"


def _old(reason: Reason) -> Item | None:
    old: Item | None = reason.get("Item")
    return old


class _TransactionConflict(ConcurrencyConflict):
    """Another transaction touched one of the items at the same time: safe to resend."""


class DynamoStore:
    """All tables behind one client, one circuit breaker and the fault points."""

    def __init__(
        self,
        client: DynamoDBClient,
        tables: TableNames,
        faults: FaultPoints | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.client: Any = client
        self.tables = tables
        self.faults: FaultPoints = faults or NoFaults()
        self.breaker = breaker or CircuitBreaker("dynamodb")
        self.conflict_attempts = CONFLICT_ATTEMPTS
        self.sleep: Callable[[float], None] = time.sleep

    def unit_of_work(self) -> DynamoUnitOfWork:
        return DynamoUnitOfWork(self)

    # every request goes through here -------------------------------------------
    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """One AWS request through the breaker; dependency trouble becomes DependencyUnavailable."""
        method = getattr(self.client, operation)
        try:
            response: dict[str, Any] = self.breaker.call(lambda: method(**params), is_failure=_is_dependency_failure)
        except (BotoCoreError, ClientError) as error:
            if _is_dependency_failure(error):
                raise DependencyUnavailable() from error
            raise
        return response

    def get_item(self, table: str, key: Item) -> Item | None:
        found: Item | None = self.call("get_item", TableName=table, Key=key, ConsistentRead=True).get("Item")
        return found

    def query_all(self, **params: Any) -> list[Item]:
        """A Query followed to its end (small partitions: one request in practice)."""
        items: list[Item] = []
        while True:
            response = self.call("query", **params)
            items.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # the atomic commit -------------------------------------------------------------
    def transact(self, intents: Sequence[_Intent]) -> None:
        live = list(intents)

        def attempt() -> None:
            nonlocal live
            while True:
                items = [item for intent in live for item in intent.items]
                if not items:
                    return
                try:
                    self.call("transact_write_items", TransactItems=items)
                    return
                except ClientError as error:
                    if _error_code(error) != "TransactionCanceledException":
                        raise
                    reasons: list[Reason] = list(error.response.get("CancellationReasons", []))  # type: ignore[arg-type]
                    live = self._explain(live, reasons, error)

        retry_with_jitter(
            attempt,
            should_retry=lambda e: isinstance(e, _TransactionConflict),
            attempts=self.conflict_attempts,
            sleep=self.sleep,
        )

    def _explain(self, intents: list[_Intent], reasons: list[Reason], error: ClientError) -> list[_Intent]:
        """Raise the domain error the first failing intent names, or return the intents left to resend."""
        start = 0
        dropped: list[_Intent] = []
        rewritten = False
        for intent in intents:
            own = reasons[start : start + len(intent.items)]
            start += len(intent.items)
            if any(_failed(r) for r in own):
                named = intent.explain(own)
                if isinstance(named, Exception):
                    raise named
                if named is None:
                    dropped.append(intent)
                else:
                    rewritten = True
        if dropped or rewritten:
            return [i for i in intents if i not in dropped]
        codes = {str(r.get("Code")) for r in reasons} - {"None"}
        if "TransactionConflict" in codes:
            raise _TransactionConflict()
        if codes & {"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}:
            raise DependencyUnavailable() from error
        raise error  # a validation error inside the transaction: a bug, not a customer's problem

    # AuditReader: paginated, strongly consistent Scans of the base tables (never an index) ----
    def scan_all(self, table: str, progress: ReadProgress | None = None, **filters: Any) -> list[Item]:
        """Every item of a base table (that passes ``filters``); each page is a consistent Scan, which
        costs 1 read unit per 4 KB read, filtered out or not."""
        items: list[Item] = []
        params: dict[str, Any] = {"TableName": table, "ConsistentRead": True, **filters}
        while True:
            response = self.call("scan", **params)
            items.extend(response.get("Items", []))
            if progress is not None:
                progress(table, len(items))
            if "LastEvaluatedKey" not in response:
                return items
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # TraceReader: an operator's lookup; it scans the outbox (7 days of events, TTL) -------
    def events_naming(self, text: str) -> list[OutboxRecord]:
        from centli.domain.audit import OutboxRecord

        items = self.scan_all(
            self.tables.outbox,
            FilterExpression="contains(detail, :t)",
            ExpressionAttributeValues={":t": _s(text)},
        )
        return [OutboxRecord(_event_from_item(i), "pending" not in i) for i in items]

    def handled(self, consumer: str, event_id: str) -> InboxRecord | None:
        item = self.get_item(self.tables.processed, {"consumer": _s(consumer), "event_id": _s(event_id)})
        return None if item is None else _inbox_record(item)

    def audit_snapshot(self, progress: ReadProgress | None = None) -> AuditSnapshot:
        """Not one snapshot: tables are read one after another, so run it on a quiet store
        (a write landing between two tables' reads can show as a finding; a re-run tells)."""
        from centli.domain.audit import AccountLedger, AuditSnapshot, OutboxRecord

        t = self.tables
        partitions: dict[str, list[Item]] = {}
        heads: dict[str, int] = {}
        for item in self.scan_all(t.transactions, progress):
            key = _str(item, "account_key")
            if _str(item, "entry_key") == HEAD_KEY:
                heads[key] = _int(item, "balance")
            else:
                partitions.setdefault(key, []).append(item)
        ledgers: list[AccountLedger] = []
        for item in self.scan_all(t.accounts, progress):
            account = _account_from_item(item)
            key = account_key(account.user_id, account.account_id)
            own = sorted(partitions.get(key, []), key=lambda i: _str(i, "entry_key"))
            # balance_after as history computes it: walking back from the head (forward from 0 without one).
            balance = heads.get(key)
            if balance is None:
                balance = sum(_int(i, "amount") * (1 if _str(i, "direction") == "CREDIT" else -1) for i in own)
            entries: list[LedgerEntry] = []
            for entry_item in reversed(own):
                entry = _entry_from_item(entry_item, balance)
                entries.append(entry)
                balance -= entry.signed_minor
            ledgers.append(AccountLedger(account, entries[::-1]))
        return AuditSnapshot(
            ledgers=ledgers,
            transfers=[Transfer.from_dict(json.loads(_str(i, "data"))) for i in self.scan_all(t.transfers, progress)],
            idempotency=[_record_from_item(i) for i in self.scan_all(t.idempotency, progress)],
            products=[_product_from_item(i) for i in self.scan_all(t.products, progress)],
            orders=[_order_from_item(i) for i in self.scan_all(t.orders, progress)],
            outbox=[OutboxRecord(_event_from_item(i), "pending" not in i) for i in self.scan_all(t.outbox, progress)],
            inbox=[_inbox_record(i) for i in self.scan_all(t.processed, progress)],
        )

    # OutboxReader (local relays and tests; on AWS the outbox stream is relayed) -----
    def pending(self, limit: int) -> list[DomainEvent]:
        """The oldest ``limit`` unpublished events: a Scan of the sparse, write-sharded pending index.

        The index holds only events in flight (the stream relay marks each one
        published within moments), so a Scan reads little, spreads its reads over
        every shard, and is one request where a Query per shard would be 128.
        """
        params: dict[str, Any] = {"TableName": self.tables.outbox, "IndexName": PENDING_OUTBOX_INDEX}
        items: list[Item] = []
        while True:
            response = self.call("scan", **params)
            items.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        items.sort(key=lambda item: _str(item, "pending_key"))
        return [_event_from_item(item) for item in items[:limit]]

    def mark_published(self, event_ids: Sequence[str]) -> None:
        for event_id in event_ids:
            try:
                self.call(
                    "update_item",
                    TableName=self.tables.outbox,
                    Key={"event_id": _s(event_id)},
                    UpdateExpression="REMOVE #p, #k",
                    ConditionExpression="attribute_exists(event_id)",
                    ExpressionAttributeNames={"#p": "pending", "#k": "pending_key"},
                )
            except ClientError as error:
                if _error_code(error) != "ConditionalCheckFailedException":
                    raise

    # bulk loading ----------------------------------------------------------------------
    def load(self, data: BankData, progress: Progress | None = None) -> LoadReport:
        """Write what is missing with BatchWriteItem (25 a request); safe to run again after a failure.

        Existing accounts and products stay as they are (money and stock have moved since);
        beneficiaries are the bank's data and are replaced when they differ, as in the other
        stores. BatchWriteItem is not atomic, so every account's ledger head and opening entry
        are written in earlier batches than its account row: the row, written last, marks the
        account as loaded, and a load that stopped half-way writes the rest on its next run
        (no transfer can touch an account whose row does not exist yet).
        """
        t = self.tables
        records: list[tuple[str, Item, list[tuple[str, Item]], Item]] = []  # (table, key, written first, marker)
        for account in data.accounts:
            (_, row), *ledger = _opening_items(t, account)
            records.append((t.accounts, _account_key_attrs(account.user_id, account.account_id), ledger, row))
        for ben in {(b.user_id, b.beneficiary_id): b for b in data.beneficiaries}.values():
            key = {"user_id": _s(ben.user_id), "beneficiary_id": _s(ben.beneficiary_id)}
            records.append((t.beneficiaries, key, [], _beneficiary_item(ben)))
        seen_products: set[str] = set()
        for product in data.products:
            if product.product_id not in seen_products:
                seen_products.add(product.product_id)
                records.append((t.products, {"product_id": _s(product.product_id)}, [], _product_item(product)))
        clashes = [
            *((t.accounts, _account_key_attrs(b.user_id, b.beneficiary_id)) for b in data.beneficiaries),
            *((t.beneficiaries, {"user_id": _s(a.user_id), "beneficiary_id": _s(a.account_id)}) for a in data.accounts),
        ]
        stored = self.batch_get([*((table, key) for table, key, _, _ in records), *clashes])
        from centli.domain.loading import refuse_destination_clashes  # loading is an operator path

        refuse_destination_clashes(
            data,
            lambda user, account: (t.accounts, _key_text(_account_key_attrs(user, account))) in stored,
            lambda user, ben: (t.beneficiaries, _key_text({"user_id": _s(user), "beneficiary_id": _s(ben)})) in stored,
        )

        def missing(table: str, key: Item, marker: Item) -> bool:
            found = stored.get((table, _key_text(key)))
            return found is None or (table == t.beneficiaries and found != marker)

        new = [(table, first, marker) for table, key, first, marker in records if missing(table, key, marker)]
        total = len(records)
        done = total - len(new)
        phases = [[w for _, first, _ in new for w in first], [(table, marker) for table, _, marker in new]]
        for markers, writes in enumerate(phases):
            for start in range(0, len(writes), BATCH_WRITE_SIZE):
                batch = writes[start : start + BATCH_WRITE_SIZE]
                self._batch_write(batch)
                done += len(batch) if markers else 0
                if progress is not None:
                    progress(done, total)
        if progress is not None and not new:
            progress(done, total)
        return data.report()

    def batch_get(self, keys: list[tuple[str, Item]]) -> dict[tuple[str, str], Item]:
        """The stored items under ``keys`` (consistent BatchGetItem, 100 keys a request), by (table, key text)."""
        found: dict[tuple[str, str], Item] = {}
        unique = list({(table, _key_text(key)): (table, key) for table, key in keys}.values())
        for start in range(0, len(unique), BATCH_GET_SIZE):
            request: dict[str, Any] = {}
            for table, key in unique[start : start + BATCH_GET_SIZE]:
                request.setdefault(table, {"Keys": [], "ConsistentRead": True})["Keys"].append(key)
            for attempt in range(BATCH_ATTEMPTS):
                response = self.call("batch_get_item", RequestItems=request)
                for table, items in response.get("Responses", {}).items():
                    key_names = _key_names(request[table]["Keys"][0])
                    found.update(((table, _key_text({k: item[k] for k in key_names})), item) for item in items)
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                self._backoff(attempt)
            else:
                raise DependencyUnavailable()
        return found

    def _batch_write(self, writes: list[tuple[str, Item]]) -> None:
        request: dict[str, list[Item]] = {}
        for table, item in writes:
            request.setdefault(table, []).append({"PutRequest": {"Item": item}})
        for attempt in range(BATCH_ATTEMPTS):
            response = self.call("batch_write_item", RequestItems=request)
            request = response.get("UnprocessedItems") or {}
            if not request:
                return
            self._backoff(attempt)
        raise DependencyUnavailable()

    def _backoff(self, attempt: int) -> None:
        self.sleep(jittered(attempt, 0.05, 2.0))


def _key_names(key: Item) -> list[str]:
    return sorted(key)


def _key_text(key: Item) -> str:
    return json.dumps({k: key[k] for k in sorted(key)}, sort_keys=True)


def _account_key_attrs(user_id: str, account_id: str) -> Item:
    return {"user_id": _s(user_id), "account_id": _s(account_id)}


def _head_key(user_id: str, account_id: str) -> Item:
    return {"account_key": _s(account_key(user_id, account_id)), "entry_key": _s(HEAD_KEY)}


def _opening_items(t: TableNames, account: NewAccount) -> list[tuple[str, Item]]:
    balance = account.opening_balance
    entry = LedgerEntry(
        entry_id=account.opening_entry_id,
        account_id=account.account_id,
        user_id=account.user_id,
        transfer_id=account.opening_entry_id,
        direction="CREDIT",
        amount=balance,
        description=OPENING_DESCRIPTION,
        timestamp=account.opened_at,
        balance_after=balance,
    )
    opening_key = entry_key(account.opened_at, entry.entry_id, opening=True)
    return [
        (
            t.accounts,
            {
                **_account_key_attrs(account.user_id, account.account_id),
                "alias": _s(account.alias),
                "currency": _s(balance.currency),
                "balance": _n(balance.minor),
            },
        ),
        (
            t.transactions,
            {
                **_head_key(account.user_id, account.account_id),
                "currency": _s(balance.currency),
                "balance": _n(balance.minor),
                "last_sk": _s(opening_key),
            },
        ),
        (t.transactions, _entry_item(entry, opening_key)),
    ]


def _entry_item(entry: LedgerEntry, key: str) -> Item:
    # user_id and timestamp are the keys of the seed's user_id-timestamp-index. A clearing account's
    # entries carry them under other names, so that index never holds them: all N clearing accounts
    # of a seller would otherwise write one index key (the seller's clearing user) on every sale.
    user, moment = ("owner_id", "at") if is_clearing(entry.account_id) else ("user_id", "timestamp")
    return {
        "account_key": _s(account_key(entry.user_id, entry.account_id)),
        "entry_key": _s(key),
        "entry_id": _s(entry.entry_id),
        user: _s(entry.user_id),
        "account_id": _s(entry.account_id),
        "transfer_id": _s(entry.transfer_id),
        "direction": _s(entry.direction),
        "amount": _n(entry.amount.minor),
        "currency": _s(entry.amount.currency),
        "description": _s(entry.description),
        moment: _s(_ts(entry.timestamp)),
    }


def _entry_from_item(item: Item, balance_after: int) -> LedgerEntry:
    currency = _str(item, "currency")
    return LedgerEntry(
        entry_id=_str(item, "entry_id"),
        account_id=_str(item, "account_id"),
        user_id=_str(item, "user_id" if "user_id" in item else "owner_id"),
        transfer_id=_str(item, "transfer_id"),
        direction="DEBIT" if _str(item, "direction") == "DEBIT" else "CREDIT",
        amount=Money(_int(item, "amount"), currency),
        description=_str(item, "description"),
        timestamp=datetime.fromisoformat(_str(item, "timestamp" if "timestamp" in item else "at")),
        balance_after=Money(balance_after, currency),
    )


def _account_from_item(item: Item) -> Account:
    return Account(
        account_id=_str(item, "account_id"),
        user_id=_str(item, "user_id"),
        alias=_str(item, "alias"),
        balance=Money(_int(item, "balance"), _str(item, "currency")),
    )


def _beneficiary_item(ben: Beneficiary) -> Item:
    return {
        "user_id": _s(ben.user_id),
        "beneficiary_id": _s(ben.beneficiary_id),
        "alias": _s(ben.alias),
        "account_id": _s(ben.account_id),
        "account_user_id": _s(ben.account_user_id),
    }


def _beneficiary_from_item(item: Item) -> Beneficiary:
    return Beneficiary(
        beneficiary_id=_str(item, "beneficiary_id"),
        user_id=_str(item, "user_id"),
        alias=_str(item, "alias"),
        account_id=_str(item, "account_id"),
        account_user_id=_str(item, "account_user_id"),
    )


def _product_item(product: Product) -> Item:
    return {
        "product_id": _s(product.product_id),
        "name": _s(product.name),
        "category": _s(product.category),
        "price": _n(product.price.minor),
        "currency": _s(product.price.currency),
        "stock": _n(product.stock),
        "reserved": _n(product.reserved),
        "available": _n(product.available),
        "seller_user_id": _s(product.seller.user_id),
        "seller_account_id": _s(product.seller.account_id),
        "search_text": _s(fold(f"{product.name} {product.category}")),
        "category_folded": _s(fold(product.category)),
    }


def _product_from_item(item: Item) -> Product:
    return Product(
        product_id=_str(item, "product_id"),
        name=_str(item, "name"),
        category=_str(item, "category"),
        price=Money(_int(item, "price"), _str(item, "currency")),
        stock=_int(item, "stock"),
        reserved=_int(item, "reserved"),
        seller=AccountRef(_str(item, "seller_user_id"), _str(item, "seller_account_id")),
    )


def _order_item(order: Order) -> Item:
    item: Item = {
        "user_id": _s(order.user_id),
        "order_id": _s(order.order_id),
        "status": _s(order.status),
        "version": _n(order.version),
        "data": _s(json.dumps(order.to_dict(), separators=(",", ":"))),
    }
    if order.status == PENDING:  # the sweeper's sparse index holds only pending orders, write-sharded
        item["pending"] = _s(pending_shard(bucket(order.order_id, ORDER_PENDING_SHARDS)))
        item["created_key"] = _s(f"{_ts(order.sweep_time)}#{order.order_id}")
    return item


def _order_from_item(item: Item) -> Order:
    return Order.from_dict(json.loads(_str(item, "data")))


def _record_from_item(item: Item) -> IdempotencyRecord:
    return IdempotencyRecord(
        user_id=_str(item, "user_id"),
        key=_str(item, "idempotency_key"),
        operation=_str(item, "operation"),
        fingerprint=_str(item, "fingerprint"),
        result=json.loads(_str(item, "result")),
        created_at=datetime.fromisoformat(_str(item, "created_at")),
        expires_at=datetime.fromisoformat(_str(item, "expires_at")),
    )


def _inbox_record(item: Item) -> InboxRecord:
    from centli.domain.audit import InboxRecord

    return InboxRecord(
        _str(item, "consumer"),
        _str(item, "event_id"),
        _str(item, "outcome") if "outcome" in item else None,
        datetime.fromisoformat(_str(item, "processed_at")) if "processed_at" in item else None,
    )


def event_from_stream_image(image: Item) -> DomainEvent:
    """An outbox event from its DynamoDB Streams ``NewImage`` (the item as written, in attribute-value form)."""
    return _event_from_item(image)


def _event_from_item(item: Item) -> DomainEvent:
    event = DomainEvent.from_detail(json.loads(_str(item, "detail")))
    return DomainEvent(
        event_id=event.event_id,
        type=event.type,
        occurred_at=datetime.fromisoformat(_str(item, "occurred_at")),  # full precision
        correlation_id=event.correlation_id,
        causation_id=event.causation_id,
        user_id=event.user_id,
        payload=event.payload,
    )


# the unit of work -----------------------------------------------------------------
class DynamoUnitOfWork(BufferedUnitOfWork[_Intent]):
    def __init__(self, store: DynamoStore) -> None:
        super().__init__()
        self.store = store
        self.tables = store.tables
        self.accounts = _Accounts(self)
        self.beneficiaries = _Beneficiaries(self)
        self.ledger = _Ledger(self)
        self.limits = _DailyLimits(self)
        self.idempotency = _Idempotency(self)
        self.products = _Products(self)
        self.orders = _Orders(self)
        self.inbox = _Inbox(self)
        self.outbox = _Outbox(self)

    def buffer_items(self, items: list[Item], explain: Explain, *, first: bool = False) -> None:
        self.buffer(_Intent(items, explain), first=first)

    def _fault_points(self) -> FaultPoints:
        return self.store.faults

    def _apply(self, writes: list[_Intent]) -> None:
        self.store.transact(writes)


def _never_fails(_: list[Reason]) -> Exception | None:
    return ConcurrencyConflict()


def _no_op(_: list[Reason]) -> Exception | None:
    return None


class _Repo:
    def __init__(self, uow: DynamoUnitOfWork) -> None:
        self._uow = uow
        self._store = uow.store
        self._t = uow.tables


class _Accounts(_Repo):
    def list_for_user(self, user_id: str) -> list[Account]:
        items = self._store.query_all(
            TableName=self._t.accounts,
            KeyConditionExpression="user_id = :u",
            ExpressionAttributeValues={":u": _s(user_id)},
            ConsistentRead=True,
        )
        return [_account_from_item(item) for item in items]

    def get(self, user_id: str, account_id: str) -> Account | None:
        item = self._store.get_item(self._t.accounts, _account_key_attrs(user_id, account_id))
        return None if item is None else _account_from_item(item)

    def get_many(self, refs: Sequence[AccountRef]) -> list[Account]:
        """Consistent BatchGetItem, 100 keys a request."""
        found = self._store.batch_get([(self._t.accounts, _account_key_attrs(r.user_id, r.account_id)) for r in refs])
        return [_account_from_item(item) for item in found.values()]

    def open(self, account: NewAccount) -> None:
        items = [
            {
                "Put": {
                    "TableName": table,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(#pk)",
                    "ExpressionAttributeNames": {"#pk": next(iter(item))},
                }
            }
            for table, item in _opening_items(self._t, account)
        ]
        self._uow.buffer_items(items, _no_op)

    def require(self, user_id: str, account_id: str, minimum: Money) -> None:
        def explain(reasons: list[Reason]) -> Exception | None:
            old = _old(reasons[0])
            if old is None:
                return AccountNotFound(field="account_id")
            if _str(old, "currency") != minimum.currency:
                return CurrencyMismatch()
            return InsufficientFunds()

        check = {
            "ConditionCheck": {
                "TableName": self._t.accounts,
                "Key": _account_key_attrs(user_id, account_id),
                "ConditionExpression": "attribute_exists(user_id) AND currency = :c AND balance >= :m",
                "ExpressionAttributeValues": {":c": _s(minimum.currency), ":m": _n(minimum.minor)},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        self._uow.buffer_items([check], explain)


class _Beneficiaries(_Repo):
    def list_for_user(self, user_id: str) -> list[Beneficiary]:
        items = self._store.query_all(
            TableName=self._t.beneficiaries,
            KeyConditionExpression="user_id = :u",
            ExpressionAttributeValues={":u": _s(user_id)},
            ConsistentRead=True,
        )
        return [_beneficiary_from_item(item) for item in items]

    def get(self, user_id: str, beneficiary_id: str) -> Beneficiary | None:
        item = self._store.get_item(
            self._t.beneficiaries, {"user_id": _s(user_id), "beneficiary_id": _s(beneficiary_id)}
        )
        return None if item is None else _beneficiary_from_item(item)

    def add(self, beneficiary: Beneficiary) -> None:
        put = {"Put": {"TableName": self._t.beneficiaries, "Item": _beneficiary_item(beneficiary)}}
        self._uow.buffer_items([put], _never_fails)


class _Ledger(_Repo):
    def post(self, transfer: Transfer, *, resolve_destination: bool = False) -> None:
        t = self._t
        amount = transfer.amount
        source = AccountRef(transfer.user_id, transfer.from_account_id)
        target = transfer.to
        sides: tuple[tuple[str, AccountRef, Direction], ...] = (
            (transfer.debit_entry_id, source, "DEBIT"),
            (transfer.credit_entry_id, target, "CREDIT"),
        )
        entries = [
            LedgerEntry(
                entry_id=entry_id,
                account_id=ref.account_id,
                user_id=ref.user_id,
                transfer_id=transfer.transfer_id,
                direction=direction,
                amount=amount,
                description=describe_entry(transfer, direction),
                timestamp=transfer.created_at,
                balance_after=amount,  # not stored: computed from the head when read
            )
            for entry_id, ref, direction in sides
        ]
        values = {":a": _n(amount.minor), ":c": _s(amount.currency)}
        funded = "attribute_exists(user_id) AND currency = :c AND balance >= :a"
        if source == target:  # one item cannot be touched twice in a transaction: the net change is zero
            account_items: list[Item] = [
                {
                    "ConditionCheck": {
                        "TableName": t.accounts,
                        "Key": _account_key_attrs(source.user_id, source.account_id),
                        "ConditionExpression": funded,
                        "ExpressionAttributeValues": values,
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            ]
        else:
            account_items = [
                {
                    "Update": {
                        "TableName": t.accounts,
                        "Key": _account_key_attrs(ref.user_id, ref.account_id),
                        "UpdateExpression": update,
                        "ConditionExpression": condition,
                        "ExpressionAttributeValues": values,
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
                for ref, update, condition in (
                    (source, "SET balance = balance - :a", funded),
                    (target, "SET balance = balance + :a", "attribute_exists(user_id) AND currency = :c"),
                )
            ]
        # One ledger partition per account touched, each with its head and its new entries.
        partitions: dict[AccountRef, list[LedgerEntry]] = {}
        for ref, entry in zip((source, target), entries, strict=True):
            partitions.setdefault(ref, []).append(entry)
        deltas = {source: -amount.minor, target: amount.minor} if source != target else {source: 0}
        entry_puts: dict[str, Item] = {
            entry.entry_id: {
                "Put": {
                    "TableName": t.transactions,
                    "Item": _entry_item(entry, entry_key(entry.timestamp, entry.entry_id)),
                    "ConditionExpression": "attribute_not_exists(entry_key)",
                }
            }
            for entry in entries
        }
        heads: dict[AccountRef, Item] = {
            ref: {
                "Update": {
                    "TableName": t.transactions,
                    "Key": _head_key(ref.user_id, ref.account_id),
                    # The head's last_sk only grows: the partition's key order is the commit order.
                    "UpdateExpression": "SET last_sk = :sk ADD balance :d",
                    "ConditionExpression": "attribute_not_exists(last_sk) OR last_sk < :sk",
                    "ExpressionAttributeValues": {
                        ":d": _n(deltas[ref]),
                        ":sk": _s(max(_str(entry_puts[e.entry_id]["Put"]["Item"], "entry_key") for e in own)),
                    },
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
            for ref, own in partitions.items()
        }
        record = {
            "Put": {
                "TableName": t.transfers,
                "Item": {
                    "user_id": _s(transfer.user_id),
                    "transfer_id": _s(transfer.transfer_id),
                    "data": _s(json.dumps(transfer.to_dict(), separators=(",", ":"))),
                },
                "ConditionExpression": "attribute_not_exists(transfer_id)",
            }
        }
        head_refs = list(heads)
        items = [*account_items, *heads.values(), *entry_puts.values(), record]
        # The destination as an own account first; in the same request, a check that the customer has
        # no saved beneficiary of that id. When it is one, the check's stored item (ALL_OLD) names it.
        guard: Item | None = None
        if resolve_destination:
            guard = {
                "ConditionCheck": {
                    "TableName": t.beneficiaries,
                    "Key": {"user_id": _s(target.user_id), "beneficiary_id": _s(target.account_id)},
                    "ConditionExpression": "attribute_not_exists(user_id)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
            items.append(guard)
        restamps = 0

        def restamp(ref: AccountRef, reason: Reason) -> bool:
            """Re-key this partition's entries just after the head's stored last_sk; False if it is unknown."""
            old = _old(reason)
            if old is None or "last_sk" not in old:
                return False
            last = _str(old, "last_sk")
            keys = []
            for entry in partitions[ref]:
                key = entry_key_after(last, entry.entry_id)
                entry_puts[entry.entry_id]["Put"]["Item"]["entry_key"] = _s(key)
                keys.append(key)
            heads[ref]["Update"]["ExpressionAttributeValues"][":sk"] = _s(max(keys))
            return True

        def explain(reasons: list[Reason]) -> Exception | _Resend | None:
            nonlocal restamps, guard
            src = reasons[0]
            tgt = reasons[0] if source == target else reasons[1]
            saved = reasons[-1] if guard is not None else None
            if guard is not None:
                reasons = reasons[:-1]
            if _failed(src) and _old(src) is None:
                return AccountNotFound(field="from_account_id")
            if _failed(tgt) and _old(tgt) is None:
                if saved is not None:
                    stored = _old(saved)
                    if _failed(saved) and stored is not None:
                        return DestinationIsBeneficiary(_beneficiary_from_item(stored))
                    return DestinationNotFound(field="destination_id")
                return AccountNotFound(field="to_account_id")
            if guard is not None and saved is not None and _failed(saved) and not any(_failed(r) for r in reasons):
                # Both an own account and a beneficiary have this id (data loaded before loading refused
                # that): own accounts come first, so send the posting again without the check.
                items.remove(guard)
                guard = None
                return RESEND
            src_old = _old(src)
            if (_failed(src) and src_old is not None and _str(src_old, "currency") != amount.currency) or (
                _failed(tgt) and tgt is not src
            ):
                return CurrencyMismatch()
            if _failed(src):
                return InsufficientFunds()
            head_reasons = reasons[len(account_items) : len(account_items) + len(heads)]
            if any(_failed(r) for r in reasons[len(account_items) + len(heads) :]):
                return ConcurrencyConflict("That transfer already exists.")
            late = [(ref, r) for ref, r in zip(head_refs, head_reasons, strict=True) if _failed(r)]
            # Committed after an entry with a later key (clock skew, a slow commit): re-key and resend.
            if late and restamps < RESTAMP_ATTEMPTS and all(restamp(ref, r) for ref, r in late):
                restamps += 1
                return RESEND
            return ConcurrencyConflict()

        self._uow.buffer_items(items, explain)

    def get_transfer(self, user_id: str, transfer_id: str) -> Transfer | None:
        item = self._store.get_item(self._t.transfers, {"user_id": _s(user_id), "transfer_id": _s(transfer_id)})
        return None if item is None else Transfer.from_dict(json.loads(_str(item, "data")))

    def history(self, user_id: str, account_id: str, limit: int, position: str | None) -> Page[LedgerEntry]:
        key = account_key(user_id, account_id)
        params: dict[str, Any] = {
            "TableName": self._t.transactions,
            "KeyConditionExpression": "account_key = :k",
            "ExpressionAttributeValues": {":k": _s(key)},
            "ScanIndexForward": False,
            "ConsistentRead": True,
        }
        if position is None:
            params["Limit"] = limit + 2  # the head, the page, and one more to know whether there is more
        else:
            cut, balance = _parse_position(position)
            params["Limit"] = limit + 1
            params["ExclusiveStartKey"] = {"account_key": _s(key), "entry_key": _s(cut)}
        items: list[Item] = self._store.call("query", **params).get("Items", [])
        if position is None:
            if not items or _str(items[0], "entry_key") != HEAD_KEY:
                raise AccountNotFound(field="account_id")
            balance = _int(items[0], "balance")
            items = items[1:]
        page: list[LedgerEntry] = []
        for item in items[:limit]:
            entry = _entry_from_item(item, balance)
            page.append(entry)
            balance -= entry.signed_minor
        more = len(items) > limit
        next_position = json.dumps({"k": _str(items[limit - 1], "entry_key"), "b": balance}) if more else None
        return Page(page, next_position)


def _parse_position(position: str) -> tuple[str, int]:
    try:
        data = json.loads(position)
    except ValueError:
        raise InvalidCursor(field="cursor") from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("k"), str)
        or not str(data["k"]).startswith("E#")
        or type(data.get("b")) is not int
    ):
        raise InvalidCursor(field="cursor")
    return str(data["k"]), int(data["b"])


class _DailyLimits(_Repo):
    def add(self, user_id: str, day: str, amount: Money, limit: Money) -> None:
        headroom = limit.minor - amount.minor
        # A missing total passes only when the amount alone fits.
        condition = "attribute_not_exists(#t) OR #t <= :h" if headroom >= 0 else "#t <= :h"
        expires = datetime.fromisoformat(day).replace(tzinfo=UTC) + LIMIT_COUNTER_RETENTION
        update = {
            "Update": {
                "TableName": self._t.daily_limits,
                "Key": {"user_id": _s(user_id), "day_currency": _s(f"{day}#{amount.currency}")},
                "UpdateExpression": "SET #ttl = :ttl ADD #t :a",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#t": "total", "#ttl": "ttl"},
                "ExpressionAttributeValues": {":a": _n(amount.minor), ":h": _n(headroom), ":ttl": _n(_epoch(expires))},
            }
        }
        self._uow.buffer_items(
            [update], lambda _: LimitExceeded(f"This goes over the daily transfer limit of {limit}.")
        )

    def total(self, user_id: str, day: str, currency: str) -> Money:
        item = self._store.get_item(
            self._t.daily_limits, {"user_id": _s(user_id), "day_currency": _s(f"{day}#{currency}")}
        )
        return Money(0 if item is None else _int(item, "total"), currency)


class _Idempotency(_Repo):
    def claim(self, record: IdempotencyRecord) -> None:
        key = {"user_id": _s(record.user_id), "idempotency_key": _s(record.key)}

        def explain(reasons: list[Reason]) -> Exception | None:
            old = _old(reasons[0])
            if old is None:  # the stored record was not returned: read it (consistent) instead
                old = self._store.get_item(self._t.idempotency, key)
                if old is None:
                    return ConcurrencyConflict()
            return DuplicateIdempotencyKey(_record_from_item(old))

        put = {
            "Put": {
                "TableName": self._t.idempotency,
                "Item": {
                    **key,
                    "operation": _s(record.operation),
                    "fingerprint": _s(record.fingerprint),
                    "result": _s(json.dumps(record.result, separators=(",", ":"), sort_keys=True)),
                    "created_at": _s(_ts(record.created_at)),
                    "expires_at": _s(_ts(record.expires_at)),
                    "ttl": _n(_epoch(record.expires_at)),
                },
                # Expiry is checked here, with the record's own time as now: TTL deletes late.
                "ConditionExpression": "attribute_not_exists(user_id) OR expires_at <= :now",
                "ExpressionAttributeValues": {":now": _s(_ts(record.created_at))},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        self._uow.buffer_items([put], explain, first=True)

    def get(self, user_id: str, key: str) -> IdempotencyRecord | None:
        item = self._store.get_item(self._t.idempotency, {"user_id": _s(user_id), "idempotency_key": _s(key)})
        return None if item is None else _record_from_item(item)


class _Products(_Repo):
    def get(self, product_id: str) -> Product | None:
        item = self._store.get_item(self._t.products, {"product_id": _s(product_id)})
        return None if item is None else _product_from_item(item)

    def search(self, query: str | None, category: str | None, limit: int, position: str | None) -> Page[Product]:
        """A filtered Scan of the catalog (the one Scan anywhere; no account or ledger path scans)."""
        conditions: list[str] = []
        values: dict[str, Any] = {}
        if category:
            conditions.append("category_folded = :cat")
            values[":cat"] = _s(fold(category))
        for i, word in enumerate(fold(query or "").split()):
            conditions.append(f"contains(search_text, :w{i})")
            values[f":w{i}"] = _s(word)
        params: dict[str, Any] = {"TableName": self._t.products, "ConsistentRead": True}
        if conditions:
            params["FilterExpression"] = " AND ".join(conditions)
            params["ExpressionAttributeValues"] = values
        products: list[Product] = []
        while True:
            response = self._store.call("scan", **params)
            products.extend(_product_from_item(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        rows = sorted(
            (p for p in products if (position is None or p.product_id > position) and p.matches(query, category)),
            key=lambda p: p.product_id,
        )
        items = rows[:limit]
        return Page(items, items[-1].product_id if len(rows) > limit else None)

    def add(self, product: Product) -> None:
        put = {
            "Put": {
                "TableName": self._t.products,
                "Item": _product_item(product),
                "ConditionExpression": "attribute_not_exists(product_id)",
            }
        }
        self._uow.buffer_items([put], _no_op)

    def _change(self, product_id: str, update: str, condition: str, quantity: int, error: Exception) -> None:
        def explain(reasons: list[Reason]) -> Exception | None:
            return ProductNotFound(field="product_id") if _old(reasons[0]) is None else error

        change = {
            "Update": {
                "TableName": self._t.products,
                "Key": {"product_id": _s(product_id)},
                "UpdateExpression": update,
                "ConditionExpression": f"attribute_exists(product_id) AND {condition}",
                "ExpressionAttributeValues": {":q": _n(quantity)},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        self._uow.buffer_items([change], explain)

    def reserve(self, product_id: str, quantity: int) -> None:
        # DynamoDB conditions cannot subtract attributes, so `available` is kept beside stock and reserved.
        self._change(
            product_id,
            "SET reserved = reserved + :q, available = available - :q",
            "available >= :q",
            quantity,
            OutOfStock(),
        )

    def release(self, product_id: str, quantity: int) -> None:
        self._change(
            product_id,
            "SET reserved = reserved - :q, available = available + :q",
            "reserved >= :q",
            quantity,
            ConcurrencyConflict("The reservation is no longer held."),
        )

    def commit_reserved(self, product_id: str, quantity: int) -> None:
        self._change(
            product_id,
            "SET reserved = reserved - :q, stock = stock - :q",
            "reserved >= :q AND stock >= :q",
            quantity,
            ConcurrencyConflict("The reservation is no longer held."),
        )


class _Orders(_Repo):
    def get(self, user_id: str, order_id: str) -> Order | None:
        item = self._store.get_item(self._t.orders, {"user_id": _s(user_id), "order_id": _s(order_id)})
        return None if item is None else _order_from_item(item)

    def list_for_user(self, user_id: str, limit: int, position: str | None) -> Page[Order]:
        params: dict[str, Any] = {
            "TableName": self._t.orders,
            "KeyConditionExpression": "user_id = :u",
            "ExpressionAttributeValues": {":u": _s(user_id)},
            "ScanIndexForward": False,
            "ConsistentRead": True,
            "Limit": limit + 1,
        }
        if position is not None:
            params["KeyConditionExpression"] = "user_id = :u AND order_id < :p"
            params["ExpressionAttributeValues"][":p"] = _s(position)
        rows = [_order_from_item(item) for item in self._store.call("query", **params).get("Items", [])]
        items = rows[:limit]
        return Page(items, items[-1].order_id if len(rows) > limit else None)

    def list_pending_before(self, cutoff: datetime, limit: int) -> list[Order]:
        """One Query per shard of the sparse index (each oldest first), merged: the oldest ``limit`` overall."""
        found: list[Item] = []
        for shard in range(ORDER_PENDING_SHARDS):
            response = self._store.call(
                "query",
                TableName=self._t.orders,
                IndexName=PENDING_ORDERS_INDEX,
                KeyConditionExpression="#p = :p AND created_key < :cut",
                ExpressionAttributeNames={"#p": "pending"},
                ExpressionAttributeValues={":p": _s(pending_shard(shard)), ":cut": _s(_ts(cutoff))},
                Limit=limit,
            )
            found.extend(response.get("Items", []))
        found.sort(key=lambda item: _str(item, "created_key"))
        orders = [_order_from_item(item) for item in found[:limit]]
        return [o for o in orders if o.status == PENDING]

    def add(self, order: Order) -> None:
        put = {
            "Put": {
                "TableName": self._t.orders,
                "Item": _order_item(order),
                "ConditionExpression": "attribute_not_exists(user_id)",
            }
        }
        self._uow.buffer_items([put], lambda _: ConcurrencyConflict("That order already exists."))

    def update(self, order: Order) -> None:
        put = {
            "Put": {
                "TableName": self._t.orders,
                "Item": _order_item(order),
                "ConditionExpression": "#v = :v",
                "ExpressionAttributeNames": {"#v": "version"},
                "ExpressionAttributeValues": {":v": _n(order.version - 1)},
            }
        }
        self._uow.buffer_items([put], lambda _: ConcurrencyConflict())


class _Inbox(_Repo):
    def mark_processed(
        self, consumer: str, event_id: str, outcome: str = PROCESSED, at: datetime | None = None
    ) -> None:
        put = {
            "Put": {
                "TableName": self._t.processed,
                "Item": {
                    "consumer": _s(consumer),
                    "event_id": _s(event_id),
                    "outcome": _s(outcome),
                    "processed_at": _s(_ts(at or datetime.now(UTC))),
                },
                "ConditionExpression": "attribute_not_exists(consumer)",
            }
        }
        self._uow.buffer_items([put], lambda _: EventAlreadyProcessed(consumer, event_id), first=True)


class _Outbox(_Repo):
    def add(self, event: DomainEvent) -> None:
        put = {
            "Put": {
                "TableName": self._t.outbox,
                "Item": {
                    "event_id": _s(event.event_id),
                    "type": _s(event.type),
                    "user_id": _s(event.user_id),
                    "detail": _s(json.dumps(event.to_detail(), separators=(",", ":"))),
                    "occurred_at": _s(_ts(event.occurred_at)),
                    "pending": _s(pending_shard(bucket(event.event_id, OUTBOX_PENDING_SHARDS))),
                    "pending_key": _s(f"{_ts(event.occurred_at)}#{event.event_id}"),
                    "ttl": _n(_epoch(event.occurred_at + OUTBOX_RETENTION)),
                },
                "ConditionExpression": "attribute_not_exists(event_id)",
            }
        }
        # An event id already in the outbox is ignored (as in SQLite): the rest of the command commits.
        self._uow.buffer_items([put], _no_op)
