"""Every request through one circuit breaker; one ``TransactWriteItems`` per commit, its cancellation explained.

A unit of work hands the runner *intents*: transaction items with their conditions, a function that
explains their failure from what each condition saw (ALL_OLD), and optionally one that writes the commit's
stamp into them. Cancellation reasons are matched to intents by item index, in buffer order (idempotency
and inbox claims first: they win). An intent answers with the error to raise; ``None`` (a no-op: drop
me); or ``Restamp(at)`` (stamp the commit ``at``, which rewrites my items), and the rest are sent again.
``TransactionConflict`` is retried with jittered backoff, then becomes a 409.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from centli.adapters.aws_clients import make_client
from centli.adapters.dynamodb.codecs import Item
from centli.adapters.resilience import CircuitBreaker, retry_with_jitter
from centli.domain.errors import ConcurrencyConflict, DependencyUnavailable
from centli.domain.ledger import Transfer
from centli.domain.rules import HELD, Seen
from centli.ports.faults import FaultPoints, NoFaults

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient

    from centli.ports.audit import ReadProgress

T = TypeVar("T")
Reason = dict[str, Any]
#: Errors that mean the dependency, not the request, is in trouble.
_DEPENDENCY_ERRORS = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
_DEPENDENCY_ERRORS |= {"InternalServerError", "ServiceUnavailable", "ResourceNotFoundException"}
_THROTTLED = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"})
#: Attempts per commit (the first included) while other transactions hold its items.
CONFLICT_ATTEMPTS = 4
BATCH_GET_SIZE = 100
BATCH_ATTEMPTS = 8


@dataclass(frozen=True)
class Restamp:
    """An intent's answer to a cancellation: "stamp the whole commit ``at`` and send it again"."""

    at: datetime


Explain = Callable[[list[Reason]], Exception | Restamp | None]
#: Rewrites an intent's items that carry the commit's stamp, given the transfers the commit posts.
Stamp = Callable[[datetime, Sequence[Transfer]], None]


@dataclass(eq=False)
class Intent:
    items: list[Item]
    explain: Explain
    stamp: Stamp | None = None


def _item(
    kind: str, table: str, condition: str | None, values: Item | None, names: dict[str, str], **body: Any
) -> Item:
    """One transaction item; a failed condition returns the stored item (ALL_OLD), so the store can hand
    the domain what the condition saw without another read."""
    if condition is not None:
        body.update(ConditionExpression=condition, ReturnValuesOnConditionCheckFailure="ALL_OLD")
    if values:
        body["ExpressionAttributeValues"] = values
    if names:  # ``pk="user_id"`` stands for ``#pk``
        body["ExpressionAttributeNames"] = {f"#{k}": v for k, v in names.items()}
    return {kind: {"TableName": table, **body}}


def put(table: str, item: Item, condition: str | None = None, values: Item | None = None, **names: str) -> Item:
    return _item("Put", table, condition, values, names, Item=item)


def update(table: str, key: Item, expression: str, condition: str, values: Item, **names: str) -> Item:
    return _item("Update", table, condition, values, names, Key=key, UpdateExpression=expression)


def check(table: str, key: Item, condition: str, values: Item | None = None) -> Item:
    return _item("ConditionCheck", table, condition, values, {}, Key=key)


def failed(reason: Reason) -> bool:
    return reason.get("Code") == "ConditionalCheckFailed"


def saw(reason: Reason, decode: Callable[[Item], T]) -> Seen[T]:
    """What an item's condition saw, for the domain's rules: HELD when it held (DynamoDB then returns
    nothing), else the stored item decoded (ALL_OLD), or None when it was missing."""
    if not failed(reason):
        return HELD
    old: Item | None = reason.get("Item")
    return None if old is None else decode(old)


def no_op(_: list[Reason]) -> None:
    """Nothing to explain: a write skipped when its item exists already (or one with no condition)."""
    return None


class _TransactionConflict(ConcurrencyConflict):
    """Another transaction touched one of the items at the same time: safe to resend."""


class _Unprocessed(Exception):
    """A batch request left some of its keys or items for later."""


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def condition_failed(error: ClientError) -> bool:
    """A single-item write refused by its condition."""
    return _error_code(error) == "ConditionalCheckFailedException"


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


def key_text(key: Item) -> str:
    """A key as hashable text (its attributes in name order)."""
    return json.dumps(key, sort_keys=True)


class Runner:
    """One client, one circuit breaker, the fault points, and the conflict retries."""

    def __init__(self, client: DynamoDBClient, faults: FaultPoints | None, breaker: CircuitBreaker | None) -> None:
        self.client: Any = client
        self.faults: FaultPoints = faults or NoFaults()
        self.breaker = breaker or CircuitBreaker("dynamodb")
        self.conflict_attempts = CONFLICT_ATTEMPTS
        self.sleep: Callable[[float], None] = time.sleep

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

    def all_items(self, operation: str, progress: ReadProgress | None = None, **params: Any) -> list[Item]:
        """The items of a Query or Scan, page by page to its end; ``progress`` hears the count after each page."""
        items: list[Item] = []
        while True:
            response = self.call(operation, **params)
            items.extend(response.get("Items", []))
            if progress is not None:
                progress(params["TableName"], len(items))
            if "LastEvaluatedKey" not in response:
                return items
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def query(self, table: str, condition: str, values: Item, limit: int | None = None, **params: Any) -> list[Item]:
        """One consistent Query, newest first with a ``limit``, else oldest first and followed to its end."""
        params.update(KeyConditionExpression=condition, ExpressionAttributeValues=values)
        if limit is None:
            return self.all_items("query", TableName=table, ConsistentRead=True, **params)
        params.update(ScanIndexForward=False, Limit=limit)
        items: list[Item] = self.call("query", TableName=table, ConsistentRead=True, **params).get("Items", [])
        return items

    def until_processed(self, operation: str, request: dict[str, Any], rest: Callable[[Any], Any]) -> None:
        """A batch request, resent with what ``rest`` says it left unprocessed (jittered backoff) until none is."""
        left = {"RequestItems": request}

        def send() -> None:
            left["RequestItems"] = rest(self.call(operation, **left))
            if left["RequestItems"]:
                raise _Unprocessed()

        try:
            retry_with_jitter(
                send,
                should_retry=lambda e: isinstance(e, _Unprocessed),
                attempts=BATCH_ATTEMPTS,
                max_delay=2.0,
                sleep=self.sleep,
            )
        except _Unprocessed:
            raise DependencyUnavailable() from None

    def batch_get(self, keys: Sequence[tuple[str, Item]]) -> dict[tuple[str, str], Item]:
        """The stored items under ``keys`` (consistent BatchGetItem, 100 keys a request), by (table, key text)."""
        found: dict[tuple[str, str], Item] = {}
        unique = list({(table, key_text(key)): (table, key) for table, key in keys}.values())
        names = {table: sorted(key) for table, key in unique}

        def collect(response: dict[str, Any]) -> Any:
            for table, items in response.get("Responses", {}).items():
                found.update(((table, key_text({k: item[k] for k in names[table]})), item) for item in items)
            return response.get("UnprocessedKeys")

        for start in range(0, len(unique), BATCH_GET_SIZE):
            request: dict[str, Any] = {}
            for table, key in unique[start : start + BATCH_GET_SIZE]:
                request.setdefault(table, {"Keys": [], "ConsistentRead": True})["Keys"].append(key)
            self.until_processed("batch_get_item", request, collect)
        return found

    def transact(self, intents: Sequence[Intent], at: datetime, posted: Sequence[Transfer] = ()) -> datetime:
        """Send every intent's items in one TransactWriteItems stamped ``at``; the stamp it committed with."""
        live = list(intents)

        def stamp(moment: datetime) -> None:
            nonlocal at
            at = moment
            for intent in live:
                if intent.stamp is not None:
                    intent.stamp(at, posted)

        def attempt() -> None:
            nonlocal live
            while items := [item for intent in live for item in intent.items]:
                try:
                    self.call("transact_write_items", TransactItems=items)
                    return
                except ClientError as error:
                    if _error_code(error) != "TransactionCanceledException":
                        raise
                    reasons: list[Reason] = list(error.response.get("CancellationReasons", []))  # type: ignore[arg-type]
                    live, restamp = _explain(live, reasons, error)
                    if restamp is not None:
                        stamp(restamp)

        stamp(at)
        conflicted = lambda e: isinstance(e, _TransactionConflict)  # noqa: E731
        retry_with_jitter(attempt, should_retry=conflicted, attempts=self.conflict_attempts, sleep=self.sleep)
        return at


def _explain(intents: list[Intent], reasons: list[Reason], error: ClientError) -> tuple[list[Intent], datetime | None]:
    """Raise the domain error the first failing intent names, or return the intents left to resend (and
    the latest stamp one asked for)."""
    start, left, resend, restamp = 0, [], False, None
    for intent in intents:
        own = reasons[start : start + len(intent.items)]
        start += len(intent.items)
        named = intent.explain(own) if any(failed(r) for r in own) else intent
        if isinstance(named, Exception):
            raise named
        if isinstance(named, Restamp):
            restamp = named.at if restamp is None else max(restamp, named.at)
        resend = resend or named is not intent
        if named is not None:
            left.append(intent)
    if resend:
        return left, restamp
    codes = {str(r.get("Code")) for r in reasons} - {"None"}
    if "TransactionConflict" in codes:
        raise _TransactionConflict()
    if codes & _THROTTLED:
        raise DependencyUnavailable() from error
    raise error  # a validation error inside the transaction: a bug, not a customer's problem
