"""Idempotency records: same key + same request returns the original result.

Keys are scoped to the customer. A record lives 24 h; expiry is checked in
code by every store, because DynamoDB TTL deletes late and is no timer.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from centli.domain.errors import DomainError, IdempotencyConflict, InvalidInput

T = TypeVar("T")

IDEMPOTENCY_WINDOW = timedelta(hours=24)
MAX_KEY_LENGTH = 128
_KEY_RE = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_KEY_LENGTH}}}", re.ASCII)


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    user_id: str
    key: str
    operation: str
    fingerprint: str
    result: dict[str, Any]
    created_at: datetime
    expires_at: datetime

    def is_live(self, now: datetime) -> bool:
        return now < self.expires_at

    def same_request(self, operation: str, fingerprint: str) -> bool:
        return self.operation == operation and self.fingerprint == fingerprint


def fingerprint(operation: str, params: dict[str, Any]) -> str:
    """A stable digest of an operation and its canonical parameters."""
    canonical = json.dumps(
        {"operation": operation, "params": params}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def derive_key(session_id: str, utterance: str, operation: str, params: dict[str, Any]) -> str:
    """The key for a write that came without one: the same agent turn retried yields the same key; a new turn
    (a new utterance) a new one."""
    digest = hashlib.sha256()
    for part in (session_id, utterance, fingerprint(operation, params)):
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    return "derived-" + digest.hexdigest()[:40]


@dataclass(frozen=True, slots=True)
class Written(Generic[T]):
    """A write command's result, and whether it is an earlier result returned again (a replay)."""

    value: T
    replayed: bool


class DuplicateIdempotencyKey(Exception):
    """A unit of work's commit found the key holding a live record; the service answers the original result
    or an :class:`~centli.domain.errors.IdempotencyConflict`."""

    def __init__(self, existing: IdempotencyRecord) -> None:
        super().__init__(f"idempotency key already used for {existing.operation}")
        self.existing = existing


def new_record(
    user_id: str,
    key: str,
    operation: str,
    fingerprint_: str,
    result: dict[str, Any],
    now: datetime,
    window: timedelta = IDEMPOTENCY_WINDOW,
) -> IdempotencyRecord:
    return IdempotencyRecord(
        user_id=user_id,
        key=key,
        operation=operation,
        fingerprint=fingerprint_,
        result=result,
        created_at=now,
        expires_at=now + window,
    )


def validate_key(raw: object, field_name: str = "idempotency_key") -> str:
    """An idempotency key from input: 1 to 128 letters, digits, dashes or underscores.

    The narrow alphabet keeps customers' keys apart from the internal ones
    (``order-payment:<order_id>``), which always contain a colon.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput("An idempotency key is required for this request.", field=field_name)
    key = raw.strip()
    if not _KEY_RE.fullmatch(key):
        raise InvalidInput(
            "The idempotency key must be 1 to 128 letters, digits, dashes or underscores.", field=field_name
        )
    return key


@dataclass(frozen=True, slots=True)
class KeyedRequest:
    """One write command under its customer's idempotency key: the record it claims, and what a repeat gets."""

    user_id: str
    key: str
    operation: str
    fingerprint: str
    now: datetime

    @classmethod
    def of(cls, user_id: str, key: str, operation: str, params: dict[str, Any], now: datetime) -> KeyedRequest:
        return cls(user_id, key, operation, fingerprint(operation, params), now)

    def record(self, result: dict[str, Any]) -> IdempotencyRecord:
        return new_record(self.user_id, self.key, self.operation, self.fingerprint, result, self.now)

    def replay(self, existing: IdempotencyRecord) -> dict[str, Any]:
        """The original result for a repeated request, or IDEMPOTENCY_CONFLICT for a different one."""
        if not existing.same_request(self.operation, self.fingerprint):
            raise IdempotencyConflict(field="idempotency_key")
        return existing.result

    def recorded_or_raise(self, existing: IdempotencyRecord | None, rejected: DomainError) -> dict[str, Any]:
        """The original result when this exact request already succeeded under its key; else ``rejected``.

        For a check that runs before the claim (a limit, a beneficiary, a price): it may have changed since
        the original was accepted, and a retry must still get its result.
        """
        if (
            existing is not None
            and existing.is_live(self.now)
            and existing.same_request(self.operation, self.fingerprint)
        ):
            return existing.result
        raise rejected
