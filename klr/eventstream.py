"""AWS's event-stream framing (`application/vnd.amazon.eventstream`), in which Lambda's
InvokeWithResponseStream answers: a series of messages, each one

    total length (4 bytes) | headers length (4) | CRC32 of those 8 bytes (4)
    headers | payload | CRC32 of everything before it (4)

all integers big-endian. A header is its name's length (1 byte), the name, a value type (7, a
string), the value's length (2 bytes) and the value.
"""

from __future__ import annotations

import struct
import zlib

CONTENT_TYPE = "application/vnd.amazon.eventstream"
_STRING = 7
_PRELUDE = struct.Struct(">II")
_CRC = struct.Struct(">I")


def message(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    """One message with string headers (names and values of our own: short ASCII)."""
    encoded = b"".join(
        struct.pack(">B", len(name))
        + name.encode()
        + struct.pack(">BH", _STRING, len(value))
        + value.encode()
        for name, value in headers
    )
    prelude = _PRELUDE.pack(
        _PRELUDE.size + _CRC.size + len(encoded) + len(payload) + _CRC.size, len(encoded)
    )
    start = prelude + _CRC.pack(zlib.crc32(prelude)) + encoded
    crc = zlib.crc32(payload, zlib.crc32(start))
    return start + payload + _CRC.pack(crc)


def event(event_type: str, content_type: str, payload: bytes) -> bytes:
    """An event message, as Lambda sends PayloadChunk and InvokeComplete."""
    return message(
        [(":event-type", event_type), (":content-type", content_type), (":message-type", "event")],
        payload,
    )
