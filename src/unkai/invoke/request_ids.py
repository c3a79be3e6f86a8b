"""Request ids: random UUID4 strings without a syscall per id.

`uuid.uuid4()` calls getrandom once per id; on a loaded VM that syscall cost ~10 us, twice per
HTTP request. These ids come from one os.urandom read per 1024 ids, still unpredictable and
formatted exactly as Lambda's (version 4, RFC 4122 variant).
"""

from __future__ import annotations

import os

_BATCH = 1024
_buffer = b""
_offset = 0


def new_request_id() -> str:
    global _buffer, _offset
    if _offset >= len(_buffer):
        _buffer = os.urandom(16 * _BATCH)
        _offset = 0
    raw = bytearray(_buffer[_offset : _offset + 16])
    _offset += 16
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
