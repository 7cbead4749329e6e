"""``centli load`` on DynamoDB: BatchWriteItem, 25 items a request, safe to run again after a failure."""

from __future__ import annotations

from typing import TYPE_CHECKING

from centli.adapters.dynamodb import codecs as c
from centli.adapters.dynamodb.ledger import opening_items
from centli.adapters.dynamodb.runner import key_text
from centli.domain.loading import refuse_destination_clashes

if TYPE_CHECKING:
    from centli.adapters.dynamodb.store import DynamoStore
    from centli.domain.catalog import Product
    from centli.domain.loading import BankData, LoadReport, Progress

BATCH_WRITE_SIZE = 25


def load(store: DynamoStore, data: BankData, progress: Progress | None = None) -> LoadReport:
    """Write what is missing. Existing accounts and products stay as they are (money and stock have
    moved since); beneficiaries are the bank's data and are replaced when they differ, as in the other
    stores. BatchWriteItem is not atomic, so every account's ledger head and opening entry are written
    in earlier batches than its account row: the row, written last, marks the account as loaded, and a
    load that stopped half-way writes the rest on its next run (no transfer can touch an account whose
    row does not exist yet)."""
    t = store.tables
    records: list[tuple[str, c.Item, list[tuple[str, c.Item]], c.Item]] = []  # (table, key, written first, marker)
    for account in data.accounts:
        (_, row), *ledger = opening_items(t, account)
        records.append((t.accounts, c.attrs(user_id=account.user_id, account_id=account.account_id), ledger, row))
    for ben in {(b.user_id, b.beneficiary_id): b for b in data.beneficiaries}.values():
        key = c.attrs(user_id=ben.user_id, beneficiary_id=ben.beneficiary_id)
        records.append((t.beneficiaries, key, [], c.beneficiary_item(ben)))
    products: dict[str, Product] = {}
    for product in data.products:
        products.setdefault(product.product_id, product)  # the first of each id
    for product in products.values():
        records.append((t.products, c.attrs(product_id=product.product_id), [], c.product_item(product)))
    clashes = [
        *((t.accounts, c.attrs(user_id=b.user_id, account_id=b.beneficiary_id)) for b in data.beneficiaries),
        *((t.beneficiaries, c.attrs(user_id=a.user_id, beneficiary_id=a.account_id)) for a in data.accounts),
    ]
    stored = store.batch_get([*((table, key) for table, key, _, _ in records), *clashes])
    refuse_destination_clashes(
        data,
        lambda user, account: (t.accounts, key_text(c.attrs(user_id=user, account_id=account))) in stored,
        lambda user, ben: (t.beneficiaries, key_text(c.attrs(user_id=user, beneficiary_id=ben))) in stored,
    )

    def missing(table: str, key: c.Item, marker: c.Item) -> bool:
        found = stored.get((table, key_text(key)))
        return found is None or (table == t.beneficiaries and found != marker)

    new = [(table, first, marker) for table, key, first, marker in records if missing(table, key, marker)]
    total = len(records)
    done = total - len(new)
    phases = [[w for _, first, _ in new for w in first], [(table, marker) for table, _, marker in new]]
    for markers, writes in enumerate(phases):
        for start in range(0, len(writes), BATCH_WRITE_SIZE):
            batch = writes[start : start + BATCH_WRITE_SIZE]
            request: dict[str, list[c.Item]] = {}
            for table, item in batch:
                request.setdefault(table, []).append({"PutRequest": {"Item": item}})
            store.until_processed("batch_write_item", request, lambda response: response.get("UnprocessedItems"))
            done += len(batch) if markers else 0
            if progress is not None:
                progress(done, total)
    if progress is not None and not new:
        progress(done, total)
    return data.report()
