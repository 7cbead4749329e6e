"""Writes over MCP wait for the human: a quote, confirmed out of the model's reach, commits once.

A :class:`Quote` is what the customer is asked to approve: the operation, its
validated parameters (with the idempotency key the commit will use) and the
lines a person reads (what, to whom, how much, from which account). It lives
only in this process, under an unguessable id, for a short time. Its states:

``pending`` -> ``committing`` -> ``committed``, or ``pending`` -> ``declined`` / ``expired``.

Only one caller ever wins ``pending -> committing`` (:meth:`Confirmations.claim`),
and the commit carries an idempotency key bound to the quote, so an accepted
quote moves money exactly once; a declined or expired one moves nothing.
Nothing the model sends can move a quote out of ``pending``: confirmation comes
from the MCP client's elicitation answer or from the confirmation page.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar

import anyio

from centli.domain.application import Application
from centli.domain.errors import DestinationNotFound, DomainError, InvalidInput
from centli.domain.ledger import last4
from centli.domain.money import Money
from centli.domain.policy import MAX_CONCEPT_LENGTH
from centli.entrypoints.operations import Operation
from centli.entrypoints.pipeline import AgentResult, Outcome, error_body, neutral_call
from centli.entrypoints.wire import CreatePurchaseRequest, CreateTransferRequest, Request

RequestT = TypeVar("RequestT", bound=Request)
#: How long a customer has to confirm a write (seconds).
DEFAULT_CONFIRM_SECONDS: Final = 300.0
#: Quotes kept at most (finished ones are forgotten first): a runaway model cannot fill memory.
MAX_QUOTES: Final = 1000


class TooManyQuotes(DomainError):
    code = "TOO_MANY_CONFIRMATIONS"
    status = 409  # the contract's status for a conflict with work in progress
    default_message = (
        "Too many confirmations are waiting for the customer. Nothing was done. "
        "Wait for the open ones to be answered or to expire, then ask again."
    )


log = logging.getLogger("centli.mcp")
_INTERNAL_MESSAGE: Final = "Something went wrong on our side. Please try again later."

State = Literal["pending", "committing", "committed", "declined", "expired"]
#: How the human is asked: in the MCP client (form) or on the bank's page (url).
Mode = Literal["form", "url"]


@dataclass
class Quote:
    quote_id: str
    user_id: str
    operation: Operation
    #: The validated request, idempotency key included: what the commit sends, never what the model resends.
    parameters: dict[str, Any]
    title: str
    lines: tuple[tuple[str, str], ...]
    mode: Mode
    expires_at: float
    #: Proves a confirmation POST came from the page this process served (with the same-origin check).
    page_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    #: One correlation id from the question to the commit, in every log line of this write.
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    state: State = "pending"
    outcome: Outcome | None = None
    done: anyio.Event = field(default_factory=anyio.Event)

    @property
    def text(self) -> str:
        """The quote as plain text, for a client's confirmation dialog."""
        details = "\n".join(f"{label}: {value}" for label, value in self.lines)
        return f"{self.title}\n{details}\nConfirm only if you asked for this."

    def seconds_left(self, now: float) -> float:
        return max(0.0, self.expires_at - now)


class Confirmations:
    """The quotes of one process; every transition happens under one lock."""

    def __init__(self, *, ttl: float = DEFAULT_CONFIRM_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        if not ttl > 0:
            raise ValueError("the confirmation time must be positive")
        self.ttl = ttl
        self._clock = clock
        self._quotes: dict[str, Quote] = {}
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._clock()

    def open(
        self, user_id: str, op: Operation, request: Request, title: str, lines: list[tuple[str, str]], mode: Mode
    ) -> Quote:
        quote_id = secrets.token_urlsafe(24)
        parameters = request.model_dump(mode="json", exclude_none=True)
        # A key bound to this quote when the model sent none: a retried commit of it replays, never repeats.
        parameters.setdefault("idempotency_key", f"mcp-{quote_id}"[:128])
        quote = Quote(quote_id, user_id, op, parameters, title, tuple(lines), mode, self.now() + self.ttl)
        with self._lock:
            self._forget_old()
            self._quotes[quote_id] = quote
        return quote

    def get(self, quote_id: str) -> Quote | None:
        with self._lock:
            quote = self._quotes.get(quote_id)
            if quote is not None:
                self._expire(quote)
            return quote

    def claim(self, quote: Quote) -> bool:
        """``pending -> committing``: True for exactly one caller, and only before the quote expires."""
        with self._lock:
            self._expire(quote)
            if quote.state != "pending":
                return False
            quote.state = "committing"
            return True

    def decline(self, quote: Quote) -> bool:
        with self._lock:
            self._expire(quote)
            if quote.state != "pending":
                return False
            quote.state = "declined"
        quote.done.set()
        return True

    def finish(self, quote: Quote, outcome: Outcome) -> None:
        with self._lock:
            quote.state = "committed"
            quote.outcome = outcome
        quote.done.set()

    def expire(self, quote: Quote) -> State:
        """Close a quote nobody answered in time (the caller's own timer ran out); a decided one keeps its state."""
        with self._lock:
            if quote.state == "pending":
                quote.state = "expired"
            state = quote.state
        if state == "expired":
            quote.done.set()
        return state

    def _expire(self, quote: Quote) -> None:
        if quote.state == "pending" and self._clock() >= quote.expires_at:
            quote.state = "expired"

    def _forget_old(self) -> None:
        """Drop long-finished quotes, then the oldest finished ones; a live quote (pending or committing)
        is never evicted, so a model looping on writes cannot cancel the one the human is reading."""
        now = self._clock()
        for quote_id, quote in list(self._quotes.items()):
            self._expire(quote)
            if quote.state != "committing" and now >= quote.expires_at + self.ttl:
                del self._quotes[quote_id]
        finished = [q for q, quote in self._quotes.items() if quote.state not in ("pending", "committing")]
        for quote_id in finished[: max(0, len(self._quotes) - MAX_QUOTES + 1)]:
            del self._quotes[quote_id]
        if len(self._quotes) >= MAX_QUOTES:
            raise TooManyQuotes()


async def commit_claimed(confirmations: Confirmations, quote: Quote) -> Outcome:
    """Commit a quote this caller claimed and record the outcome, shielded: a cancelled caller (a closed
    connection, a timeout) must never leave money moved and the quote still "committing"."""
    with anyio.CancelScope(shield=True):
        try:
            outcome = await anyio.to_thread.run_sync(commit, quote)
        except Exception:
            # runtime.run never raises for a domain failure; anything else must still finish the quote,
            # or its waiters would hang. The idempotency key makes a retry of an unknown outcome safe.
            log.exception("confirmed write failed", extra={"correlation_id": quote.correlation_id})
            outcome = Outcome(
                AgentResult(500, error_body("INTERNAL_ERROR", _INTERNAL_MESSAGE)), quote.operation, "INTERNAL_ERROR"
            )
        confirmations.finish(quote, outcome)
    return outcome


def commit(quote: Quote) -> Outcome:
    """Run the quoted write through the one runtime (blocking: call it from a worker thread)."""
    from centli.entrypoints import runtime

    call = neutral_call(
        quote.operation.operation_id, quote.parameters, quote.user_id, correlation_id=quote.correlation_id
    )
    return runtime.run(
        call, quote.operation.action_group, service=f"centli-{quote.operation.action_group}", agent_format="mcp"
    )


# quotes -------------------------------------------------------------------------------
def describe(app: Application, user_id: str, op: Operation, request: Request) -> tuple[str, list[tuple[str, str]]]:
    """The title and lines a person reads; reads the store as the customer, so another's data answers 404.

    Raises :class:`DomainError` for what the commit would refuse anyway (a foreign account, an unknown
    product or destination, a malformed amount), so nobody is asked to approve it.
    """
    builder = _DESCRIBERS.get(op.operation_id)
    if builder is None:  # a new write without a quote must not run unconfirmed
        raise InvalidInput(f"{op.operation_id} cannot be confirmed here.")
    return builder(app, user_id, request)


#: Longest piece of customer- or model-written text a quote shows: all of a concept, so the
#: customer sees every character the recipient will see.
MAX_SHOWN_TEXT: Final = max(120, MAX_CONCEPT_LENGTH)


def shown(text: object) -> str:
    """Text someone else wrote (an alias, a concept, a product name), made safe to show in a quote: one line,
    no control or format characters (no fake extra lines, no right-to-left tricks), length-limited, quoted."""
    cleaned = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in str(text))
    single = " ".join(cleaned.split())
    if len(single) > MAX_SHOWN_TEXT:
        single = single[: MAX_SHOWN_TEXT - 1] + "…"
    return f"“{single}”"


def _describe_transfer(app: Application, user_id: str, request: Request) -> tuple[str, list[tuple[str, str]]]:
    p = _as(request, CreateTransferRequest)
    source = app.banking.get_balance(user_id, p.from_account_id)
    amount = Money(p.amount, source.currency)
    destination = _destination(app, user_id, p.destination_id)
    lines = [
        ("Amount", f"{amount.to_decimal_string()} {amount.currency}"),
        ("From", f"{shown(source.alias)} (account ending {last4(source.account_id)})"),
        ("To", destination),
    ]
    if p.concept:
        lines.append(("Concept", shown(p.concept)))
    return "Send money", lines


def _destination(app: Application, user_id: str, destination_id: str) -> str:
    """Own accounts first, then saved beneficiaries: the order in which the bank resolves ``destination_id``."""
    for account in app.banking.list_accounts(user_id):
        if account.account_id == destination_id:
            return f"your own account {shown(account.alias)} (ending {last4(account.account_id)})"
    for beneficiary in app.banking.list_beneficiaries(user_id):
        if beneficiary.beneficiary_id == destination_id:
            return f"{shown(beneficiary.alias)}, saved beneficiary (account ending {beneficiary.account_last4})"
    raise DestinationNotFound(field="destination_id")


def _describe_purchase(app: Application, user_id: str, request: Request) -> tuple[str, list[tuple[str, str]]]:
    p = _as(request, CreatePurchaseRequest)
    account = app.banking.get_balance(user_id, p.account_id)
    product = app.marketplace.get_product(p.product_id)
    quantity = p.quantity
    total = product.price.times(quantity)
    return "Buy a product", [
        ("Product", f"{shown(product.name)} ({product.product_id})"),
        ("Quantity", str(quantity)),
        ("Total", f"{total.to_decimal_string()} {total.currency}"),
        ("Paid from", f"{shown(account.alias)} (account ending {last4(account.account_id)})"),
    ]


def _as(request: Request, model: type[RequestT]) -> RequestT:
    if not isinstance(request, model):
        raise InvalidInput("This request cannot be confirmed here.")
    return request


_DESCRIBERS: Final[dict[str, Callable[[Application, str, Request], tuple[str, list[tuple[str, str]]]]]] = {
    "createTransfer": _describe_transfer,
    "createPurchase": _describe_purchase,
}


def quoted_operations() -> frozenset[str]:
    return frozenset(_DESCRIBERS)
