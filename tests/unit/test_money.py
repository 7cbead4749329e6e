"""Money: parsing of agent input, formatting, and exact arithmetic."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from centli.domain.errors import InvalidAmount, UnsupportedCurrency
from centli.domain.money import Money, parse_amount, parse_currency


@pytest.mark.parametrize(
    ("raw", "minor"),
    [
        ("1500", 150_000),
        ("1500.5", 150_050),
        ("1500.00", 150_000),
        (" 1500.00 ", 150_000),
        ("0.01", 1),
        ("007.10", 710),
        (1500, 150_000),
        (Decimal("1500.25"), 150_025),
        (Decimal("12.3"), 1230),
        (0.1, 10),
        (1500.5, 150_050),
        (19.99, 1999),
        (999_999_999_999_999, 99_999_999_999_999_900),
    ],
)
def test_parse_amount_accepts_plain_decimals(raw: object, minor: int) -> None:
    money = parse_amount(raw)
    assert money == Money(minor, "MXN")
    assert type(money.minor) is int


def test_parse_amount_keeps_the_given_currency() -> None:
    assert parse_amount("10.50", "USD") == Money(1050, "USD")


def test_float_point_one_is_exact() -> None:
    # 0.1 is not representable in binary; its shortest text "0.1" is what the customer meant.
    assert parse_amount(0.1).minor == 10
    assert parse_amount(1.1).to_decimal_string() == "1.10"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("0", "greater than zero"),
        ("0.00", "greater than zero"),
        (0, "greater than zero"),
        (0.0, "greater than zero"),
        (Decimal("0"), "greater than zero"),
        ("-5", "greater than zero"),
        ("-0.01", "greater than zero"),
        (-5, "greater than zero"),
        (-0.5, "greater than zero"),
        (Decimal("-1"), "greater than zero"),
        ("NaN", "finite"),
        ("nan", "finite"),
        ("inf", "finite"),
        ("-Infinity", "finite"),
        ("+inf", "finite"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (float("-inf"), "finite"),
        (Decimal("NaN"), "finite"),
        (Decimal("Infinity"), "finite"),
        ("1e3", "plain digits"),
        ("1E3", "plain digits"),
        ("1.5e2", "plain digits"),
        (1e16, "plain digits"),
        (1e-5, "plain digits"),
        (Decimal("1E+3"), "plain digits"),
        ("1.234", "two decimals"),
        ("0.001", "two decimals"),
        (0.125, "two decimals"),
        (Decimal("1.005"), "two decimals"),
        ("abc", "plain digits"),
        ("12,50", "plain digits"),
        ("$100", "plain digits"),
        ("1 000", "plain digits"),
        ("1.", "plain digits"),
        (".5", "plain digits"),
        ("+5", "plain digits"),
        ("0x10", "plain digits"),
        ("١٢٣", "plain digits"),  # non-ASCII digits
        ("", "missing"),
        ("   ", "missing"),
        ("9" * 65, "missing"),
        ("1" * 16, "too large"),
        (10**20, "too large"),
        (True, "a number"),
        (False, "a number"),
        (None, "a number"),
        ([100], "a number"),
        ({"amount": 1}, "a number"),
    ],
)
def test_parse_amount_rejects(raw: object, fragment: str) -> None:
    with pytest.raises(InvalidAmount) as raised:
        parse_amount(raw)
    assert fragment in raised.value.message
    assert raised.value.code == "INVALID_AMOUNT"
    assert raised.value.status == 400
    assert raised.value.field == "amount"


def test_parse_amount_names_the_field() -> None:
    with pytest.raises(InvalidAmount) as raised:
        parse_amount("x", field="price")
    assert raised.value.field == "price"


@pytest.mark.parametrize(
    ("minor", "text"),
    [
        (0, "0.00"),
        (1, "0.01"),
        (10, "0.10"),
        (150_000, "1500.00"),
        (150_050, "1500.50"),
        (-1, "-0.01"),
        (-250, "-2.50"),
    ],
)
def test_formatting(minor: int, text: str) -> None:
    assert Money(minor).to_decimal_string() == text
    assert str(Money(minor, "USD")) == f"{text} USD"


def test_money_of_trusted_text() -> None:
    assert Money.of("25000.00") == Money(2_500_000)
    assert Money.of("-3.5", "USD") == Money(-350, "USD")
    with pytest.raises(ValueError):
        Money.of("1.234")


def test_money_refuses_float_minor_and_bad_currency() -> None:
    with pytest.raises(TypeError):
        Money(1.5)  # type: ignore[arg-type]
    for bad in ("mxn", "MXN\n", "MX", ""):
        with pytest.raises(ValueError):
            Money(1, bad)
    with pytest.raises(ValueError):
        Money.of("5\n")


def test_arithmetic_is_exact_in_one_currency() -> None:
    a, b = Money(1050), Money(95)
    assert a + b == Money(1145)
    assert a - b == Money(955)
    assert -a == Money(-1050)
    assert b.times(3) == Money(285)
    assert b < a and b <= a and a > b and a >= b
    assert (b - a).is_negative


@pytest.mark.parametrize(
    "operation",
    [
        lambda x, y: x + y,
        lambda x, y: x - y,
        lambda x, y: x < y,
        lambda x, y: x <= y,
        lambda x, y: x > y,
        lambda x, y: x >= y,
    ],
)
def test_arithmetic_refuses_mixed_currencies(operation: object) -> None:
    with pytest.raises(ValueError, match="currency mismatch"):
        operation(Money(100, "MXN"), Money(100, "USD"))  # type: ignore[operator]


def test_different_currencies_are_not_equal() -> None:
    assert Money(100, "MXN") != Money(100, "USD")


def test_parse_currency() -> None:
    assert parse_currency(" mxn ") == "MXN"
    assert parse_currency("USD", frozenset({"MXN", "USD"})) == "USD"
    for bad in ("MX", "MXNN", "", None, 484, "M1N"):
        with pytest.raises(UnsupportedCurrency):
            parse_currency(bad)
    with pytest.raises(UnsupportedCurrency):
        parse_currency("EUR", frozenset({"MXN"}))


@settings(max_examples=200)
@given(minor=st.integers(min_value=1, max_value=10**17 - 1))
def test_format_then_parse_round_trips(minor: int) -> None:
    money = Money(minor, "MXN")
    assert parse_amount(money.to_decimal_string()) == money
    assert parse_amount(Decimal(money.to_decimal_string())) == money


@settings(max_examples=200)
@given(minor=st.integers(min_value=1, max_value=10**13))
def test_float_input_reads_as_its_shortest_text(minor: int) -> None:
    # A JSON number the runtime turned into a float still means the digits the agent wrote.
    as_float = float(Money(minor).to_decimal_string())
    assert parse_amount(as_float).minor == minor
