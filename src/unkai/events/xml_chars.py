"""XML 1.0's characters (https://www.w3.org/TR/xml/#charsets): the one definition of the text
SQS and SNS accept and that their XML answers can carry.

An XML 1.0 document cannot hold any other character, not even as a character reference
(`&#1;` is not well-formed), so one stored value outside the set makes every answer that shows
it unparsable (boto3: `ResponseParserError: not well-formed (invalid token)`). Hence two halves:
- input: `check` refuses such text with the service's error code, as AWS does (SQS: a message
  body `InvalidMessageContents`, a queue attribute `InvalidAttributeValue`; SNS: any parameter
  `InvalidParameter`);
- output: `escape` writes element text that is always well-formed, replacing with U+FFFD what
  still arrives outside the set (from a front door that does not check), so one bad value
  cannot make the rest of an answer unreadable.
"""

from __future__ import annotations

import re

from unkai.errors import InvalidRequest

#: The set as AWS's error messages and API references spell it.
ALLOWED = "#x9, #xA, #xD, #x20 to #xD7FF, #xE000 to #xFFFD, #x10000 to #x10FFFF"
#: What `escape` writes in place of a character outside the set.
REPLACEMENT = "\ufffd"
_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
#: The markup characters, and the three whitespace characters as references: a parser turns a
#: raw CR (or CRLF) into LF, which would change a message body and fail the SDK's MD5OfBody
#: check; TAB and LF are written the same way so that every parser, including one that
#: normalizes whitespace, reads all three back exactly.
_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#xD;", "\t": "&#x9;", "\n": "&#xA;"}
)


def check(text: str, what: str, *, code: str) -> None:
    """Raise InvalidRequest with `code` when `text` has a character outside XML 1.0's set.

    The message starts with `what` (which names the parameter) and shows the first such
    character as U+XXXX with its position, never the character itself: the message is
    written into an XML answer too."""
    bad = _INVALID.search(text)
    if bad is not None:
        raise InvalidRequest(
            f"{what} contains the character U+{ord(bad.group()):04X} at position "
            f"{bad.start()}, which is not allowed (allowed: {ALLOWED})",
            code=code,
        )


def escape(text: str) -> str:
    """`text` as the content of an XML element: markup and CR/TAB/LF as references, and each
    character outside XML 1.0's set as U+FFFD. Never raises."""
    return _INVALID.sub(REPLACEMENT, text).translate(_ESCAPES)
