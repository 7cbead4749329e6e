"""Signed identity assertions for AgentCore Gateway calls, each bound to one tool call.

A Gateway Lambda target receives only the tool arguments, so the customer's
identity has to travel with them. A REQUEST interceptor on the gateway (it runs
after the gateway validated the inbound JWT) writes a short-lived assertion,
HMAC-signed with a secret only the interceptor and this function hold, into
the reserved argument :data:`IDENTITY_ARGUMENT`. The model never sees it and
cannot forge one.

An assertion is good for exactly one call. It names:

- ``tool``: the full tool name (``<target>___<tool>``) the gateway calls;
- ``args``: the SHA-256 of the call's other arguments, canonical JSON (sorted
  keys, no insignificant whitespace);
- ``mid``: the MCP (JSON-RPC) message id, and ``rid``: the gateway's request id
  (``bedrockAgentCoreAwsRequestId``) when the interceptor can see it. The
  function compares both with what the gateway put in the Lambda context.
  A message id alone is no nonce (JSON-RPC ids restart in every session);
  the request id is unique per gateway request, so it is what makes a copied
  assertion fail on any other call;
- ``jti``: a unique id, remembered by this process until the assertion
  expires, so the same assertion is not accepted twice by one instance;
- ``exp``: at most :data:`MAX_ASSERTION_SECONDS` ahead.

Anything else fails closed with :class:`AssertionRefused`, whose reason the
caller logs as a security event.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping

from centli.domain.cursor import b64url, unb64url

IDENTITY_ARGUMENT = "centli_identity"
#: Longest life an assertion may claim: one tool call, not a session (DESIGN: AgentCore binding).
MAX_ASSERTION_SECONDS = 60
_MAX_TOKEN_LENGTH = 2048
#: Unique ids remembered per process; far above one instance's calls in a minute.
_MAX_REMEMBERED = 100_000


class AssertionRefused(Exception):
    """Why an assertion was not accepted; ``reason`` is a short, log-safe code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def arguments_digest(arguments: Mapping[str, object]) -> str:
    """SHA-256 of the canonical JSON of a tool call's arguments (the identity argument excluded)."""
    payload = {k: v for k, v in arguments.items() if k != IDENTITY_ARGUMENT}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def issue_assertion(
    secret: bytes,
    user_id: str,
    now: int,
    ttl_seconds: int = MAX_ASSERTION_SECONDS,
    *,
    tool: str,
    arguments: Mapping[str, object],
    message_id: object,
    request_id: str | None = None,
) -> str:
    """What the gateway interceptor writes: ``<claims>.<mac>``, base64url."""
    claims: dict[str, object] = {
        "sub": user_id,
        "tool": tool,
        "args": arguments_digest(arguments),
        "mid": str(message_id),
        "jti": os.urandom(16).hex(),
        "exp": now + ttl_seconds,
    }
    if request_id:
        claims["rid"] = request_id
    body = json.dumps(claims, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return f"{b64url(body)}.{b64url(_mac(secret, body))}"


class SeenAssertions:
    """The unique ids of assertions this process accepted, until each expires (thread-safe).

    Per process only: another Lambda instance does not see these ids, so a
    copied assertion is refused there by its binding to the gateway request
    id (and tool, arguments, message id), not by this cache.
    """

    def __init__(self, capacity: int = _MAX_REMEMBERED) -> None:
        self._capacity = capacity
        self._expiry: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def first_use(self, jti: str, expires: int, now: int) -> bool:
        with self._lock:
            while self._expiry and (next(iter(self._expiry.values())) <= now or len(self._expiry) >= self._capacity):
                self._expiry.popitem(last=False)
            if jti in self._expiry:
                return False
            self._expiry[jti] = expires
            return True


#: The process's memory of accepted assertions.
SEEN = SeenAssertions()


def verify_assertion(
    token: object,
    secret: bytes,
    now: int,
    *,
    tool: str,
    arguments: Mapping[str, object],
    message_id: object,
    request_id: object,
    seen: SeenAssertions = SEEN,
) -> str:
    """The asserted user id for this very call; raises AssertionRefused for anything else."""
    if token is None:
        raise AssertionRefused("missing")
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise AssertionRefused("malformed")
    try:
        body, mac = map(unb64url, token.split("."))
        if not hmac.compare_digest(mac, _mac(secret, body)):
            raise AssertionRefused("bad_signature")
        claims = json.loads(body)
    except ValueError:  # binascii.Error and JSONDecodeError are ValueErrors
        raise AssertionRefused("malformed") from None
    if not isinstance(claims, dict):
        raise AssertionRefused("malformed")
    subject, expires, jti = claims.get("sub"), claims.get("exp"), claims.get("jti")
    if not isinstance(subject, str) or not subject or type(expires) is not int or not isinstance(jti, str):
        raise AssertionRefused("malformed")
    if not now < expires:
        raise AssertionRefused("expired")
    if expires > now + MAX_ASSERTION_SECONDS:
        raise AssertionRefused("lifetime_too_long")
    if claims.get("tool") != tool:
        raise AssertionRefused("other_tool")
    if claims.get("args") != arguments_digest(arguments):
        raise AssertionRefused("other_arguments")
    if claims.get("mid") != str(message_id):
        raise AssertionRefused("other_message")
    if "rid" in claims and claims["rid"] != request_id:
        raise AssertionRefused("other_request")
    if not seen.first_use(jti, expires, now):
        raise AssertionRefused("reused")
    return subject


def _mac(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, b"centli-agentcore-identity\x00" + body, hashlib.sha256).digest()
