"""A small HTTP/1.1 server on asyncio streams, shared by the front door and the Runtime API.

It does what both need and no more: keep-alive, Content-Length and chunked bodies (with
trailers, which aws-lambda-go declares), `Expect: 100-continue` (curl sends it for large
bodies), and bodies over the limit drained and flagged so the handler can answer 413.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import unquote

# An oversized body is read and thrown away up to this size, so the client sees the 413 rather
# than a reset connection; past it the connection is closed.
DRAIN_LIMIT = 64 * 1024 * 1024
MAX_HEADER_LINES = 200


class BadRequest(Exception):
    """The bytes on the wire are not HTTP/1.1 we can parse; the connection is closed."""


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    body_size: int = 0
    body_too_large: bool = False
    body_unread: bool = False  # refused or past DRAIN_LIMIT: the connection cannot be reused
    trailers: dict[str, str] = field(default_factory=dict)
    peer: str = ""

    @property
    def path(self) -> str:
        return unquote(self.target.split("?", 1)[0])

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    def header(self, name: str, default: str = "") -> str:
        """The last value of a header, matched case-insensitively."""
        name = name.lower()
        for key, value in reversed(self.headers):
            if key.lower() == name:
                return value
        return default

    @property
    def keep_alive(self) -> bool:
        connection = self.header("connection").lower()
        if self.version == "HTTP/1.0":
            return connection == "keep-alive"
        return connection != "close"


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    def encode(self, keep_alive: bool) -> bytes:
        try:
            reason = HTTPStatus(self.status).phrase
        except ValueError:
            reason = ""
        lines = [f"HTTP/1.1 {self.status} {reason}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        lines.append(f"Content-Length: {len(self.body)}")
        if not keep_alive:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


Handler = Callable[[Request], Awaitable[Response]]


class HttpServer:
    """Serves one handler on one address; remembers its connections so shutdown can end them."""

    def __init__(self, handler: Handler, max_body: int):
        self.handler = handler
        self.max_body = max_body
        self.server: asyncio.AbstractServer | None = None
        self.closing = False
        self._idle: set[asyncio.StreamWriter] = set()
        self._connections: set[asyncio.Task] = set()

    async def start(self, host: str | None, port: int) -> None:
        self.server = await asyncio.start_server(self._serve, host, port, limit=256 * 1024)

    def close(self) -> None:
        """Stop accepting, and end connections that are between requests."""
        self.closing = True
        if self.server:
            self.server.close()
        for writer in list(self._idle):
            writer.close()

    async def wait_idle(self, timeout: float) -> None:
        """Give connections still answering a request up to `timeout` seconds to finish."""
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=timeout)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)
        peer = writer.get_extra_info("peername")
        peer_host = peer[0] if isinstance(peer, tuple) else ""
        try:
            while not self.closing:
                self._idle.add(writer)
                try:
                    request = await read_request(reader, writer, self.max_body)
                finally:
                    self._idle.discard(writer)
                if request is None:
                    break
                request.peer = peer_host
                response = await self.handler(request)
                keep_alive = request.keep_alive and not self.closing and not request.body_unread
                writer.write(response.encode(keep_alive))
                await writer.drain()
                if not keep_alive:
                    break
        except BadRequest as error:
            writer.write(Response(400, str(error).encode()).encode(keep_alive=False))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            # Shutdown cancels connections still waiting (a bootstrap's /next); ending quietly
            # spares asyncio's stream callback a traceback about the cancelled task.
            pass
        finally:
            writer.close()


async def read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_body: int
) -> Request | None:
    """Read one request; None when the peer closed the connection between requests."""
    line = await reader.readline()
    while line in (b"\r\n", b"\n"):  # tolerate blank lines between requests (RFC 9112 2.2)
        line = await reader.readline()
    if not line:
        return None
    try:
        method, target, version = line.decode("latin-1").split()
    except ValueError:
        raise BadRequest(f"malformed request line {line[:100]!r}") from None
    headers = await _read_fields(reader)
    request = Request(method, target, version, headers)

    if request.header("expect").lower() == "100-continue":
        declared = request.header("content-length")
        if declared.isdigit() and int(declared) > max_body:
            request.body_too_large, request.body_size = True, int(declared)
            request.body_unread = True  # the client waits for our answer and never sends it
            return request
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    if "chunked" in request.header("transfer-encoding").lower():
        await _read_chunked(reader, request, max_body)
    else:
        length = request.header("content-length", "0")
        if not length.isdigit():
            raise BadRequest(f"bad Content-Length {length!r}")
        await _read_sized(reader, request, int(length), max_body)
    return request


async def _read_fields(reader: asyncio.StreamReader) -> list[tuple[str, str]]:
    fields = []
    for _ in range(MAX_HEADER_LINES):
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            return fields
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep or not name.strip():
            raise BadRequest(f"malformed header line {line[:100]!r}")
        fields.append((name.strip(), value.strip()))
    raise BadRequest(f"more than {MAX_HEADER_LINES} header lines")


async def _read_sized(
    reader: asyncio.StreamReader, request: Request, size: int, limit: int
) -> None:
    request.body_size = size
    if size <= limit:
        request.body = await reader.readexactly(size)
        return
    request.body_too_large = True
    request.body_unread = size > DRAIN_LIMIT
    remaining = min(size, DRAIN_LIMIT)
    while remaining:
        chunk = await reader.read(min(remaining, 1 << 20))
        if not chunk:
            raise asyncio.IncompleteReadError(b"", remaining)
        remaining -= len(chunk)


async def _read_chunked(reader: asyncio.StreamReader, request: Request, limit: int) -> None:
    parts = []
    while True:
        size_line = await reader.readline()
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadRequest(f"bad chunk size {size_line[:40]!r}") from None
        if size == 0:
            break
        request.body_size += size
        if request.body_size > DRAIN_LIMIT:
            request.body_too_large = request.body_unread = True
            return
        chunk = await reader.readexactly(size)
        if request.body_size > limit:
            request.body_too_large = True
            parts.clear()
        else:
            parts.append(chunk)
        await reader.readexactly(2)  # the CRLF after each chunk
    request.trailers = {name.lower(): value for name, value in await _read_fields(reader)}
    request.body = b"".join(parts)
