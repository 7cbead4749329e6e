"""Opaque, tamper-evident pagination cursors bound to the customer.

A cursor carries a store's position (itself opaque) and the list it belongs
to, signed with HMAC-SHA256 over the customer's id: a cursor edited, moved to
another list, or replayed by another customer is rejected.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable

from centli.domain.errors import InvalidCursor

MAX_CURSOR_LENGTH = 2048


class CursorCodec:
    """``secret`` is the key, or a callable giving the current key (read lazily, so a deployed
    function fetches it on the first page it signs, never while it initialises)."""

    def __init__(self, secret: bytes | Callable[[], bytes]) -> None:
        if isinstance(secret, bytes):
            _check(secret)
        self._secret = secret

    def _key(self) -> bytes:
        return self._secret if isinstance(self._secret, bytes) else _check(self._secret())

    def _mac(self, user_id: str, body: bytes) -> bytes:
        return hmac.new(self._key(), user_id.encode("utf-8") + b"\x00" + body, hashlib.sha256).digest()[:16]

    def encode(self, user_id: str, scope: str, position: str) -> str:
        body = json.dumps({"s": scope, "p": position}, separators=(",", ":")).encode("utf-8")
        return f"{b64url(body)}.{b64url(self._mac(user_id, body))}"

    def decode(self, cursor: str, user_id: str, scope: str) -> str:
        """The position inside ``cursor``, or :class:`InvalidCursor`."""
        if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR_LENGTH or cursor.count(".") != 1:
            raise InvalidCursor(field="cursor")
        body_text, mac_text = cursor.split(".")
        try:
            body, mac = unb64url(body_text), unb64url(mac_text)
        except ValueError:  # binascii.Error is one
            raise InvalidCursor(field="cursor") from None
        if not hmac.compare_digest(mac, self._mac(user_id, body)):
            raise InvalidCursor(field="cursor")
        try:
            data = json.loads(body)
        except ValueError:
            raise InvalidCursor(field="cursor") from None
        if not isinstance(data, dict) or data.get("s") != scope or not isinstance(data.get("p"), str):
            raise InvalidCursor(field="cursor")
        return str(data["p"])


def _check(secret: bytes) -> bytes:
    if len(secret) < 16:
        raise ValueError("the cursor secret must be at least 16 bytes")
    return secret


def b64url(raw: bytes) -> str:
    """Unpadded base64url (signed tokens: cursors here, the AgentCore identity assertion)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
