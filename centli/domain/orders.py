"""Orders and their state machine: PENDING -> CONFIRMED | CANCELLED.

Every transition returns a new order with ``version + 1``; stores accept it
only while the stored version is still the one it was read at.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from centli.domain.backoff import exponential
from centli.domain.errors import InvalidOrderState
from centli.domain.ledger import AccountRef
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
        return {
            "order_id": self.order_id,
            "user_id": self.user_id,
            "product_id": self.product_id,
            "quantity": self.quantity,
            "total_minor": self.total.minor,
            "currency": self.total.currency,
            "account_id": self.account_id,
            "seller_user_id": self.seller.user_id,
            "seller_account_id": self.seller.account_id,
            "status": self.status,
            "version": self.version,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "correlation_id": self.correlation_id,
            "cancel_reason": self.cancel_reason,
            "payment_transfer_id": self.payment_transfer_id,
            "sweep_from": None if self.sweep_from is None else self.sweep_from.isoformat(),
            "sweep_attempts": self.sweep_attempts,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Order:
        status = str(data["status"])
        if status not in _ALLOWED:
            raise ValueError(f"unknown order status {status!r}")
        return cls(
            order_id=str(data["order_id"]),
            user_id=str(data["user_id"]),
            product_id=str(data["product_id"]),
            quantity=int(data["quantity"]),
            total=Money(int(data["total_minor"]), str(data["currency"])),
            account_id=str(data["account_id"]),
            seller=AccountRef(str(data["seller_user_id"]), str(data["seller_account_id"])),
            status=status,  # type: ignore[arg-type]  # checked against _ALLOWED above
            version=int(data["version"]),
            created_at=datetime.fromisoformat(str(data["created_at"])),
            updated_at=datetime.fromisoformat(str(data["updated_at"])),
            correlation_id=str(data["correlation_id"]),
            cancel_reason=None if data.get("cancel_reason") is None else str(data["cancel_reason"]),
            payment_transfer_id=(None if data.get("payment_transfer_id") is None else str(data["payment_transfer_id"])),
            sweep_from=_sweep_from(data),
            sweep_attempts=int(data.get("sweep_attempts") or 0),
        )


def _sweep_from(data: dict[str, Any]) -> datetime | None:
    """None while it equals ``created_at`` (stores that always keep a value give the same order back)."""
    if data.get("sweep_from") is None:
        return None
    value = datetime.fromisoformat(str(data["sweep_from"]))
    return None if value == datetime.fromisoformat(str(data["created_at"])) else value
