"""Secrets read from AWS Secrets Manager on first use, cached with a refresh so a rotation takes effect.

A function deployed with SnapStart must not read a secret while it initialises:
whatever init holds is frozen into the snapshot and shared by every environment
restored from it, and a rotation would never reach them. So a secret is read on
the first call that needs it (after the restore), kept for ``ttl_seconds``, then
read again. If Secrets Manager cannot be reached when a cached value expires,
the cached value is used a while longer (``grace_seconds``) rather than refusing
customers; without any value the read fails and the call answers 503/500.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Final

#: How long a secret is used before it is read again (a rotation takes at most this long to reach a function).
DEFAULT_TTL_SECONDS: Final = 300
#: How long an expired value may still be used while Secrets Manager cannot be reached.
DEFAULT_GRACE_SECONDS: Final = 900
#: HMAC keys shorter than this are refused.
MIN_SECRET_BYTES: Final = 16

#: A secret's current value: called on each use, cheap after the first read.
SecretSource = Callable[[], bytes]


class SecretUnavailable(RuntimeError):
    """The secret could not be read and no usable cached value exists."""


def constant_secret(value: bytes) -> SecretSource:
    """A fixed value (local runs and tests: a plain environment variable)."""
    if len(value) < MIN_SECRET_BYTES:
        raise ValueError(f"a secret must be at least {MIN_SECRET_BYTES} bytes")
    return lambda: value


class SecretsManagerSecret:
    """The ``SecretString`` of one secret (by ARN), read lazily and refreshed every ``ttl_seconds``."""

    def __init__(
        self,
        secret_id: str,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        client_factory: Callable[[], Any] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.secret_id = secret_id
        self._ttl = ttl_seconds
        self._grace = grace_seconds
        self._client_factory = client_factory or _secretsmanager_client
        self._client: Any = None
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._value: bytes | None = None
        self._read_at = 0.0

    def __call__(self) -> bytes:
        with self._lock:
            now = self._monotonic()
            if self._value is not None and now - self._read_at < self._ttl:
                return self._value
            try:
                value = self._fetch()
            except Exception as error:
                if self._value is not None and now - self._read_at < self._ttl + self._grace:
                    return self._value
                raise SecretUnavailable(f"secret {self.secret_id!r} could not be read") from error
            self._value, self._read_at = value, now
            return value

    def _fetch(self) -> bytes:
        if self._client is None:
            self._client = self._client_factory()
        answer = self._client.get_secret_value(SecretId=self.secret_id)
        text = answer.get("SecretString")
        if not isinstance(text, str) or len(text.encode("utf-8")) < MIN_SECRET_BYTES:
            raise ValueError(f"the secret must be a string of at least {MIN_SECRET_BYTES} bytes")
        return text.encode("utf-8")


def _secretsmanager_client() -> Any:
    from centli.adapters.aws_clients import make_client

    return make_client("secretsmanager")
