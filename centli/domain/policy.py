"""Business settings the services need: currencies, limits, the bank's day, page sizes."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from centli.domain.errors import InvalidInput, UnsupportedCurrency
from centli.domain.ledger import TransferLimits
from centli.domain.money import DEFAULT_CURRENCY, Money

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 50
MAX_PURCHASE_QUANTITY = 99
MAX_CONCEPT_LENGTH = 140
MAX_ID_LENGTH = 64
MAX_QUERY_LENGTH = 100
#: Customer-written names (account aliases, beneficiary aliases, product names).
MAX_NAME_LENGTH = 80
_MARKUP = re.compile(r"<[^<>]*>")
#: What is left of markup after tags are gone: never stored in customer-written text.
_MARKUP_CHARACTERS = frozenset("<>`")


def default_limits() -> dict[str, TransferLimits]:
    return {
        DEFAULT_CURRENCY: TransferLimits(
            per_transfer=Money.of("50000.00", DEFAULT_CURRENCY),
            daily_total=Money.of("100000.00", DEFAULT_CURRENCY),
        )
    }


@dataclass(frozen=True, slots=True)
class BankPolicy:
    """Limits per supported currency; the daily limit resets at midnight in ``timezone``."""

    limits: Mapping[str, TransferLimits] = field(default_factory=default_limits)
    timezone: tzinfo = field(default_factory=lambda: ZoneInfo("America/Mexico_City"))
    purchase_timeout: timedelta = timedelta(minutes=15)

    @property
    def currencies(self) -> frozenset[str]:
        return frozenset(self.limits)

    def limits_for(self, currency: str) -> TransferLimits:
        try:
            return self.limits[currency]
        except KeyError:
            raise UnsupportedCurrency(f"The currency {currency} is not supported here.", field="currency") from None

    def business_day(self, moment: datetime) -> str:
        return moment.astimezone(self.timezone).date().isoformat()


def page_size(raw: object, field_name: str = "limit") -> int:
    """A list ``limit`` from input: a whole number from 1 to MAX_PAGE_SIZE (a service takes None as the default)."""
    return whole_number_between(raw, field_name, 1, MAX_PAGE_SIZE)


def purchase_quantity(raw: object, field_name: str = "quantity") -> int:
    """How many units to buy, from input: a whole number from 1 to MAX_PURCHASE_QUANTITY."""
    return whole_number_between(raw, field_name, 1, MAX_PURCHASE_QUANTITY)


def whole_number_between(raw: object, field_name: str, low: int, high: int) -> int:
    value = parse_int(raw, field_name)
    if not low <= value <= high:
        raise InvalidInput(f"The {field_name} must be between {low} and {high}.", field=field_name)
    return value


def parse_int(raw: object, field_name: str) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, float) and raw.is_integer() and abs(raw) < 2**53:
        return int(raw)
    if isinstance(raw, str) and raw.strip().isascii() and raw.strip().lstrip("-").isdigit() and len(raw) <= 12:
        return int(raw.strip())
    raise InvalidInput(f"{field_name} must be a whole number.", field=field_name)


_ID_CHARACTERS = re.compile(r"[A-Za-z0-9_.:-]+")


def require_id(raw: object, field_name: str) -> str:
    """An identifier from input: a short printable token."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput(f"{field_name} is required.", field=field_name)
    value = raw.strip()
    if len(value) > MAX_ID_LENGTH or _ID_CHARACTERS.fullmatch(value) is None:
        raise InvalidInput(f"{field_name} is not a valid identifier.", field=field_name)
    return value


def concept_text(raw: object, field_name: str = "concept") -> str:
    """A transfer's concept: customer-written text its recipient reads (see :func:`customer_text`)."""
    return customer_text(raw, field_name, MAX_CONCEPT_LENGTH)


def search_text(raw: object, field_name: str) -> str:
    """Words to search the catalog for (a query or a category): used, not stored, so non-printable characters
    are refused rather than dropped."""
    value = _text(raw, field_name, MAX_QUERY_LENGTH)
    if not value.isprintable():
        raise InvalidInput(f"{field_name} has characters that are not allowed.", field=field_name)
    return value


def customer_text(raw: object, field_name: str, max_length: int) -> str:
    """Text one customer writes and another customer's agent may read (OWASP LLM01): data, never markup.

    The one rule for concepts, aliases and product names: tags and the
    characters ``< > `` ` are removed, control and format characters
    (including zero-width and bidirectional overrides) are dropped, any run of
    whitespace becomes one space, and the result may have at most
    ``max_length`` characters (else InvalidInput).
    """
    return _text(raw, field_name, max_length, _without_markup)


def _without_markup(raw: str) -> str:
    text = _MARKUP.sub(" ", unicodedata.normalize("NFC", raw))
    return "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or (ch.isprintable() and ch not in _MARKUP_CHARACTERS)
    )


def _text(raw: object, field_name: str, max_length: int, clean: Callable[[str], str] = str) -> str:
    """``raw`` as text (None: ""), ``clean``ed, each run of whitespace one space, at most ``max_length`` long."""
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise InvalidInput(f"{field_name} must be text.", field=field_name)
    value = " ".join(clean(raw).split())
    if len(value) > max_length:
        raise InvalidInput(f"{field_name} can have at most {max_length} characters.", field=field_name)
    return value
