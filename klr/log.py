"""The server's log: one stream, stdout, as on Lambda's one log stream.

Each bootstrap writes into a pipe of its own (`Capture`); the server copies what it reads to
stdout as it comes, between its own platform lines (START, END, REPORT, ...), so that every
byte lands in order and belongs to the invocation that was current when it was read. The
platform lines are made here, as text or as Lambda's JSON platform records
(`AWS_LAMBDA_LOG_FORMAT=JSON`); the function's own output passes through untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
import sys
import time

TAIL_BYTES = 4096  # what X-Amz-Log-Type: Tail answers, as Lambda does
CHUNK = 64 * 1024  # one read of a bootstrap's pipe, the default pipe capacity
DRAIN_LIMIT = 16 * CHUNK  # a drain reads at most this much: more than a full pipe holds
STDOUT_BUFFER = 1024 * 1024  # bytes stdout may hold back before the bootstraps' reads pause

# Lambda's log levels, lowest first; its platform records are INFO, faults WARN and above.
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
LOG_FORMATS = ("Text", "JSON")


class _Stdout:
    """Stdout without blocking the server: a pipe or socket (docker's log collector) is written
    through an asyncio transport, which holds back what the reader has not taken yet; past
    STDOUT_BUFFER the bootstraps' pipes stop being read, so a function that writes faster than
    the collector reads waits in its write, as it would on a terminal. A file or a terminal is
    written directly."""

    def __init__(self) -> None:
        self._transport: asyncio.WriteTransport | None = None
        self.captures: set[Capture] = set()
        self.paused = False

    async def open(self) -> None:
        mode = os.fstat(1).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
            return
        loop = asyncio.get_running_loop()
        pipe = open(1, "wb", buffering=0, closefd=False)  # noqa: SIM115 - the transport owns it
        self._transport, _ = await loop.connect_write_pipe(lambda: _FlowControl(self), pipe)
        self._transport.set_write_buffer_limits(high=STDOUT_BUFFER)

    def write(self, data: bytes) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(data)
            return
        with contextlib.suppress(OSError):  # nobody reads our stdout any more
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()

    def pause(self, paused: bool) -> None:
        self.paused = paused
        for capture in self.captures:
            capture.follow_stdout()

    async def close(self, timeout: float = 5.0) -> None:
        """Write out what is held back, then give stdout back in blocking mode."""
        transport, self._transport = self._transport, None
        if transport is None:
            return
        deadline = time.monotonic() + timeout
        while transport.get_write_buffer_size() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        transport.close()
        with contextlib.suppress(OSError):
            os.set_blocking(1, True)


class _FlowControl(asyncio.Protocol):
    def __init__(self, out: _Stdout):
        self.out = out

    def pause_writing(self) -> None:
        self.out.pause(True)

    def resume_writing(self) -> None:
        self.out.pause(False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.out.pause(False)  # writes fall back to direct ones, which fail quietly


stdout = _Stdout()


class Capture:
    """One pipe that a bootstrap's stdout and stderr both write into, read in chunks as data
    comes. While an invocation wants its log tail, `tail` is that invocation's buffer.

    A chunk is written up to its last newline and the rest held for the next one, so that
    another bootstrap's output or a platform line never lands in the middle of a line; a drain
    (at START, END, an exit) writes what is held, and so does a line longer than a chunk."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()  # the write end is passed to each new process
        os.set_blocking(self.read_fd, False)
        self.tail: bytearray | None = None
        self._held = b""  # the start of a line whose end has not come yet
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reading = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        stdout.captures.add(self)
        self.follow_stdout()

    def follow_stdout(self) -> None:
        """Read while stdout takes what we write; wait while it holds back too much."""
        if self._loop is None:
            return
        if stdout.paused and self._reading:
            self._loop.remove_reader(self.read_fd)
            self._reading = False
        elif not stdout.paused and not self._reading:
            self._loop.add_reader(self.read_fd, self._read)
            self._reading = True

    def _read(self) -> int:
        try:
            read = os.read(self.read_fd, CHUNK)
        except (BlockingIOError, InterruptedError):
            return 0
        data = self._held + read if self._held else read
        end = data.rfind(b"\n") + 1
        if len(data) - end >= CHUNK:  # a line longer than a chunk goes as far as it came
            end = len(data)
        self._held = data[end:]
        if end:
            self._write(data[:end] if self._held else data)
        return len(read)

    def _write(self, data: bytes) -> None:
        stdout.write(data)
        if self.tail is not None:
            keep_tail(self.tail, data)

    def drain(self) -> None:
        """Read what is in the pipe now. Whatever a bootstrap wrote before the request the
        server is handling (a result, its exit) is in the pipe by then, so a drain first puts
        it before the platform line that follows, and in the right invocation's tail."""
        total = 0
        while total < DRAIN_LIMIT:
            read = self._read()
            if not read:
                break
            total += read
        if self._held:
            held, self._held = self._held, b""
            self._write(held)

    def close(self) -> None:
        if self._loop is not None and self._reading:
            self._loop.remove_reader(self.read_fd)
        self._reading = False
        stdout.captures.discard(self)
        for fd in (self.read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


def keep_tail(tail: bytearray, data: bytes) -> None:
    """Append to a tail buffer, keeping its last TAIL_BYTES (trimmed now and then, not on
    every write)."""
    tail += data[-TAIL_BYTES:]
    if len(tail) > 4 * TAIL_BYTES:
        del tail[:-TAIL_BYTES]


class PlatformLog:
    """The server's platform lines, in Lambda's text or JSON format. Each method returns the
    bytes it wrote, or b"" when the log level leaves the record out."""

    def __init__(self) -> None:
        self.json = False
        self.min_level = 0

    def configure(self, log_format: str, log_level: str) -> None:
        """Set once from the settings, before the first line."""
        self.json = log_format == "JSON"
        # Lambda applies log levels only to JSON logs.
        self.min_level = LOG_LEVELS.index(log_level) if self.json else 0

    def start(self, request_id: str, version: str) -> bytes:
        if self.json:
            return self._record(
                "INFO", "platform.start", {"requestId": request_id, "version": version}
            )
        return self._text(f"START RequestId: {request_id} Version: {version}")

    def end(
        self,
        request_id: str,
        duration_ms: float,
        memory_size_mb: int,
        max_memory_used_mb: int,
        init_duration_ms: float | None,
        status: str = "success",
        error_type: str | None = None,
    ) -> bytes:
        """END and REPORT (platform.runtimeDone and platform.report). `status` is Lambda's:
        success, error (the function's), timeout, or failure (the runtime exited)."""
        billed = int(duration_ms) + 1
        if not self.json:
            report = (
                f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
                f"Billed Duration: {billed} ms\tMemory Size: {memory_size_mb} MB\t"
                f"Max Memory Used: {max_memory_used_mb} MB\t"
            )
            if init_duration_ms is not None:
                report += f"Init Duration: {init_duration_ms:.2f} ms\t"
            if status in ("timeout", "failure"):  # the text REPORT names only these
                report += f"Status: {status}\t" + (
                    f"Error Type: {error_type}\t" if error_type else ""
                )
            return self._text(f"END RequestId: {request_id}\n{report}")
        outcome = {"status": status, **({"errorType": error_type} if error_type else {})}
        metrics = {
            "durationMs": round(duration_ms, 2),
            "billedDurationMs": billed,
            "memorySizeMB": memory_size_mb,
            "maxMemoryUsedMB": max_memory_used_mb,
        }
        if init_duration_ms is not None:
            metrics["initDurationMs"] = round(init_duration_ms, 2)
        done = {
            "requestId": request_id,
            **outcome,
            "metrics": {"durationMs": metrics["durationMs"]},
        }
        return self._record("INFO", "platform.runtimeDone", done) + self._record(
            "INFO", "platform.report", {"requestId": request_id, **outcome, "metrics": metrics}
        )

    def init_report(self, duration_ms: float, status: str, error_type: str | None) -> bytes:
        """INIT_REPORT of an init that failed (`status` error or timeout); a successful one is
        in the first REPORT."""
        if self.json:
            record = {
                "initializationType": "on-demand",
                "phase": "init",
                "status": status,
                **({"errorType": error_type} if status == "error" else {}),
                "metrics": {"durationMs": round(duration_ms, 2)},
            }
            return self._record("ERROR", "platform.initReport", record)
        line = f"INIT_REPORT Init Duration: {duration_ms:.2f} ms\tPhase: init\tStatus: {status}"
        return self._text(line + (f"\tError Type: {error_type}" if status == "error" else ""))

    def fault(self, message: str) -> bytes:
        """A platform error line (a timeout, a runtime's exit); a string record in JSON, as
        Lambda's platform.fault."""
        if self.json:
            return self._record("ERROR", "platform.fault", message)
        return self._text(message)

    def _text(self, line: str) -> bytes:
        data = (line + "\n").encode()
        stdout.write(data)
        return data

    def _record(self, level: str, kind: str, record: object) -> bytes:
        if LOG_LEVELS.index(level) < self.min_level:
            return b""
        line = json.dumps(
            {"time": timestamp(), "type": kind, "record": record}, separators=(",", ":")
        )
        return self._text(line)


def timestamp() -> str:
    """Now as Lambda's JSON logs write it: ISO 8601, UTC, milliseconds."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


platform = PlatformLog()


def log(line: str) -> None:
    """A line of the server's own (start, stop, internal errors): text in either format."""
    stdout.write((line + "\n").encode())
