"""Orders and their state machine: PENDING -> CONFIRMED | CANCELLED.

Every transition returns a new order with ``version + 1``; stores accept it
only while the stored version is still the one it was read at.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from centli.domain.backoff import exponential
from centli.domain.errors import InvalidOrderState
from centli.domain.ledger import AccountRef, from_flat, to_flat
from centli.domain.money import Money

OrderStatus = Literal["PENDING", "CONFIRMED", "CANCELLED"]
#: The longest the sweeper waits before acting on a stuck order again.
MAX_SWEEP_BACKOFF = timedelta(hours=6)
_ALLOWED: dict[str, frozenset[str]] = {
    "PENDING": frozenset({"CONFIRMED", "CANCELLED"}),
    "CONFIRMED": frozenset(),
    "CANCELLED": frozenset(),
}


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    user_id: str
    product_id: str
    quantity: int
    total: Money
    account_id: str
    seller: AccountRef
    status: OrderStatus
    version: int
    created_at: datetime
    updated_at: datetime
    correlation_id: str
    cancel_reason: str | None = None
    payment_transfer_id: str | None = None
    #: When the sweeper's timeout counts from: ``created_at`` until the sweeper acts on the
    #: order, then pushed later each time (backoff), so an order that keeps failing waits its
    #: turn behind the others instead of starving them.
    sweep_from: datetime | None = None
    sweep_attempts: int = 0

    @property
    def sweep_time(self) -> datetime:
        return self.created_at if self.sweep_from is None else self.sweep_from

    def backed_off(self, now: datetime, timeout: timedelta) -> Order:
        """The order after the sweeper acted on it: next due ``timeout * 2**attempts`` from now (capped)."""
        attempts = self.sweep_attempts + 1
        wait = exponential(attempts - 1, timeout, MAX_SWEEP_BACKOFF)
        # Stored as "when the timeout counts from", so the sweeper's one query (sweep_time < now - timeout) finds it.
        return replace(
            self, version=self.version + 1, sweep_attempts=attempts, sweep_from=now + wait - timeout, updated_at=now
        )

    def _move(self, status: OrderStatus, at: datetime, **changes: Any) -> Order:
        if status not in _ALLOWED[self.status]:
            raise InvalidOrderState(f"An order that is {self.status} cannot become {status}.")
        return replace(self, status=status, version=self.version + 1, updated_at=at, **changes)

    def confirm(self, at: datetime, payment_transfer_id: str) -> Order:
        return self._move("CONFIRMED", at, payment_transfer_id=payment_transfer_id)

    def cancel(self, at: datetime, reason: str) -> Order:
        return self._move("CANCELLED", at, cancel_reason=reason)

    def to_dict(self) -> dict[str, Any]:
        return to_flat(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Order:
        if data["status"] not in _ALLOWED:
            raise ValueError(f"unknown order status {data['status']!r}")
        order = from_flat(cls, data)
        # sweep_from is None while it equals created_at (stores that always keep a value give the same order back)
        return replace(order, sweep_from=None) if order.sweep_from == order.created_at else order
