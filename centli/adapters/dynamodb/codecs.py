"""DynamoDB items to and from domain values: attribute values, keys, one codec per record."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from centli.adapters.dynamodb.schema import ORDER_PENDING_SHARDS
from centli.domain.catalog import Product, fold
from centli.domain.events import DomainEvent
from centli.domain.idempotency import IdempotencyRecord
from centli.domain.ledger import Account, AccountRef, Beneficiary, Direction, LedgerEntry, Transfer
from centli.domain.money import Money
from centli.domain.orders import Order
from centli.domain.settlement import bucket, is_clearing

if TYPE_CHECKING:
    from centli.domain.audit import InboxRecord

Item = dict[str, Any]
HEAD_KEY = "~HEAD"
PENDING = "PENDING"
#: Every opening entry sorts at this instant: its key must not depend on when a (re-run) load happened.
OPENING_KEY_TIME = datetime(1970, 1, 1, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    """Fixed-width UTC text: string order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def attrs(**values: str | int | datetime) -> Item:
    """Attribute values: text, whole numbers, and instants as fixed-width UTC text."""
    return {
        k: {"N": str(v)} if isinstance(v, int) else {"S": stamp(v) if isinstance(v, datetime) else v}
        for k, v in values.items()
    }


def values(**named: str | int | datetime) -> Item:
    """ExpressionAttributeValues: ``values(a=1)`` is ``{":a": {"N": "1"}}``."""
    return {f":{name}": value for name, value in attrs(**named).items()}


def text(item: Item, name: str) -> str:
    return str(item[name]["S"])


def number(item: Item, name: str) -> int:
    return int(item[name]["N"])


def texts(item: Item, *names: str) -> list[str]:
    return [text(item, name) for name in names]


def instant(item: Item, name: str) -> datetime:
    return datetime.fromisoformat(text(item, name))


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def pending_shard(shard: int) -> str:
    """A sparse pending index's partition key value: one of its write shards."""
    return f"{PENDING}#{shard:03d}"


# the ledger ---------------------------------------------------------------------------
def partition(ref: AccountRef) -> str:
    return f"{ref.user_id}#{ref.account_id}"


def head_key(ref: AccountRef) -> Item:
    return attrs(account_key=partition(ref), entry_key=HEAD_KEY)


def entry_key(moment: datetime, entry_id: str, rank: str = "1") -> str:
    """``E#<utc stamp>#<rank>#<entry id>``: an opening (rank 0) sorts before anything stamped with it."""
    return f"E#{stamp(moment)}#{rank}#{entry_id}"


def next_rank(key: str) -> str:
    """The rank after an entry key's own, in string order: "1" < "2" < ... < "9" < "91" < ... < "991"."""
    rank = key.split("#")[2]
    return rank + "1" if rank.endswith("9") else rank[:-1] + str(int(rank[-1]) + 1)


def key_time(key: str) -> datetime:
    """The instant an entry key (or a head's ``last_sk``) was stamped with."""
    return datetime.fromisoformat(key.split("#")[1])


def account_item(a: Account) -> Item:
    return attrs(
        user_id=a.user_id, account_id=a.account_id, alias=a.alias, currency=a.currency, balance=a.balance.minor
    )


def account_from_item(item: Item) -> Account:
    money = Money(number(item, "balance"), text(item, "currency"))
    account_id, user_id, alias = texts(item, "account_id", "user_id", "alias")
    return Account(account_id, user_id, alias, money)


def entry_item(entry: LedgerEntry, key: str) -> Item:
    # user_id and timestamp are the keys of the seed's user_id-timestamp-index. A clearing account's
    # entries carry them under other names, so that index never holds them: all N clearing accounts
    # of a seller would otherwise write one index key (the seller's clearing user) on every sale.
    user, moment = ("owner_id", "at") if is_clearing(entry.account_id) else ("user_id", "timestamp")
    ref = AccountRef(entry.user_id, entry.account_id)
    return {
        **attrs(account_key=partition(ref), entry_key=key, entry_id=entry.entry_id, account_id=entry.account_id),
        **attrs(transfer_id=entry.transfer_id, direction=entry.direction, description=entry.description),
        **attrs(amount=entry.amount.minor, currency=entry.amount.currency),
        user: {"S": entry.user_id},
        moment: {"S": stamp(entry.timestamp)},
    }


def entry_from_item(item: Item, balance_after: int) -> LedgerEntry:
    user, moment = ("user_id", "timestamp") if "user_id" in item else ("owner_id", "at")  # see entry_item
    entry_id, account_id, user_id, transfer_id, description, currency = texts(
        item, "entry_id", "account_id", user, "transfer_id", "description", "currency"
    )
    direction: Direction = "DEBIT" if text(item, "direction") == "DEBIT" else "CREDIT"
    amount, after = Money(number(item, "amount"), currency), Money(balance_after, currency)
    return LedgerEntry(
        entry_id, account_id, user_id, transfer_id, direction, amount, description, instant(item, moment), after
    )


def walk_back(newest_first: list[Item], balance: int) -> list[LedgerEntry]:
    """Entries newest first, each with its balance_after, walking back from the balance after the newest."""
    entries: list[LedgerEntry] = []
    for item in newest_first:
        entries.append(entry_from_item(item, balance))
        balance -= entries[-1].signed_minor
    return entries


def transfer_item(transfer: Transfer) -> Item:
    return attrs(user_id=transfer.user_id, transfer_id=transfer.transfer_id, data=dumps(transfer.to_dict()))


def transfer_from_item(item: Item) -> Transfer:
    return Transfer.from_dict(json.loads(text(item, "data")))


# the other records ---------------------------------------------------------------------
_BENEFICIARY = ("beneficiary_id", "user_id", "alias", "account_id", "account_user_id")  # the fields' order


def beneficiary_item(ben: Beneficiary) -> Item:
    return attrs(**{name: getattr(ben, name) for name in _BENEFICIARY})


def beneficiary_from_item(item: Item) -> Beneficiary:
    return Beneficiary(*texts(item, *_BENEFICIARY))


def product_item(p: Product) -> Item:
    return {
        **attrs(
            product_id=p.product_id, name=p.name, category=p.category, price=p.price.minor, currency=p.price.currency
        ),
        # DynamoDB conditions cannot subtract attributes, so `available` is kept beside stock and reserved.
        **attrs(stock=p.stock, reserved=p.reserved, available=p.available),
        **attrs(seller_user_id=p.seller.user_id, seller_account_id=p.seller.account_id),
        **attrs(search_text=fold(f"{p.name} {p.category}"), category_folded=fold(p.category)),
    }


def product_from_item(item: Item) -> Product:
    price = Money(number(item, "price"), text(item, "currency"))
    seller = AccountRef(text(item, "seller_user_id"), text(item, "seller_account_id"))
    stock, reserved = number(item, "stock"), number(item, "reserved")
    product_id, name, category = texts(item, "product_id", "name", "category")
    return Product(product_id, name, category, price, stock, reserved, seller)


def order_item(order: Order) -> Item:
    item = attrs(user_id=order.user_id, order_id=order.order_id, status=order.status, version=order.version)
    item.update(attrs(data=dumps(order.to_dict())))
    if order.status == PENDING:  # the sweeper's sparse index holds only pending orders, write-sharded
        shard = pending_shard(bucket(order.order_id, ORDER_PENDING_SHARDS))
        item.update(attrs(pending=shard, created_key=f"{stamp(order.sweep_time)}#{order.order_id}"))
    return item


def order_from_item(item: Item) -> Order:
    return Order.from_dict(json.loads(text(item, "data")))


def record_item(record: IdempotencyRecord) -> Item:
    return {
        **attrs(user_id=record.user_id, idempotency_key=record.key, operation=record.operation),
        **attrs(fingerprint=record.fingerprint, result=dumps(record.result)),
        **attrs(created_at=record.created_at, expires_at=record.expires_at, ttl=epoch(record.expires_at)),
    }


def record_from_item(item: Item) -> IdempotencyRecord:
    user_id, key, operation, fingerprint = texts(item, "user_id", "idempotency_key", "operation", "fingerprint")
    result, created, expires = (
        json.loads(text(item, "result")),
        instant(item, "created_at"),
        instant(item, "expires_at"),
    )
    return IdempotencyRecord(user_id, key, operation, fingerprint, result, created, expires)


def inbox_record(item: Item) -> InboxRecord:
    from centli.domain.audit import InboxRecord  # audit and trace are operator paths

    outcome = text(item, "outcome") if "outcome" in item else None
    at = instant(item, "processed_at") if "processed_at" in item else None
    return InboxRecord(text(item, "consumer"), text(item, "event_id"), outcome, at)


def event_from_stream_image(image: Item) -> DomainEvent:
    """An outbox event from its item (or its DynamoDB Streams ``NewImage``, the item as written)."""
    event = DomainEvent.from_detail(json.loads(text(image, "detail")))
    return replace(event, occurred_at=instant(image, "occurred_at"))  # at full precision
