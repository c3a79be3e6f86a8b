"""Whole numbers that clients send as text: pagination tokens (SQS's and SNS's `NextToken`,
CloudWatch Logs' `nextToken`), query-string integers (Lambda's `MaxItems`) and the indexes of
flattened query parameters (`Entry.1.Id`).

`str.isdigit()` followed by `int()` is not a check: `isdigit()` accepts digits that `int()`
refuses ("²", "①"), and `int()` refuses a string of over 4,300 digits
(https://docs.python.org/3/library/stdtypes.html#int-max-str-digits), so either turned a
client's mistake into a 500. One bounded ASCII pattern decides instead, and each service
raises its own parameter error when it says no.
"""

from __future__ import annotations

import re

#: At most 18 digits: every value fits in a signed 64-bit integer (SQLite's, Redis's), and no
#: token, page size or index unkai hands out comes near it.
MAX_DIGITS = 18
_DIGITS = re.compile(rf"[0-9]{{1,{MAX_DIGITS}}}")


def parse_digits(text: object) -> int | None:
    """The non-negative integer `text` spells in 1 to `MAX_DIGITS` ASCII digits (leading
    zeros allowed), or None for anything else: another type, a sign, spaces, non-ASCII digits,
    too many digits. Never raises; the caller raises its service's error for None."""
    if not isinstance(text, str) or _DIGITS.fullmatch(text) is None:
        return None
    return int(text)
