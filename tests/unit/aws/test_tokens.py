"""`parse_digits`, the one check of the whole numbers clients send as text, and the three
services that read their tokens and query integers with it (SNS, CloudWatch Logs, Lambda)."""

from __future__ import annotations

import pytest

from unkai.aws.lambda_requests import query_int
from unkai.aws.logs import _offset
from unkai.aws.sns import _page
from unkai.aws.tokens import MAX_DIGITS, parse_digits
from unkai.errors import InvalidRequest

#: Each of these passes `str.isdigit()`, and each made `int()` raise (or, for the Arabic-Indic
#: digit, read a number no client was given).
ISDIGIT_BUT_NOT_ASCII = ["²", "①", "٣", "12³"]
TOO_LONG = ["9" * (MAX_DIGITS + 1), "9" * 4301]
NOT_DIGITS = ["", "abc", "-1", "+1", " 1", "1 ", "1\n", "1_000", "0x10", "1.0"]


@pytest.mark.parametrize(
    ("text", "number"),
    [("0", 0), ("7", 7), ("007", 7), ("1000", 1000), ("9" * MAX_DIGITS, 10**MAX_DIGITS - 1)],
)
def test_ascii_digits_are_their_number(text: str, number: int) -> None:
    assert parse_digits(text) == number


@pytest.mark.parametrize("text", ISDIGIT_BUT_NOT_ASCII + TOO_LONG + NOT_DIGITS)
def test_anything_else_is_none(text: str) -> None:
    assert parse_digits(text) is None


@pytest.mark.parametrize("value", [None, 5, 1.0, True, b"1", ["1"]])
def test_a_value_that_is_not_text_is_none(value: object) -> None:
    assert parse_digits(value) is None


def test_the_largest_number_fits_a_signed_64_bit_integer() -> None:
    largest = parse_digits("9" * MAX_DIGITS)
    assert largest is not None and largest < 2**63


@pytest.mark.parametrize("token", ISDIGIT_BUT_NOT_ASCII + TOO_LONG + ["abc"])
def test_sns_refuses_a_next_token_with_its_parameter_error(token: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        _page(["a", "b"], token)
    assert caught.value.code == "InvalidParameter"


def test_sns_pages_from_a_token_it_gave() -> None:
    assert _page(["a", "b", "c"], "2") == (["c"], None)


@pytest.mark.parametrize("token", ISDIGIT_BUT_NOT_ASCII + TOO_LONG + ["abc", 5])
def test_logs_refuses_a_next_token_as_a_bad_parameter(token: object) -> None:
    # CloudWatch Logs answers every 400 as InvalidParameterException (logs._error)
    with pytest.raises(InvalidRequest):
        _offset({"nextToken": token})


def test_logs_reads_the_offset_of_a_token_it_gave() -> None:
    assert _offset({"nextToken": "12"}) == 12
    assert _offset({}) == 0


@pytest.mark.parametrize("value", ISDIGIT_BUT_NOT_ASCII + TOO_LONG + ["0", "-1", "abc"])
def test_lambda_refuses_a_query_integer_that_is_not_a_positive_number(value: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        query_int({"MaxItems": value}, "MaxItems")
    assert caught.value.code == "InvalidParameterValueException"


def test_lambda_reads_a_positive_query_integer() -> None:
    assert query_int({"MaxItems": "50"}, "MaxItems") == 50
    assert query_int({}, "MaxItems") is None
