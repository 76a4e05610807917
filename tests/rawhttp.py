"""A small HTTP/1.1 client on asyncio streams, for load and hostile-client tests.

One coroutine per connection rather than a thread per request keeps the client's CPU small
next to the server's, and writing the bytes ourselves lets a test send what no library would
(half a header, a body one byte a second) or stop reading.
"""

from __future__ import annotations

import asyncio
import os
import random
import resource
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass

# The longest line of an answer's head the client reads (asyncio's readline limit).
MAX_HEAD = 64 * 1024


class ClosedBeforeAnswer(ConnectionError):
    """The server closed the connection before sending any byte of an answer."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-cased names, the last value of each
    body: bytes


def request_bytes(
    method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    """A request with a Content-Length body, as bytes on the wire."""
    head = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
    head += [f"{name}: {value}" for name, value in (headers or {}).items()]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class Connection:
    """One client connection; `request` sends a request and reads its answer (keep-alive)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.opened_at = time.monotonic()

    @classmethod
    async def open(cls, port: int, receive_buffer: int = 0) -> Connection:
        """Connect to 127.0.0.1:port; `receive_buffer` shrinks SO_RCVBUF (a slow reader)."""
        if not receive_buffer:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=MAX_HEAD)
            return cls(reader, writer)
        sock = socket.socket()
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        except BaseException:
            sock.close()
            raise
        reader, writer = await asyncio.open_connection(sock=sock, limit=MAX_HEAD)
        return cls(reader, writer)

    @property
    def local_port(self) -> int:
        return self.writer.get_extra_info("sockname")[1]

    def send(
        self, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> None:
        """Queue one request; its answer is read by `answer`."""
        self.writer.write(request_bytes(method, target, body, headers))

    async def answer(self, method: str = "POST") -> Answer:
        """Read one answer: framed by Content-Length, chunked, or by the end of the connection."""
        status_line = await self.reader.readline()
        if not status_line:
            raise ClosedBeforeAnswer("the server closed the connection without an answer")
        version, status, *_ = status_line.decode("latin-1").split(" ", 2)
        if not version.startswith("HTTP/1."):
            raise ValueError(f"not an HTTP/1.x status line: {status_line[:100]!r}")
        headers = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b"\n"):
            if not line:
                raise asyncio.IncompleteReadError(b"", None)
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        code = int(status)
        if method == "HEAD" or code in (204, 304) or 100 <= code < 200:
            body = b""
        elif "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._chunked_body()
        else:
            body = await self.reader.read()
        return Answer(code, headers, body)

    async def request(
        self, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Answer:
        self.send(method, target, body, headers)
        await self.writer.drain()
        return await self.answer(method)

    async def _chunked_body(self) -> bytes:
        parts = []
        while size := int((await self.reader.readline()).split(b";")[0], 16):
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)
        while (await self.reader.readline()) not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(parts)

    async def read_to_end(self, seconds: float) -> bytes:
        """Everything the server still sends until it closes; TimeoutError if it does not."""
        chunks = []

        async def read_all() -> None:
            try:
                while chunk := await self.reader.read(1 << 16):
                    chunks.append(chunk)
            except ConnectionResetError:
                pass

        await asyncio.wait_for(read_all(), seconds)
        return b"".join(chunks)

    def close(self) -> None:
        self.writer.close()

    def reset(self) -> None:
        """Close with a TCP reset, as a client that crashed or a proxy that gave up does."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


def raise_open_files_limit(wanted: int) -> None:
    """Lift this process's (and so the server's, which inherits it) RLIMIT_NOFILE."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def free_port_block(count: int) -> int:
    """The first of `count` consecutive free ports below the kernel's ephemeral range, where no
    client socket (the thousands these tests open, or anyone's) can take one meanwhile."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
        ephemeral = int(ports.read().split()[0])
    rng = random.Random()
    for _ in range(100):
        first = rng.randrange(10_000, ephemeral - count)
        try:
            for port in range(first, first + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
    raise AssertionError(f"no {count} consecutive free ports from 10000 to {ephemeral}")


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time `pid` has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The processes `pid` started (the server's bootstraps), from every one of its threads."""
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as listing:
                found += [int(child) for child in listing.read().split()]
        except FileNotFoundError:
            pass  # a thread that ended while we looked
    return found


# TCP states as /proc/net/tcp spells them (include/net/tcp_states.h).
TCP_ESTABLISHED, TCP_LISTEN = "01", "0A"


def _tcp_sockets() -> Iterator[tuple[int, int, str, int]]:
    """(local port, remote port, state, inode) of every TCP socket in this network namespace;
    inode 0 is a socket no process holds (closed, or still queued for accept)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as rows:
                next(rows)
                for row in rows:
                    fields = row.split()
                    local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
                    local_port = int(local.rsplit(":", 1)[1], 16)
                    yield local_port, int(remote.rsplit(":", 1)[1], 16), state, int(inode)
        except FileNotFoundError:
            pass


def server_side_state(server_port: int, client_port: int) -> str | None:
    """The state of the server's end of one loopback connection, None once it is gone."""
    for local, remote, state, _ in _tcp_sockets():
        if local == server_port and remote == client_port:
            return state
    return None


def held_connections(server_port: int) -> int:
    """How many connections to `server_port` the server has accepted and not yet closed."""
    return sum(
        1
        for local, _, state, inode in _tcp_sockets()
        if local == server_port and state != TCP_LISTEN and inode
    )
