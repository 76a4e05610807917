"""One HTTP/1.1 POST to a URL (K_SINK), on the event loop: the status it is answered with.

Strict and small: one request per connection (`Connection: close`), the status line read and
the rest left unread; interim 1xx answers skipped. The caller bounds it with a deadline.
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

MAX_LINE = 16 * 1024  # a status line or header line longer than this is no HTTP answer
_tls: ssl.SSLContext | None = None


async def post(url: str, headers: list[tuple[str, str]], body: bytes) -> int:
    """POST `body` to `url`; the final status. Raises OSError (refused, reset, TLS),
    ConnectionError (closed without an answer) or ValueError (not an HTTP answer)."""
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    reader, writer = await asyncio.open_connection(
        parts.hostname, port, ssl=_tls_context() if secure else None, limit=MAX_LINE
    )
    try:
        head = [
            f"POST {target} HTTP/1.1",
            f"Host: {parts.netloc}",
            f"Content-Length: {len(body)}",
            "Connection: close",
        ]
        head += [f"{name}: {value}" for name, value in headers]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        while True:
            status = _status(await reader.readline())
            if status >= 200:
                return status
            while (await reader.readline()).strip():  # an interim answer's header lines
                pass
    finally:
        writer.close()


def _status(line: bytes) -> int:
    if not line:
        raise ConnectionError("the connection closed before an answer")
    version, _, rest = line.partition(b" ")
    code = rest[:3]
    if (
        not version.startswith(b"HTTP/1.")
        or not code.isdigit()
        or rest[3:4] not in (b" ", b"\r", b"\n")
    ):
        raise ValueError(f"not an HTTP/1.1 status line: {line[:100]!r}")
    return int(code)


def _tls_context() -> ssl.SSLContext:
    global _tls
    if _tls is None:
        _tls = ssl.create_default_context()  # the system's CAs, or SSL_CERT_FILE's
    return _tls
