"""Production clock and id generator."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class UlidGenerator:
    """ULID-style ids (48-bit milliseconds + 80 random bits), monotonic within a process.

    They sort in creation order, which keeps "newest first" a plain key order.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_rand = 0

    def new_id(self, prefix: str) -> str:
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms <= self._last_ms:
                ms = self._last_ms
                self._last_rand += 1
            else:
                self._last_rand = int.from_bytes(os.urandom(10), "big") >> 1
            self._last_ms = ms
            value = (ms << 80) | (self._last_rand & ((1 << 80) - 1))
        # 26 Crockford base32 digits, most significant first (base64.b32encode's alphabet does not sort).
        digits = (_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))
        return f"{prefix}-{''.join(digits)}"
