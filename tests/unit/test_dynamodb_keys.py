"""DynamoDB ledger keys: string order is commit order, also when many commits share one stamp."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from centli.adapters.dynamodb.codecs import OPENING_KEY_TIME, entry_key, key_time, next_rank

T = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)


def test_ranks_after_one_another_sort_in_that_order_whatever_the_entry_ids() -> None:
    keys = [entry_key(T, "open-acc", "0")]
    for n in range(300):  # more than any bounded re-stamp could need
        keys.append(entry_key(T, f"trf-{999 - n}-D", next_rank(keys[-1])))
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    assert {key_time(k) for k in keys} == {T}


def test_a_later_stamp_sorts_after_any_rank_of_an_earlier_one() -> None:
    crowded = entry_key(T, "trf-z", "9999991")
    assert entry_key(T + timedelta(microseconds=1), "trf-a") > crowded
    assert entry_key(OPENING_KEY_TIME, "open-acc", "0") < entry_key(T, "trf-a")
