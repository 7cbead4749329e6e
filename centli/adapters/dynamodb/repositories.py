"""The repositories other than the ledger: a read is one request, a write one conditional transaction item."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from centli.adapters.buffered import StockChanges
from centli.adapters.dynamodb import codecs as c
from centli.adapters.dynamodb.ledger import opening_items
from centli.adapters.dynamodb.runner import Intent, Reason, check, failed, no_op, put, saw, update
from centli.adapters.dynamodb.schema import ORDER_PENDING_SHARDS, OUTBOX_PENDING_SHARDS, PENDING_ORDERS_INDEX
from centli.domain import rules
from centli.domain.catalog import Product, fold
from centli.domain.events import PROCESSED, DomainEvent
from centli.domain.idempotency import IdempotencyRecord
from centli.domain.ledger import Account, AccountRef, Beneficiary, NewAccount, Transfer
from centli.domain.money import Money
from centli.domain.orders import Order
from centli.domain.settlement import bucket
from centli.ports.repositories import Page

if TYPE_CHECKING:
    from centli.adapters.dynamodb.store import DynamoUnitOfWork

T = TypeVar("T")
OUTBOX_RETENTION = timedelta(days=7)
LIMIT_COUNTER_RETENTION = timedelta(days=3)
#: Each stock change: its update, and the condition that keeps it within the stock (see rules.refuse_stock).
STOCK_CHANGES: dict[rules.StockChange, tuple[str, str]] = {
    "reserve": ("SET reserved = reserved + :q, available = available - :q", "available >= :q"),
    "release": ("SET reserved = reserved - :q, available = available + :q", "reserved >= :q"),
    "commit": ("SET reserved = reserved - :q, stock = stock - :q", "reserved >= :q AND stock >= :q"),
}


class Repo:
    def __init__(self, uow: DynamoUnitOfWork) -> None:
        self._uow, self._store, self._t = uow, uow.store, uow.tables

    def _get(self, table: str, decode: Callable[[c.Item], T], **key: str) -> T | None:
        item = self._store.get_item(table, c.attrs(**key))
        return None if item is None else decode(item)

    def _query(self, table: str, condition: str, limit: int | None = None, **values: str) -> list[c.Item]:
        return self._store.query(table, condition, c.values(**values), limit)


class Accounts(Repo):
    def list_for_user(self, user_id: str) -> list[Account]:
        return [c.account_from_item(item) for item in self._query(self._t.accounts, "user_id = :u", u=user_id)]

    def get(self, user_id: str, account_id: str) -> Account | None:
        return self._get(self._t.accounts, c.account_from_item, user_id=user_id, account_id=account_id)

    def get_many(self, refs: Sequence[AccountRef]) -> list[Account]:
        """Consistent BatchGetItem, 100 keys a request."""
        keys = [(self._t.accounts, c.attrs(user_id=r.user_id, account_id=r.account_id)) for r in refs]
        return [c.account_from_item(item) for item in self._store.batch_get(keys).values()]

    def open(self, account: NewAccount) -> None:
        items = opening_items(self._t, account)
        new = [put(table, item, "attribute_not_exists(#pk)", pk=next(iter(item))) for table, item in items]
        self._uow.buffer_items(new, no_op)

    def require(self, user_id: str, account_id: str, minimum: Money) -> None:
        key, values = c.attrs(user_id=user_id, account_id=account_id), c.values(c=minimum.currency, m=minimum.minor)
        funded = check(self._t.accounts, key, "attribute_exists(user_id) AND currency = :c AND balance >= :m", values)
        self._uow.buffer_items(
            [funded], lambda r: rules.failed(rules.refuse_funds(saw(r[0], c.account_from_item), minimum))
        )


class Beneficiaries(Repo):
    def list_for_user(self, user_id: str) -> list[Beneficiary]:
        return [c.beneficiary_from_item(i) for i in self._query(self._t.beneficiaries, "user_id = :u", u=user_id)]

    def get(self, user_id: str, beneficiary_id: str) -> Beneficiary | None:
        return self._get(self._t.beneficiaries, c.beneficiary_from_item, user_id=user_id, beneficiary_id=beneficiary_id)

    def add(self, beneficiary: Beneficiary) -> None:
        self._uow.buffer_items([put(self._t.beneficiaries, c.beneficiary_item(beneficiary))], no_op)  # unconditional


class DailyLimits(Repo):
    def add(self, user_id: str, day: str, amount: Money, limit: Money) -> None:
        headroom = limit.minor - amount.minor
        # A missing total passes only when the amount alone fits.
        condition = "attribute_not_exists(#t) OR #t <= :h" if headroom >= 0 else "#t <= :h"
        expires = datetime.fromisoformat(day).replace(tzinfo=UTC) + LIMIT_COUNTER_RETENTION
        values = c.values(a=amount.minor, h=headroom, ttl=c.epoch(expires))
        key = c.attrs(user_id=user_id, day_currency=f"{day}#{amount.currency}")
        add = update(self._t.daily_limits, key, "SET #ttl = :ttl ADD #t :a", condition, values, t="total", ttl="ttl")

        def explain(reasons: list[Reason]) -> Exception:
            total = saw(
                reasons[0], lambda item: Money(c.number(item, "total"), amount.currency) if "total" in item else None
            )
            return rules.failed(rules.refuse_daily_total(total, amount, limit))

        self._uow.buffer_items([add], explain)

    def total(self, user_id: str, day: str, currency: str) -> Money:
        key = c.attrs(user_id=user_id, day_currency=f"{day}#{currency}")
        item = self._store.get_item(self._t.daily_limits, key)
        return Money(0 if item is None else c.number(item, "total"), currency)


class Idempotency(Repo):
    def claim(self, record: IdempotencyRecord) -> None:
        def explain(reasons: list[Reason]) -> Exception:
            existing = saw(reasons[0], c.record_from_item)
            if existing is None:  # the stored record was not returned: read it (consistent) instead
                existing = self.get(record.user_id, record.key)
            return rules.failed(rules.refuse_claim(existing, record))

        def stamp(at: datetime, posted: Sequence[Transfer]) -> None:
            item.update(c.attrs(result=c.dumps(rules.answer_at(record, posted, at).result)))

        item = c.record_item(record)
        # Expiry is checked here, with the record's own time as now: TTL deletes late.
        condition = "attribute_not_exists(user_id) OR expires_at <= :now"
        claim = put(self._t.idempotency, item, condition, c.values(now=record.created_at))
        self._uow.buffer(Intent([claim], explain, stamp), first=True)

    def get(self, user_id: str, key: str) -> IdempotencyRecord | None:
        return self._get(self._t.idempotency, c.record_from_item, user_id=user_id, idempotency_key=key)


class Products(Repo, StockChanges):
    def get(self, product_id: str) -> Product | None:
        return self._get(self._t.products, c.product_from_item, product_id=product_id)

    def search(self, query: str | None, category: str | None, limit: int, position: str | None) -> Page[Product]:
        """A filtered Scan of the catalog (the one Scan anywhere; no account or ledger path scans)."""
        words = {f"w{i}": word for i, word in enumerate(fold(query or "").split())}
        conditions = [f"contains(search_text, :{name})" for name in words]
        if category:
            conditions.append("category_folded = :cat")
            words["cat"] = fold(category)
        filters: c.Item = {"FilterExpression": " AND ".join(conditions), "ExpressionAttributeValues": c.values(**words)}
        products = map(c.product_from_item, self._store.scan_all(self._t.products, **(filters if conditions else {})))
        rows = sorted(
            (p for p in products if (position is None or p.product_id > position) and p.matches(query, category)),
            key=lambda p: p.product_id,
        )
        return Page.cut(rows, limit, lambda p: p.product_id)

    def add(self, product: Product) -> None:
        new = put(self._t.products, c.product_item(product), "attribute_not_exists(product_id)")
        self._uow.buffer_items([new], no_op)

    def _change(self, product_id: str, change: rules.StockChange, quantity: int) -> None:
        expression, condition = STOCK_CHANGES[change]
        key, condition = c.attrs(product_id=product_id), f"attribute_exists(product_id) AND {condition}"
        stock = update(self._t.products, key, expression, condition, c.values(q=quantity))
        self._uow.buffer_items(
            [stock], lambda r: rules.failed(rules.refuse_stock(saw(r[0], c.product_from_item), change, quantity))
        )


class Orders(Repo):
    def get(self, user_id: str, order_id: str) -> Order | None:
        return self._get(self._t.orders, c.order_from_item, user_id=user_id, order_id=order_id)

    def list_for_user(self, user_id: str, limit: int, position: str | None) -> Page[Order]:
        if position is None:
            items = self._query(self._t.orders, "user_id = :u", limit + 1, u=user_id)
        else:
            items = self._query(self._t.orders, "user_id = :u AND order_id < :p", limit + 1, u=user_id, p=position)
        return Page.cut([c.order_from_item(item) for item in items], limit, lambda o: o.order_id)

    def list_pending_before(self, cutoff: datetime, limit: int) -> list[Order]:
        """One Query per shard of the sparse index (each oldest first), merged: the oldest ``limit`` overall."""
        found: list[c.Item] = []
        for shard in range(ORDER_PENDING_SHARDS):
            response = self._store.call(
                "query",
                TableName=self._t.orders,
                IndexName=PENDING_ORDERS_INDEX,
                KeyConditionExpression="#p = :p AND created_key < :cut",
                ExpressionAttributeNames={"#p": "pending"},
                ExpressionAttributeValues=c.values(p=c.pending_shard(shard), cut=cutoff),
                Limit=limit,
            )
            found.extend(response.get("Items", []))
        found.sort(key=lambda item: c.text(item, "created_key"))
        return [o for o in map(c.order_from_item, found[:limit]) if o.status == c.PENDING]

    def add(self, order: Order) -> None:
        new = put(self._t.orders, c.order_item(order), "attribute_not_exists(user_id)")
        self._uow.buffer_items([new], lambda r: rules.failed(rules.refuse_new(saw(r[0], c.order_from_item), "order")))

    def update(self, order: Order) -> None:
        new = put(self._t.orders, c.order_item(order), "#v = :v", c.values(v=order.version - 1), v="version")
        self._uow.buffer_items([new], lambda r: rules.failed(rules.refuse_version(saw(r[0], c.order_from_item), order)))


class Inbox(Repo):
    def mark_processed(
        self, consumer: str, event_id: str, outcome: str = PROCESSED, at: datetime | None = None
    ) -> None:
        item = c.attrs(consumer=consumer, event_id=event_id, outcome=outcome, processed_at=at or datetime.now(UTC))
        mark = put(self._t.processed, item, "attribute_not_exists(consumer)")
        explain = lambda r: rules.failed(rules.refuse_processed(failed(r[0]), consumer, event_id))  # noqa: E731
        self._uow.buffer_items([mark], explain, first=True)


class Outbox(Repo):
    def add(self, event: DomainEvent) -> None:
        at, shard = event.occurred_at, c.pending_shard(bucket(event.event_id, OUTBOX_PENDING_SHARDS))
        item = c.attrs(event_id=event.event_id, type=event.type, user_id=event.user_id, occurred_at=at, pending=shard)
        item.update(c.attrs(detail=c.dumps(event.to_detail()), pending_key=f"{c.stamp(at)}#{event.event_id}"))
        item.update(c.attrs(ttl=c.epoch(at + OUTBOX_RETENTION)))
        # An event id already in the outbox is ignored (as in SQLite): the rest of the command commits.
        self._uow.buffer_items([put(self._t.outbox, item, "attribute_not_exists(event_id)")], no_op)
