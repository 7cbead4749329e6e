"""Exact money: integer minor units plus an ISO currency code.

No float ever holds money. Agent input (a string, or a number the runtime
already parsed) is turned into minor units with the rejections the contract
lists; output is a decimal string such as ``"1500.00"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import total_ordering

from centli.domain.errors import InvalidAmount, UnsupportedCurrency

DEFAULT_CURRENCY = "MXN"
#: Every currency we handle has two decimals (centavos, cents).
MINOR_DIGITS = 2
_SCALE: int = 10**MINOR_DIGITS
#: Largest amount accepted from input: 15 integer digits is far above any limit.
_MAX_INTEGER_DIGITS = 15
#: Longest amount text accepted from input.
MAX_AMOUNT_LENGTH = 64

_CURRENCY_RE = re.compile(r"^[A-Z]{3}\Z")  # \Z: "$" would accept a trailing newline
_AMOUNT_RE = re.compile(r"^(?P<whole>\d+)(?:\.(?P<frac>\d+))?\Z", re.ASCII)  # ASCII digits only


@total_ordering
@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount: ``minor`` units (centavos) of ``currency``. Mixing currencies raises ValueError."""

    minor: int
    currency: str = DEFAULT_CURRENCY

    def __post_init__(self) -> None:
        if type(self.minor) is not int:
            raise TypeError("Money.minor must be an int")
        if not _CURRENCY_RE.match(self.currency):
            raise ValueError(f"not an ISO currency code: {self.currency!r}")

    @classmethod
    def zero(cls, currency: str = DEFAULT_CURRENCY) -> Money:
        return cls(0, currency)

    @classmethod
    def of(cls, text: str, currency: str = DEFAULT_CURRENCY) -> Money:
        """Trusted decimal text (data files, configuration) to Money; negatives allowed."""
        negative = text.startswith("-")
        minor = _parse_unsigned(text[1:] if negative else text)
        return cls(-minor if negative else minor, currency)

    def _minor_of(self, other: Money) -> int:
        if other.currency != self.currency:
            raise ValueError(f"currency mismatch: {self.currency} vs {other.currency}")
        return other.minor

    def __add__(self, other: Money) -> Money:
        return Money(self.minor + self._minor_of(other), self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.minor - self._minor_of(other), self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def times(self, quantity: int) -> Money:
        return Money(self.minor * quantity, self.currency)

    def __lt__(self, other: Money) -> bool:
        """The other comparisons follow from this one (``total_ordering``), so all refuse another currency."""
        return self.minor < self._minor_of(other)

    @property
    def is_negative(self) -> bool:
        return self.minor < 0

    def to_decimal_string(self) -> str:
        """``"1500.00"``; negative amounts keep their sign."""
        sign = "-" if self.minor < 0 else ""
        whole, frac = divmod(abs(self.minor), _SCALE)
        return f"{sign}{whole}.{frac:0{MINOR_DIGITS}d}"

    def __str__(self) -> str:
        return f"{self.to_decimal_string()} {self.currency}"


def parse_currency(raw: object, supported: frozenset[str] | None = None) -> str:
    """A currency code from input: three letters, upper-cased, and supported."""
    code = raw.strip().upper() if isinstance(raw, str) else ""
    if not _CURRENCY_RE.match(code):
        raise UnsupportedCurrency("The currency must be a three-letter code such as MXN.", field="currency")
    if supported is not None and code not in supported:
        raise UnsupportedCurrency(f"The currency {code} is not supported here.", field="currency")
    return code


def parse_amount(raw: object, currency: str = DEFAULT_CURRENCY, *, field: str = "amount") -> Money:
    """Agent input to a positive Money, or :class:`InvalidAmount` saying why (see :func:`parse_minor`)."""
    return Money(parse_minor(raw, field=field), currency)


def parse_minor(raw: object, *, field: str = "amount") -> int:
    """Agent input to a positive count of minor units, or :class:`InvalidAmount` saying why.

    Accepts a decimal string (``"1500"``, ``"1500.5"``, ``"1500.00"``), an int,
    a Decimal, or a float the runtime already parsed from JSON (read through its
    shortest round-trip text, so ``0.1`` is exactly ``"0.1"``). Rejects zero,
    negatives, non-finite values, exponent form and more than two decimals.
    Limits are a business rule, checked by the caller. The currency is not part of
    the input: a transfer takes its source account's.
    """
    text = _amount_text(raw, field)
    lowered = text.lower()
    if lowered.lstrip("+-") in {"nan", "inf", "infinity", "snan"}:
        raise InvalidAmount("The amount must be a finite number.", field=field)
    if "e" in lowered:
        raise InvalidAmount("Write the amount as plain digits, for example 1500.00.", field=field)
    if lowered.startswith("-"):
        raise InvalidAmount("The amount must be greater than zero.", field=field)
    match = _AMOUNT_RE.match(text)
    if match is None:
        raise InvalidAmount("Write the amount as plain digits, for example 1500.00.", field=field)
    if len(match.group("frac") or "") > MINOR_DIGITS:
        raise InvalidAmount("The amount can have at most two decimals.", field=field)
    if len(match.group("whole").lstrip("0")) > _MAX_INTEGER_DIGITS:
        raise InvalidAmount("The amount is too large.", field=field)
    minor = _parse_unsigned(text)
    if minor == 0:
        raise InvalidAmount("The amount must be greater than zero.", field=field)
    return minor


def _amount_text(raw: object, field: str) -> str:
    if isinstance(raw, bool):
        raise InvalidAmount("The amount must be a number.", field=field)
    if isinstance(raw, float):
        return repr(raw)  # "nan", "inf" and "-inf" are refused as not finite by the caller
    if isinstance(raw, Decimal) and not raw.is_finite():
        raise InvalidAmount("The amount must be a finite number.", field=field)
    if isinstance(raw, int | Decimal):
        return str(raw)
    if isinstance(raw, str):
        text = raw.strip()
        if not text or len(text) > MAX_AMOUNT_LENGTH:
            raise InvalidAmount("The amount is missing or not a number.", field=field)
        return text
    raise InvalidAmount("The amount must be a number.", field=field)


def _parse_unsigned(text: str) -> int:
    match = _AMOUNT_RE.match(text)
    frac = "" if match is None else (match.group("frac") or "")
    if match is None or len(frac) > MINOR_DIGITS:
        raise ValueError(f"not a decimal amount with at most two decimals: {text!r}")
    return int(match.group("whole")) * _SCALE + int(frac.ljust(MINOR_DIGITS, "0"))
