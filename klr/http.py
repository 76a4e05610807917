"""HTTP/1.1 for the front door and the Runtime API: a strict parser and an asyncio Protocol.

The front door faces the network and the Runtime API faces the function, so both read requests
by the same strict rules (RFC 9112, as h11 reads them): ambiguous framing is refused with a
complete answer, then the connection closes. Every connection is bounded in time (head, idle,
body and write timeouts) and in memory (line, head and body limits), and the number of
connections is capped. An answer is written at once, or streamed chunk by chunk with trailers
and with backpressure from a slow reader; a request body can be consumed as it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import unquote

from klr.errors import HttpError, error_body
from klr.log import log

_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e]+) HTTP/([0-9]\.[0-9])")
# A field value as h11 reads it: visible parts, SP or HTAB only between them, no NUL.
_FIELD_LINE = re.compile(rb"(" + _TOKEN + rb"):[ \t]*((?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?)[ \t]*")
_END_OF_HEAD = re.compile(rb"\n\r?\n")
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,20})(?:;[^\n]*)?[ \t]*")
MAX_CHUNK_LINE = 4096
# What a header from a function's result may hold: a token name; a value of visible latin-1
# characters, SP and HTAB. Anything else could end the header line early.
_FIELD_NAME = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")

# An oversized body is read and thrown away up to this size, so the client sees the 413 rather
# than a reset connection; past it the connection closes after the answer.
DRAIN_LIMIT = 64 * 1024 * 1024
# A streamed request body buffers at most this much before the connection stops reading.
STREAM_HIGH_WATER = 256 * 1024
# After a refusal, the rest of what the client sends is read and dropped for this long, so the
# answer is not lost to a reset; then the connection closes.
LINGER_SECONDS = 2.0
_NO_BODY_STATUSES = frozenset({204, 304})
_STATUS_LINES = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n" for s in HTTPStatus}


@dataclass(frozen=True)
class Limits:
    """What one connection may cost; the timeouts are seconds, None meaning no limit."""

    max_line: int = 8 * 1024  # the request line, or one header line
    max_head: int = 64 * 1024  # the whole header section (or trailer section)
    max_body: int = 6 * 1024 * 1024  # larger bodies are drained and flagged `body_too_large`
    header_timeout: float | None = 10.0  # a request's head, from its first byte
    idle_timeout: float | None = 75.0  # a kept-alive connection between requests
    body_timeout: float | None = 60.0  # a request's whole body, from the end of its head
    write_timeout: float | None = 30.0  # a client that stops reading an answer
    max_connections: int = 4096


class Request:
    """One request: its head, and its body either read whole (`body`) or arriving (`stream`)."""

    __slots__ = (
        "method",
        "target",
        "version",
        "headers",
        "keep_alive",
        "expect_continue",
        "content_length",
        "chunked",
        "body",
        "body_size",
        "body_too_large",
        "body_unread",
        "trailers",
        "peer",
        "stream",
        "_index",
    )

    def __init__(self, method: str, target: str, version: str, headers: list[tuple[str, str]]):
        self.method, self.target, self.version, self.headers = method, target, version, headers
        self.keep_alive = version == "HTTP/1.1"
        self.expect_continue = False
        self.content_length = 0
        self.chunked = False
        self.body = b""
        self.body_size = 0
        self.body_too_large = False
        self.body_unread = False  # refused or past DRAIN_LIMIT: the connection cannot be reused
        self.trailers: dict[str, str] = {}
        self.peer = ""
        self.stream: BodyStream | None = None
        self._index: dict[str, str] | None = None

    @property
    def path(self) -> str:
        return unquote(self.target.split("?", 1)[0])

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    def header(self, name: str, default: str = "") -> str:
        """The last value of a header; `name` in lower case."""
        if self._index is None:
            self._index = {key.lower(): value for key, value in self.headers}
        return self._index.get(name, default)


class Response:
    """An answer: a whole `body`, or a `stream` of chunks followed by `trailers()`.

    `undelivered` is called instead when the client has gone before the answer could be
    written (the Runtime API gives the invocation of a lost /next back)."""

    __slots__ = ("status", "body", "headers", "stream", "trailers", "undelivered")

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
        stream: AsyncIterator[bytes] | None = None,
        trailers: Callable[[], list[tuple[str, str]]] | None = None,
        undelivered: Callable[[], None] | None = None,
    ):
        self.status, self.body, self.headers = status, body, headers if headers is not None else []
        self.stream, self.trailers, self.undelivered = stream, trailers, undelivered


class Deferred:
    """An answer that comes later, with no task: the handler returns this, then calls `send`,
    which writes the answer at once. If the client goes first, `on_gone` is called instead,
    and whatever is sent after is dropped (a stream read to its end, `undelivered` called)."""

    __slots__ = ("_connection", "_request", "_early", "gone", "on_gone")

    def __init__(self) -> None:
        self._connection: HttpConnection | None = None
        self._request: Request | None = None
        self._early: Response | None = None  # sent before the connection took this
        self.gone = False
        self.on_gone: Callable[[], None] | None = None

    def send(self, response: Response) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.deferred = None
            connection._respond(self._request, response)
        elif self.gone:
            _drop(response)
        else:
            self._early = response

    def _bind(self, connection: HttpConnection, request: Request) -> None:
        if self._early is not None:
            connection._respond(request, self._early)
        else:
            self._connection, self._request = connection, request
            connection.deferred = self

    def _lose(self) -> None:
        self._connection, self.gone = None, True
        if self.on_gone is not None:
            self.on_gone()


def _drop(response: Response) -> None:
    """An answer that cannot be delivered: tell its maker, and let a stream's producer go."""
    if response.undelivered is not None:
        response.undelivered()
    if response.stream is not None:
        asyncio.ensure_future(discard(response.stream))


def error_response(status: int, error_type: str, message: str) -> Response:
    return Response(status, error_body(error_type, message), [("Content-Type", "application/json")])


def check_field(name: str, value: str) -> None:
    """Raise ValueError unless a header from a function's result can be sent as it is."""
    if not _FIELD_NAME.fullmatch(name):
        raise ValueError(f"header name {name!r} is not an HTTP token")
    if not _FIELD_VALUE.fullmatch(value):
        raise ValueError(
            f"header {name} has a value with a control or non-latin-1 character: {value[:100]!r}"
        )


def encode_head(status: int, headers: list[tuple[str, str]], framing: str, close: bool) -> bytes:
    """The status line and header section."""
    parts = [_STATUS_LINES.get(status) or f"HTTP/1.1 {status} \r\n"]
    parts += [f"{name}: {value}\r\n" for name, value in headers]
    if framing:
        parts.append(framing)
    if close:
        parts.append("Connection: close\r\n")
    return _encode_lines(parts)


def encode_trailers(trailers: list[tuple[str, str]]) -> bytes:
    """The last chunk of a chunked body and its trailer section."""
    return _encode_lines(["0\r\n", *(f"{name}: {value}\r\n" for name, value in trailers)])


def _encode_lines(parts: list[str]) -> bytes:
    """Lines and the blank line after them. A CR, LF or NUL inside a line is refused
    (ValueError): whatever a header holds, it never becomes a second header or response."""
    parts.append("\r\n")
    text = "".join(parts)
    if text.count("\n") != len(parts) or text.count("\r") != len(parts) or "\0" in text:
        raise ValueError("a header holds CR, LF or NUL")
    return text.encode("latin-1")


async def discard(stream: AsyncIterator[bytes]) -> None:
    """Read a stream to its end and drop it: its producer must never be left waiting."""
    with contextlib.suppress(Exception):
        async for _ in stream:
            pass


async def read_all(stream: AsyncIterator[bytes], limit: int) -> bytes:
    """A stream's bytes, joined; ValueError (after the rest is dropped) past `limit` bytes."""
    parts, size = [], 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            await discard(stream)
            raise ValueError(f"the streamed body is over {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


# Parsing


class RequestReader:
    """The parsing side of one connection: bytes in, requests and their bodies out.

    `read_head` and `read_body` return None/False while more bytes are needed and raise
    HttpError as soon as the bytes cannot be a valid request."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.buffer = bytearray()
        self._search_from = 0
        self._state = ""  # body state: "size", "data", "crlf", "trailers" or "" (sized)
        self._remaining = 0

    def read_head(self) -> Request | None:
        buffer = self.buffer
        if not buffer:
            return None
        if buffer[0] < 0x21:
            raise HttpError(400, "a request must start with its request line")
        match = _END_OF_HEAD.search(buffer, self._search_from)
        if match is None:
            self._check_incomplete_head()
            self._search_from = max(0, len(buffer) - 2)
            return None
        end = match.end()
        if end > self.limits.max_head + 4:
            raise HttpError(431, f"the header section is over {self.limits.max_head} bytes")
        head = bytes(buffer[:end])
        del buffer[:end]
        self._search_from = 0
        lines = head.split(b"\n")[:-2]
        request = self._request_line(lines[0].removesuffix(b"\r"))
        self._fields(request, lines)
        return request

    def _check_incomplete_head(self) -> None:
        buffer, limits = self.buffer, self.limits
        first_break = buffer.find(b"\n")
        if first_break < 0:
            if len(buffer) > limits.max_line:
                raise HttpError(414, f"the request line is over {limits.max_line} bytes")
        elif len(buffer) - buffer.rfind(b"\n") > limits.max_line + 1:
            raise HttpError(431, f"a header line is over {limits.max_line} bytes")
        if len(buffer) > limits.max_head:
            raise HttpError(431, f"the header section is over {limits.max_head} bytes")

    def _request_line(self, line: bytes) -> Request:
        if len(line) > self.limits.max_line:
            raise HttpError(414, f"the request line is over {self.limits.max_line} bytes")
        match = _REQUEST_LINE.fullmatch(line)
        if match is None:
            raise HttpError(
                400, f"malformed request line {line[:100]!r}: expected METHOD SP target SP HTTP/1.1"
            )
        method, target, version = match.groups()
        if version not in (b"1.1", b"1.0"):
            raise HttpError(505, f"HTTP/{version.decode()} is not supported: use HTTP/1.1")
        return Request(method.decode(), target.decode(), "HTTP/" + version.decode(), [])

    def _fields(self, request: Request, lines: list[bytes]) -> None:
        headers = request.headers = self._field_lines(lines, 1)
        length = None
        hosts = 0
        transfer_encoding = None
        for name, value in headers:
            lower = name.lower()
            if lower == "content-length":
                length = _content_length(value, length)
            elif lower == "transfer-encoding":
                if transfer_encoding is not None:
                    raise HttpError(501, "Transfer-Encoding may be sent once: send only chunked")
                transfer_encoding = value
            elif lower == "host":
                hosts += 1
            elif lower == "connection":
                tokens = {token.strip().lower() for token in value.split(",")}
                if "close" in tokens:
                    request.keep_alive = False
                elif "keep-alive" in tokens:
                    request.keep_alive = True
            elif lower == "expect" and request.version == "HTTP/1.1":
                request.expect_continue = "100-continue" in value.lower()
        if hosts > 1 or (hosts == 0 and request.version == "HTTP/1.1"):
            raise HttpError(400, "an HTTP/1.1 request needs exactly one Host header")
        if transfer_encoding is not None:
            if transfer_encoding.lower() != "chunked":
                raise HttpError(
                    501, f"Transfer-Encoding {transfer_encoding!r} is not supported: use chunked"
                )
            if length is not None:
                raise HttpError(400, "Content-Length and Transfer-Encoding together are ambiguous")
            request.chunked = True
            self._state = "size"
        else:
            request.content_length = self._remaining = int(length or 0)
            self._state = ""

    def _field_lines(self, lines: list[bytes], start: int) -> list[tuple[str, str]]:
        fields = []
        max_line = self.limits.max_line
        for index in range(start, len(lines)):
            line = lines[index]
            if line[-1:] == b"\r":
                line = line[:-1]
            if len(line) > max_line:
                raise HttpError(431, f"a header line is over {max_line} bytes")
            match = _FIELD_LINE.fullmatch(line)
            if match is None:
                raise HttpError(400, _field_problem(line))
            fields.append((match.group(1).decode(), match.group(2).decode("latin-1")))
        return fields

    def read_body(self, request: Request, sink: Callable[[bytes], None]) -> bool:
        """Pass the body's bytes to `sink` as they arrive; True once the body is complete.
        A body over `max_body` (unless streamed) is counted and dropped, up to DRAIN_LIMIT."""
        if request.chunked:
            return self._read_chunked(request, sink)
        buffer = self.buffer
        taken = min(len(buffer), self._remaining)
        if taken:
            self._take(
                request, bytes(buffer[:taken]) if taken < len(buffer) else bytes(buffer), sink
            )
            del buffer[:taken]
            self._remaining -= taken
        return self._remaining == 0 or request.body_unread

    def _take(self, request: Request, data: bytes, sink: Callable[[bytes], None]) -> None:
        request.body_size += len(data)
        if request.stream is None and request.body_size > self.limits.max_body:
            request.body_too_large = True
            if request.body_size > DRAIN_LIMIT:
                request.body_unread = True
            return
        sink(data)

    def _read_chunked(self, request: Request, sink: Callable[[bytes], None]) -> bool:
        buffer = self.buffer
        while buffer and not request.body_unread:
            state = self._state
            if state == "size":
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > MAX_CHUNK_LINE:
                        raise HttpError(400, f"a chunk size line is over {MAX_CHUNK_LINE} bytes")
                    return False
                match = _CHUNK_LINE.fullmatch(buffer, 0, end)
                if match is None:
                    raise HttpError(
                        400, f"bad chunk size line {bytes(buffer[: min(end, 40)])!r}: hex digits"
                    )
                self._remaining = int(match.group(1), 16)
                del buffer[: end + 2]
                self._state = "data" if self._remaining else "trailers"
            elif state == "data":
                taken = min(len(buffer), self._remaining)
                self._take(request, bytes(buffer[:taken]), sink)
                del buffer[:taken]
                self._remaining -= taken
                if not self._remaining:
                    self._state = "crlf"
            elif state == "crlf":
                if buffer[:2] != b"\r\n"[: len(buffer)]:
                    raise HttpError(400, "chunk data must be followed by CRLF")
                if len(buffer) < 2:
                    return False
                del buffer[:2]
                self._state = "size"
            else:
                return self._read_trailers(request)
        return request.body_unread or (self._state == "trailers" and self._read_trailers(request))

    def _read_trailers(self, request: Request) -> bool:
        buffer = self.buffer
        if buffer[:1] == b"\n" or buffer[:2] == b"\r\n":
            del buffer[: 1 if buffer[:1] == b"\n" else 2]
            return True
        match = _END_OF_HEAD.search(buffer)
        if match is None:
            if len(buffer) > self.limits.max_head:
                raise HttpError(431, f"the trailer section is over {self.limits.max_head} bytes")
            return False
        if match.end() > self.limits.max_head + 4:
            raise HttpError(431, f"the trailer section is over {self.limits.max_head} bytes")
        lines = bytes(buffer[: match.end()]).split(b"\n")[:-2]
        del buffer[: match.end()]
        request.trailers = {name.lower(): value for name, value in self._field_lines(lines, 0)}
        return True


def _content_length(value: str, seen: str | None) -> str:
    lengths = {part.strip(" \t") for part in value.split(",")}
    if len(lengths) != 1:
        raise HttpError(400, f"Content-Length {value!r} lists different lengths")
    length = lengths.pop()
    if not (length.isascii() and length.isdigit()) or len(length) > 20:
        raise HttpError(400, f"Content-Length {value!r} is not a number of bytes")
    if seen is not None and seen != length:
        raise HttpError(400, "Content-Length is sent twice with different values")
    return length


def _field_problem(line: bytes) -> str:
    if line[:1] in (b" ", b"\t"):
        return "obs-fold (a header line starting with whitespace) is not accepted"
    name, colon, value = line.partition(b":")
    if not colon:
        return f"header line without a colon: {line[:100]!r}"
    if name[-1:] in (b" ", b"\t"):
        return f"whitespace before the colon in header {name[:100]!r}"
    if not re.fullmatch(_TOKEN, name):
        return f"header name {name[:100]!r} is not a token"
    return f"header {name[:100].decode('latin-1')} has a NUL, CR, LF or other forbidden character"


def parse_request(data: bytes, limits: Limits = Limits()) -> Request | None:  # noqa: B008
    """Parse one request from the start of `data` with the server's own reader, for tests:
    None when more bytes are needed, HttpError when they are not acceptable."""
    reader = RequestReader(limits)
    reader.buffer += data
    request = reader.read_head()
    if request is None:
        return None
    pieces: list[bytes] = []
    if not reader.read_body(request, pieces.append):
        return None
    request.body = b"".join(pieces)
    return request


class BodyStream:
    """A request body as it arrives: iterate for its chunks; `trailers` once it has ended.
    The connection stops reading while the reader lags by more than STREAM_HIGH_WATER bytes."""

    def __init__(self, connection: HttpConnection):
        self._connection = connection
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._ended = False
        self._error: Exception | None = None
        self._waiter: asyncio.Future | None = None
        self.trailers: dict[str, str] = {}

    def _feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > STREAM_HIGH_WATER:
            self._connection.pause_reading_for_stream(True)
        self._wake()

    def _end(self, trailers: dict[str, str]) -> None:
        self._ended, self.trailers = True, trailers
        self._wake()

    def _fail(self, error: Exception) -> None:
        if not self._ended:
            self._error = error
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def __aiter__(self) -> BodyStream:
        return self

    async def __anext__(self) -> bytes:
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._ended:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._buffered <= STREAM_HIGH_WATER // 2:
            self._connection.pause_reading_for_stream(False)
        return chunk


# Serving

Handler = Callable[[Request], "Response | Deferred | Awaitable[Response]"]


class HttpServer:
    """Serves one handler on one address with the given limits.

    `streams(request)` says which requests are handed over as soon as their head arrives, with
    the body in `request.stream`; `on_broken(request, error)` hears of a request whose body
    never arrived whole (bad framing, or the client went away)."""

    def __init__(
        self,
        handler: Handler,
        limits: Limits,
        streams: Callable[[Request], bool] | None = None,
        on_broken: Callable[[Request, Exception], None] | None = None,
    ):
        self.handler, self.limits, self.streams, self.on_broken = (
            handler,
            limits,
            streams,
            on_broken,
        )
        self.server: asyncio.AbstractServer | None = None
        self.closing = False
        self.connections: set[HttpConnection] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        timeouts = [
            t
            for t in (limits.header_timeout, limits.idle_timeout, limits.body_timeout)
            if t is not None
        ]
        self._sweep_every = min(1.0, max(0.1, min(timeouts, default=4.0) / 4))

    async def start(self, host: str | None, port: int) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: HttpConnection(self), host, port, backlog=1024
        )
        self._sweeper = loop.call_later(self._sweep_every, self._sweep)

    def _sweep(self) -> None:
        """Enforce every connection's deadline; one timer for all connections."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        for connection in [c for c in self.connections if c.deadline and c.deadline <= now]:
            connection.deadline_passed()
        self._sweeper = loop.call_later(self._sweep_every, self._sweep)

    def close(self) -> None:
        """Stop accepting, and end connections that are between requests."""
        self.closing = True
        if self.server:
            self.server.close()
        for connection in list(self.connections):
            connection.close_if_idle()

    async def wait_idle(self, timeout: float) -> None:
        """Give connections still answering a request up to `timeout` seconds to finish."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.connections and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for connection in list(self.connections):
            connection.abort()
        if self._sweeper:
            self._sweeper.cancel()


# Every connection receives into this one buffer and copies out what arrived: the loop is
# single-threaded, and a buffer per read (asyncio's default) costs an allocation of 256 KB.
_RECEIVED = memoryview(bytearray(256 * 1024))


class HttpConnection(asyncio.BufferedProtocol):
    """One client connection: reads requests one at a time and answers them in order."""

    def __init__(self, server: HttpServer):
        self.server = server
        self.limits = server.limits
        self.reader = RequestReader(server.limits)
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.request: Request | None = None  # whose body is being read
        self.body: list[bytes] = []
        self.handling: Request | None = None  # handed to the handler, not yet answered
        self.task: asyncio.Future | None = None
        self.deferred: Deferred | None = None
        self.deadline = 0.0  # the loop time by which the current phase must end; 0: none
        self.timeout_answer = 0  # the status a passed deadline is answered with; 0: close
        self.closed = False
        self.discarding = False  # what the client sends is dropped: no request will follow
        self.lingering = False
        self.write_paused = False
        self.read_paused = False
        self._stream_paused = False
        self._advancing = False
        self._drain_waiter: asyncio.Future | None = None

    # asyncio.BufferedProtocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if isinstance(peer, tuple) else ""
        connections = self.server.connections
        connections.add(self)
        if len(connections) > self.limits.max_connections:
            self.refuse(
                503,
                f"the server has {self.limits.max_connections} connections open "
                "(KLR_MAX_CONNECTIONS): retry later",
            )
        else:
            self._set_deadline(self.limits.header_timeout, 0)

    def get_buffer(self, sizehint: int) -> memoryview:
        return _RECEIVED

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(_RECEIVED[:nbytes])

    def data_received(self, data: bytes | memoryview) -> None:
        if self.discarding:
            return
        if not self.reader.buffer and self.request is None and self.handling is None:
            self._set_deadline(self.limits.header_timeout, 408)
        self.reader.buffer += data
        self._advance()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        self._broken(ConnectionError("the client closed the connection"))
        self.handling = None
        self.reader.buffer = bytearray()
        if self.task is not None and not self.task.done():
            self.task.cancel()
        if self.deferred is not None:
            self.deferred._lose()
            self.deferred = None
        self._wake_drain()

    def pause_writing(self) -> None:
        self.write_paused = True
        self._set_deadline(self.limits.write_timeout, 0)

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_drain()
        if self.handling is None and self.request is None and not self.discarding:
            self._next_request()

    # Reading

    def _advance(self) -> None:
        """Read as far as the buffered bytes go, handing over each complete request; a
        refusal is a complete answer, and no input ends a connection with a traceback."""
        if self._advancing:
            return  # called back from within: the loop below goes on
        self._advancing = True
        try:
            self._read_requests()
        except HttpError as error:
            self._bad_input(error)
        except Exception as error:
            log(f"klr: internal error reading a request: {error!r}")
            self._bad_input(HttpError(500, "internal error reading the request"))
        finally:
            self._advancing = False

    def _read_requests(self) -> None:
        reader = self.reader
        while not self.closed and not self.discarding:
            request = self.request
            if request is None:
                if self.handling is not None or self.write_paused:
                    if len(reader.buffer) > self.limits.max_head:
                        self._set_reading(False)  # pipelined requests wait their turn
                    return
                request = reader.read_head()
                if request is None:
                    return
                request.peer = self.peer
                self.request = request
                self._set_deadline(self.limits.body_timeout, 408)
                if request.expect_continue and not reader.buffer:
                    if request.content_length > self.limits.max_body:
                        # The client waits for this answer and will not send the body.
                        request.body_too_large = request.body_unread = True
                        request.body_size = request.content_length
                        self.request = None
                        self._dispatch(request)
                        continue
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                if self.server.streams is not None and self.server.streams(request):
                    request.stream = BodyStream(self)
                    self._dispatch(request)
            sink = request.stream._feed if request.stream is not None else self.body.append
            if not reader.read_body(request, sink):
                return
            self.request = None
            if request.stream is not None:
                request.stream._end(request.trailers)
                if self.handling is None:
                    self._next_request()
            else:
                body = self.body
                request.body = body[0] if len(body) == 1 else b"".join(body)
                body.clear()
                self._dispatch(request)

    def _bad_input(self, error: HttpError) -> None:
        handling = self.handling
        self._broken(error)
        if handling is not None and handling.stream is not None:
            # Its handler hears of it through the stream, and its answer closes the connection.
            handling.body_unread = self.discarding = True
        else:
            self.refuse(error.status, str(error))

    def _broken(self, error: Exception) -> None:
        """The request being read will not arrive whole."""
        request, self.request = self.request, None
        self.body.clear()
        if request is None:
            return
        if request.stream is not None:
            request.stream._fail(error)
        if self.server.on_broken is not None:
            self.server.on_broken(request, error)

    def _set_reading(self, reading: bool) -> None:
        if self.closed or reading != self.read_paused:
            return
        self.read_paused = not reading
        if reading:
            self.transport.resume_reading()
        else:
            self.transport.pause_reading()

    def pause_reading_for_stream(self, paused: bool) -> None:
        if paused != self._stream_paused:
            self._stream_paused = paused
            self._set_reading(not paused)

    # Answering

    def _dispatch(self, request: Request) -> None:
        self.handling = request
        if request.stream is None:
            self.deadline = 0.0  # the function's own timeout governs from here
        try:
            result = self.server.handler(request)
        except Exception as error:
            result = internal_error(error)
        if isinstance(result, Response):
            self._respond(request, result)
        elif isinstance(result, Deferred):
            result._bind(self, request)
        else:
            self.task = task = asyncio.ensure_future(result)
            task.add_done_callback(lambda done: self._handled(request, done))

    def _handled(self, request: Request, task: asyncio.Future) -> None:
        if self.task is task:
            self.task = None
        if task.cancelled():
            return
        error = task.exception()
        self._respond(request, internal_error(error) if error else task.result())

    def _respond(self, request: Request, response: Response) -> None:
        if self.closed or self.transport.is_closing():
            _drop(response)
            return
        close = (
            not request.keep_alive
            or self.server.closing
            or request.body_unread
            or self.request is request  # a streamed body still arriving: not worth reading on
        )
        if response.stream is not None:
            self.task = asyncio.ensure_future(self._write_stream(request, response, close))
            return
        status, body = response.status, response.body
        if status in _NO_BODY_STATUSES or status < 200:
            framing, body = "", b""
        else:
            framing = f"Content-Length: {len(body)}\r\n"
            if request.method == "HEAD":
                body = b""
        try:
            head = encode_head(status, response.headers, framing, close)
        except ValueError as error:
            response = internal_error(error)
            body, close = response.body, True
            head = encode_head(500, response.headers, f"Content-Length: {len(body)}\r\n", True)
        if len(body) < 16384:
            self.transport.write(head + body)
        else:
            self.transport.write(head)
            self.transport.write(body)
        self._answered(close)

    async def _write_stream(self, request: Request, response: Response, close: bool) -> None:
        """Chunked transfer coding as the answer is produced; HTTP/1.0 gets the bytes and EOF."""
        chunked = request.version == "HTTP/1.1"
        no_body = request.method == "HEAD" or response.status in _NO_BODY_STATUSES
        framing = "Transfer-Encoding: chunked\r\n" if chunked and not no_body else ""
        write = self.transport.write
        stream, ended = response.stream, False
        try:
            write(encode_head(response.status, response.headers, framing, close or not chunked))
            async for chunk in stream:
                if chunk and not no_body:
                    write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
                    if self.write_paused:
                        await self._drain()
            ended = True
            if chunked and not no_body:
                write(encode_trailers(response.trailers() if response.trailers else []))
        except Exception as error:  # the producer broke off, or the client went away
            if not self.closed:
                log(f"klr: a streamed answer was cut short: {error}")
            self.abort()
            return
        finally:
            self.task = None
            if not ended:
                asyncio.ensure_future(discard(stream))
        self._answered(close or not chunked)

    def _answered(self, close: bool) -> None:
        self.handling = None
        if close:
            self.linger()
        elif not self.write_paused:  # else resume_writing goes on
            self._next_request()

    def _next_request(self) -> None:
        if self.closed or self.discarding or self.request is not None:
            return  # a streamed body still arriving ends first
        if self.server.closing:
            self.linger()
            return
        self._set_reading(not self._stream_paused)
        if self.reader.buffer:
            self._set_deadline(self.limits.header_timeout, 408)
            self._advance()
        else:
            self._set_deadline(self.limits.idle_timeout, 0)

    async def _drain(self) -> None:
        self._drain_waiter = asyncio.get_running_loop().create_future()
        if not self.closed:
            await self._drain_waiter
        if self.closed:
            raise ConnectionError("the client closed the connection")

    def _wake_drain(self) -> None:
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    # Ending

    def refuse(self, status: int, message: str) -> None:
        """A complete error answer, then the connection closes."""
        if self.closed or self.lingering:
            return
        self.request = None
        if self.handling is None:
            body = HttpError(status, message).body()
            head = encode_head(
                status,
                [("Content-Type", "application/json")],
                f"Content-Length: {len(body)}\r\n",
                True,
            )
            self.transport.write(head + body)
        self.linger()

    def linger(self) -> None:
        """Close once the client has read the answer: drop what it still sends, for a while."""
        if self.closed or self.lingering:
            return
        self.lingering = self.discarding = True
        self.reader.buffer.clear()
        self._set_reading(True)
        self._set_deadline(LINGER_SECONDS, 0)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        else:
            self.transport.close()

    def deadline_passed(self) -> None:
        if self.write_paused or self.lingering:
            self.abort()
        elif self.handling is not None:
            self.deadline = 0.0
        elif self.timeout_answer:
            self._broken(TimeoutError("the client was too slow sending its request"))
            self.refuse(
                self.timeout_answer,
                "the request did not arrive in time (KLR_HEADER_TIMEOUT, KLR_BODY_TIMEOUT)",
            )
        else:
            self.transport.close()

    def close_if_idle(self) -> None:
        if self.handling is None and self.request is None and not self.reader.buffer:
            self.transport.close()

    def abort(self) -> None:
        if not self.closed:
            self.transport.abort()

    def _set_deadline(self, seconds: float | None, answer: int) -> None:
        # time.monotonic is the event loop's clock, without a lookup of the running loop.
        self.deadline = 0.0 if seconds is None else time.monotonic() + seconds
        self.timeout_answer = answer


def internal_error(error: BaseException) -> Response:
    """A handler's failure, logged in one line and answered 500: never a traceback."""
    log(f"klr: internal error: {error!r}")
    return error_response(500, "InternalError", f"The server failed to answer: {error}")
