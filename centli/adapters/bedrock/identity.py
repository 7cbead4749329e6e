"""Signed identity assertions for AgentCore Gateway calls.

A Gateway Lambda target receives only the tool arguments, so the customer's
identity has to travel with them. A REQUEST interceptor on the gateway (it runs
after the gateway validated the inbound JWT) writes a short-lived assertion,
HMAC-signed with a secret only the interceptor and this function hold, into
the reserved argument :data:`IDENTITY_ARGUMENT`. The model never sees it and
cannot forge one; anything else fails closed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json

IDENTITY_ARGUMENT = "centli_identity"
#: Longest life an assertion may claim: it covers one tool call, not a session.
MAX_ASSERTION_SECONDS = 300
_MAX_TOKEN_LENGTH = 1024


def issue_assertion(secret: bytes, user_id: str, now: int, ttl_seconds: int = 60) -> str:
    """What the gateway interceptor writes: ``<claims>.<mac>``, base64url."""
    body = json.dumps({"sub": user_id, "exp": now + ttl_seconds}, separators=(",", ":")).encode("utf-8")
    return f"{_b64(body)}.{_b64(_mac(secret, body))}"


def verify_assertion(token: object, secret: bytes, now: int) -> str | None:
    """The asserted user id, or None for anything missing, forged, expired or too long-lived."""
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_LENGTH or token.count(".") != 1:
        return None
    body_text, mac_text = token.split(".")
    try:
        body = _unb64(body_text)
        mac = _unb64(mac_text)
        if not hmac.compare_digest(mac, _mac(secret, body)):
            return None
        claims = json.loads(body)
    except (ValueError, binascii.Error):
        return None
    if not isinstance(claims, dict):
        return None
    subject, expires = claims.get("sub"), claims.get("exp")
    if not isinstance(subject, str) or not subject or type(expires) is not int:
        return None
    if not now < expires <= now + MAX_ASSERTION_SECONDS:
        return None
    return subject


def _mac(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, b"centli-agentcore-identity\x00" + body, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
