"""The invoker pool: INVOKER_COUNT bootstrap processes, each one a Lambda sandbox of its own.

Every invoker has its own Runtime API port, so the server always knows which process holds an
invocation: a timeout kills exactly that process, an exit fails exactly that invocation, and a
replacement process starts in its place. Requests wait in one bounded queue for a free invoker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from klr.config import Settings
from klr.errors import ApiError, QueueFull, error_body
from klr.log import Capture, keep_tail, log, platform


@dataclass
class Outcome:
    """What became of an invocation: the function's result, or the error that replaced it.

    `status` is the HTTP status the raw front door answers with; event modes and the Invoke API
    translate from it.
    """

    body: bytes
    status: int = 200
    error_type: str | None = None
    content_type: str = "application/json"
    stream: AsyncIterator[bytes] | None = None  # a streamed result, relayed as it arrives

    @property
    def failed(self) -> bool:
        return self.error_type is not None

    @classmethod
    def error(cls, status: int, error_type: str, message: str) -> Outcome:
        return cls(error_body(error_type, message), status, error_type)


class Invocation:
    """One request for the function: its event, the values for /next's headers, and what
    became of it. Listeners hear of the outcome at once, in the call that settles it.

    A streamed result settles the invocation as it begins; an error after that (a timeout, the
    runtime's exit, a broken stream) is kept as `cut_short`, for the caller to tell its client."""

    __slots__ = (
        "event",
        "client_context",
        "cognito_identity",
        "trace_id",
        "tenant_id",
        "id",
        "outcome",
        "cut_short",
        "gone",
        "tail",
        "ended",
        "_listeners",
        "_cut_waiter",
    )

    def __init__(self, event: bytes, trace_id: str = "", tenant_id: str = ""):
        self.event, self.trace_id, self.tenant_id = event, trace_id, tenant_id
        self.client_context = self.cognito_identity = ""
        self.id = str(uuid.uuid4())
        self.outcome: Outcome | None = None
        self.cut_short: Outcome | None = None
        self.gone = False  # its caller went away
        self.tail: bytearray | None = None  # its log's last bytes, kept when the caller asks
        self.ended = False  # its END and REPORT are written
        self._listeners: list[Callable[[Outcome], None]] = []
        self._cut_waiter: asyncio.Future | None = None

    def listen(self, listener: Callable[[Outcome], None]) -> None:
        self._listeners.append(listener)

    @property
    def open(self) -> bool:
        """Its caller has yet to hear how it ends: no outcome yet, or a stream not cut short."""
        return self.outcome is None or (self.outcome.stream is not None and self.cut_short is None)

    def finish(self, outcome: Outcome) -> bool:
        """Settle the invocation once; later outcomes (a late reply, a second error) are ignored,
        but for the first error while a streamed result is open: that one cut it short."""
        if self.outcome is not None:
            if not (self.open and outcome.failed):
                return False
            self.cut_short = outcome
            if self._cut_waiter is not None and not self._cut_waiter.done():
                self._cut_waiter.set_result(outcome)
            return True
        self.outcome = outcome
        # Listeners often refer to the invocation: let go of them, so that no cycle keeps the
        # event and the result alive until the next full garbage collection.
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener(outcome)
        return True

    def abandon(self) -> None:
        """Its caller went away: queued, it will not run; running, nobody waits for it."""
        self.gone = True

    async def why_cut_short(self, seconds: float) -> Outcome | None:
        """The error that cut a broken stream short, once the server knows it (a dying runtime's
        exit is seen a moment after its connection drops), or None after `seconds`."""
        if self.cut_short is None:
            self._cut_waiter = self._cut_waiter or asyncio.get_running_loop().create_future()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._cut_waiter), seconds)
        return self.cut_short


PEAK_READ_EVERY = 0.2  # seconds
# A runtime that posted /init/error should exit; after this many seconds it is stopped.
INIT_ERROR_EXIT_SECONDS = 1.0

CALLER_GONE = Outcome.error(499, "Client.Gone", "The caller went away before the invocation ran")


class WorkQueue:
    """Invocations waiting for an invoker, and invokers waiting for an invocation.

    A waiting invoker is a `taker`: called with an invocation, it starts it and returns True,
    or returns False when it no longer wants one (its runtime went away)."""

    def __init__(self, limit: int):
        self.limit = limit
        self._pending: deque[Invocation] = deque()
        self._takers: deque[Callable[[Invocation], bool]] = deque()

    def submit(self, invocation: Invocation, front: bool = False) -> None:
        while self._takers:
            if self._takers.popleft()(invocation):
                return
        if front:
            self._pending.appendleft(invocation)
        elif len(self._pending) >= self.limit:
            raise QueueFull
        else:
            self._pending.append(invocation)

    def offer(self, taker: Callable[[Invocation], bool]) -> None:
        """Give `taker` the next invocation, now or when one comes."""
        invocation = self.next_waiting()
        if invocation is None:
            self._takers.append(taker)
        elif not taker(invocation):
            self._pending.appendleft(invocation)

    def next_waiting(self) -> Invocation | None:
        """The first invocation in the queue, taken out; those whose caller has gone are dropped."""
        while self._pending:
            invocation = self._pending.popleft()
            if not invocation.gone:
                return invocation
            invocation.finish(CALLER_GONE)
        return None

    def withdraw(self, taker: Callable[[Invocation], bool]) -> None:
        with contextlib.suppress(ValueError):
            self._takers.remove(taker)

    def take(self) -> asyncio.Future:
        """A future of the next invocation, for an invoker that only holds it for later."""
        waiter = asyncio.get_running_loop().create_future()

        def taker(invocation: Invocation) -> bool:
            if waiter.done():
                return False
            waiter.set_result(invocation)
            return True

        self.offer(taker)
        waiter.add_done_callback(lambda _: self.withdraw(taker))
        return waiter


class Invoker:
    """One bootstrap process and the Runtime API state the server keeps for it."""

    def __init__(
        self,
        index: int,
        settings: Settings,
        queue: WorkQueue,
        bootstrap: str,
        serving: Callable[[], bool],
    ):
        self.index = index
        self.settings = settings
        self.queue = queue
        self.bootstrap = bootstrap
        self.serving = serving  # whether some runtime of the pool is ready for work
        self.port = settings.runtime_api_port + index
        self.env = bootstrap_env(settings, self.port)
        self.process: asyncio.subprocess.Process | None = None
        self.initialized = False  # this process has asked for work at least once
        self.init_error: Outcome | None = None  # this init failed, and its request was told
        self._init_timer: asyncio.TimerHandle | None = None
        self.reserved: Invocation | None = None  # taken from the queue to retry a failed init
        self.current: Invocation | None = None
        self.last_finished_id = ""
        self.stopping = False
        self._spawned_at = 0.0
        self._init_ms: float | None = None
        self._started_at = 0.0
        self.deadline_ms = 0
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._waiting: Callable[[Invocation], None] | None = None  # a /next waiting for work
        self._status_fd = -1  # /proc/<pid>/status of the process, for its peak memory
        self._peak_mb, self._peak_read_at = 0, 0.0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.capture = Capture()  # the output of this invoker's processes, one after the other
        self.up = asyncio.Event()  # it has asked for work, or its first process has ended

    @property
    def ready(self) -> bool:
        return self.initialized and self.process is not None and self.process.returncode is None

    async def run(self) -> None:
        """Keep a bootstrap running. After a failed init, wait for a request before retrying, so
        a broken function costs nothing while idle and each request sees a fresh attempt."""
        self.loop = asyncio.get_running_loop()
        self.capture.start(self.loop)
        init_failed = False
        while not self.stopping:
            if init_failed:
                self.reserved = await self.queue.take()
            await self._spawn()
            returncode = await self.process.wait() if self.process else 127
            self.capture.drain()  # its last words come before the news of its exit
            init_failed = self._on_exit(returncode)

    async def _spawn(self) -> None:
        self.initialized, self.init_error, self._init_ms = False, None, None
        self._init_timer = self.loop.call_later(self.settings.init_timeout, self._init_timed_out)
        self._spawned_at = time.monotonic()
        try:
            self.process = await asyncio.create_subprocess_exec(
                self.bootstrap,
                env=self.env,
                cwd=self.settings.task_root,
                stdin=asyncio.subprocess.DEVNULL,
                # One pipe for both, as on Lambda's one log stream: a pipe per stream could
                # not keep the order in which the function wrote to stdout and stderr.
                stdout=self.capture.write_fd,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own process group, so a kill reaches its children
            )
        except OSError as error:
            self.process = None
            self._init_failed(
                Outcome.error(
                    502, "Runtime.InvalidEntrypoint", f"Could not start {self.bootstrap}: {error}"
                )
            )
            return
        with contextlib.suppress(OSError):  # kept open: each REPORT reads it with one call
            self._status_fd = os.open(f"/proc/{self.process.pid}/status", os.O_RDONLY)

    def _on_exit(self, returncode: int) -> bool:
        """Settle what the process left behind; True when it died before asking for work."""
        self.up.set()
        self._withdraw()
        self._cancel_init_timer()
        if self._status_fd >= 0:
            os.close(self._status_fd)
            self._status_fd = -1
        self._peak_mb, self._peak_read_at = 0, 0.0
        reason = (
            f"signal: {signal.Signals(-returncode).name}"
            if returncode < 0
            else f"exit status {returncode}"
        )
        invocation, self.current = self.current, None
        if invocation:
            self._cancel_deadline()
            exit_error = Outcome.error(
                502,
                "Runtime.ExitError",
                f"RequestId: {invocation.id} Error: Runtime exited with error: {reason}",
            )
            if invocation.open:
                self._tail(
                    platform.fault(
                        f"RequestId: {invocation.id} Error: Runtime exited with error: {reason}"
                    )
                )
            self._log_end(invocation, "failure", "Runtime.ExitError")
            invocation.finish(exit_error)
            return False
        if self.initialized or self.stopping:
            return False
        if self.init_error is None:
            self._init_failed(
                Outcome.error(
                    502, "Runtime.ExitError", f"Runtime exited before init completed: {reason}"
                )
            )
        return True

    def _init_failed(self, outcome: Outcome, status: str = "error") -> None:
        """This init has failed: the request waiting for it is told now. That is the request
        it was retried for or else, while no runtime is ready to serve, the first in the queue."""
        self.init_error = outcome
        self.capture.drain()  # the runtime's account of the failure comes first
        platform.init_report(self._ms_since(self._spawned_at), status, outcome.error_type)
        waiting, self.reserved = self.reserved, None
        if waiting is None and not self.serving():
            waiting = self.queue.next_waiting()
        if waiting is not None:
            waiting.finish(outcome)

    def _init_timed_out(self) -> None:
        """No /next within KLR_INIT_TIMEOUT: the init fails and its process is killed; the next
        request retries init, as Lambda retries an init that ran out of time."""
        self._init_timer = None
        seconds = self.settings.init_timeout
        self._init_failed(
            Outcome.error(
                504,
                "Sandbox.Timedout",
                f"Init timed out after {seconds:.2f} seconds: the runtime did not ask for work "
                "(GET /2018-06-01/runtime/invocation/next) in time; raise KLR_INIT_TIMEOUT if "
                "the function takes longer to start",
            ),
            status="timeout",
        )
        self.kill(signal.SIGKILL)  # its exit ends the attempt

    def _cancel_init_timer(self) -> None:
        if self._init_timer:
            self._init_timer.cancel()
            self._init_timer = None

    # Runtime API calls, one method per route; the HTTP side lives in runtime_api.py.

    def next_invocation(self, start: Callable[[Invocation], None]) -> Callable[[], None]:
        """/next: `start(invocation)` is called as an invocation starts here, now or later.
        The function returned withdraws the request (its runtime went away) if none has."""
        if self.current is not None:
            raise ApiError(
                403, "InvalidStateTransition", f"Invocation {self.current.id} has no result yet"
            )
        if self._waiting is not None:
            raise ApiError(
                403,
                "InvalidStateTransition",
                "Another /next of this runtime is already waiting for the next invocation",
            )
        if self.init_error is not None:
            raise ApiError(
                403, "InvalidStateTransition", "Init failed (/init/error): the runtime must exit"
            )
        if not self.initialized:
            self._cancel_init_timer()
            self.initialized = True
            self._init_ms = self._ms_since(self._spawned_at)
            self.up.set()
        self._waiting = start
        if self.reserved:
            invocation, self.reserved = self.reserved, None
            self._start(invocation)
        else:
            self.queue.offer(self._start)
        return self._withdraw

    def _start(self, invocation: Invocation) -> bool:
        start, self._waiting = self._waiting, None
        if start is None:
            return False
        self.capture.drain()  # what came before belongs to the invocation before
        self.current, self.capture.tail = invocation, invocation.tail
        self._started_at = time.monotonic()
        self.deadline_ms = int((time.time() + self.settings.timeout) * 1000)
        self._deadline_timer = self.loop.call_later(
            self.settings.timeout, self._time_out, invocation
        )
        self._tail(platform.start(invocation.id, self.settings.function_version))
        start(invocation)
        return True

    def _withdraw(self) -> None:
        if self._waiting is not None:
            self._waiting = None
            self.queue.withdraw(self._start)

    def give_back(self, invocation: Invocation) -> None:
        """A /next whose answer could not be delivered: another runtime gets the invocation."""
        if self.current is invocation:
            self._cancel_deadline()
            self.current = self.capture.tail = None
            log(f"RequestId: {invocation.id} was not delivered: the runtime's /next went away")
            self.queue.submit(invocation, front=True)

    def finish(self, request_id: str, outcome: Outcome) -> None:
        invocation = self._current_for(request_id)
        self._cancel_deadline()
        self.current, self.last_finished_id = None, invocation.id
        # First: the log (and its tail) is complete once the caller has its answer.
        self._log_end(invocation, "error" if outcome.failed else "success", outcome.error_type)
        invocation.finish(outcome)

    def begin_stream(self, request_id: str, outcome: Outcome) -> Invocation | None:
        """A streamed result: the caller gets it now, while the invocation stays current (and
        its deadline runs) until `end_stream`. None when the caller has already gone."""
        invocation = self._current_for(request_id)
        if invocation.gone:
            invocation.finish(outcome)
            return None
        return invocation if invocation.finish(outcome) else None

    def end_stream(self, request_id: str) -> None:
        if self.current is not None and self.current.id == request_id:
            self._cancel_deadline()
            invocation, self.current, self.last_finished_id = self.current, None, request_id
            self._log_end(invocation, "success")

    def fail_init(self, outcome: Outcome) -> None:
        """/init/error: the waiting request gets the error at once. A runtime should exit after
        it; one that does not is stopped, so that the next request retries init."""
        if self.initialized:
            raise ApiError(403, "InvalidStateTransition", "Init has already completed")
        if self.init_error is not None:
            raise ApiError(403, "InvalidStateTransition", "Init has already failed")
        self._init_failed(outcome)
        self._cancel_init_timer()
        self._init_timer = self.loop.call_later(INIT_ERROR_EXIT_SECONDS, self.kill, signal.SIGKILL)

    def _current_for(self, request_id: str) -> Invocation:
        if self.current is not None and self.current.id == request_id:
            return self.current
        if request_id == self.last_finished_id:
            raise ApiError(
                403, "InvalidStateTransition", f"Invocation {request_id} already has a result"
            )
        raise ApiError(400, "InvalidRequestID", "Invalid request ID")

    def _time_out(self, invocation: Invocation) -> None:
        seconds = f"{self.settings.timeout:.2f}"
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        self._tail(
            platform.fault(f"{stamp}Z {invocation.id} Task timed out after {seconds} seconds")
        )
        # END and REPORT now, so that the answer's log tail has them; the process stays
        # current until it has gone, so that it gets no other invocation meanwhile.
        self._log_end(invocation, "timeout", "Sandbox.Timedout")
        invocation.finish(
            Outcome.error(
                504,
                "Sandbox.Timedout",
                f"RequestId: {invocation.id} Error: Task timed out after {seconds} seconds",
            )
        )
        self.kill(signal.SIGKILL)  # its exit starts a fresh process

    def kill(self, sig: int) -> None:
        if self.process and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    def _cancel_deadline(self) -> None:
        if self._deadline_timer:
            self._deadline_timer.cancel()
            self._deadline_timer = None

    def _tail(self, line: bytes) -> None:
        """A platform line written during an invocation belongs to its tail too."""
        if self.capture.tail is not None:
            keep_tail(self.capture.tail, line)

    def _log_end(self, invocation: Invocation, status: str, error_type: str | None = None) -> None:
        """END and REPORT, once, after what the process wrote before them."""
        if invocation.ended:
            return
        invocation.ended = True
        self.capture.drain()
        init_ms, self._init_ms = self._init_ms, None
        lines = platform.end(
            invocation.id,
            self._ms_since(self._started_at),
            self.settings.memory_size,
            self._peak_memory_mb(),
            init_ms,
            status,
            error_type if status != "success" else None,
        )
        if invocation.tail is not None:
            keep_tail(invocation.tail, lines)
        self.capture.tail = None  # what the process writes from now on is no one's

    def _peak_memory_mb(self) -> int:
        """VmHWM of the process. A peak only grows, so a reading less than PEAK_READ_EVERY old
        stands: at hundreds of invocations a second, /proc is not read for each."""
        now = time.monotonic()
        if now - self._peak_read_at >= PEAK_READ_EVERY:
            with contextlib.suppress(OSError, ValueError):
                status = os.pread(self._status_fd, 4096, 0)
                start = status.find(b"VmHWM:")
                if start >= 0:
                    self._peak_mb = int(status[start + 6 : status.index(b"kB", start)]) // 1024
                    self._peak_read_at = now
        return self._peak_mb

    @staticmethod
    def _ms_since(start: float) -> float:
        return (time.monotonic() - start) * 1000


def bootstrap_env(settings: Settings, port: int) -> dict[str, str]:
    """The environment of a bootstrap: the container's, Lambda's documented values where the
    user set none, and the Runtime API address, which is always ours."""
    stream = time.strftime("%Y/%m/%d/") + f"[{settings.function_version}]" + secrets.token_hex(16)
    defaults = {
        "AWS_LAMBDA_FUNCTION_NAME": settings.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": settings.function_version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(settings.memory_size),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{settings.function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": stream,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": settings.region,
        "AWS_DEFAULT_REGION": settings.region,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "LAMBDA_TASK_ROOT": settings.task_root,
        "LAMBDA_RUNTIME_DIR": settings.runtime_dir,
        "TZ": ":/etc/localtime",
        "LANG": "en_US.UTF-8",
    }
    env = {**defaults, **os.environ}
    env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{port}"
    env["_HANDLER"] = settings.handler
    env.pop("_X_AMZN_TRACE_ID", None)  # set per invocation by the runtime, never inherited
    return env


class InvokerPool:
    """The invokers, the queue they share, and the bookkeeping shutdown needs."""

    def __init__(self, settings: Settings, bootstrap: str):
        self.queue = WorkQueue(settings.queue_size)
        self.invokers = [
            Invoker(i, settings, self.queue, bootstrap, lambda: self.ready)
            for i in range(settings.invoker_count)
        ]
        self.in_flight = 0
        self._drained = asyncio.Event()
        self._drained.set()
        self._runs: dict[Invoker, asyncio.Task] = {}
        self._starter: asyncio.Task | None = None

    @property
    def ready(self) -> bool:
        return self.ready_count > 0

    @property
    def ready_count(self) -> int:
        """Bootstraps that have initialised and are running."""
        return sum(invoker.ready for invoker in self.invokers)

    def start(self) -> None:
        """The first bootstrap starts alone, the others once it is up: bootstraps that start
        together share the CPU and are all ready late (four JVMs on two cores take as long as
        one each, one after the other), while one ready early serves meanwhile."""
        first, *others = self.invokers
        self._runs[first] = asyncio.ensure_future(first.run())
        if others:
            self._starter = asyncio.ensure_future(self._start_after(first, others))

    async def _start_after(self, first: Invoker, others: list[Invoker]) -> None:
        # Up means it asked for work, or its start failed; the init timeout bounds the wait.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(first.up.wait(), first.settings.init_timeout)
        for invoker in others:
            self._runs[invoker] = asyncio.ensure_future(invoker.run())

    def submit(self, invocation: Invocation) -> None:
        """Queue an invocation; its listeners hear its outcome. QueueFull when saturated."""
        self.queue.submit(invocation)
        self.in_flight += 1
        self._drained.clear()
        invocation.listen(self._settled)

    def _settled(self, _: Outcome) -> None:
        self.in_flight -= 1
        if not self.in_flight:
            self._drained.set()

    async def drain(self, timeout: float) -> bool:
        """Wait for in-flight invocations; False if some were still running at the timeout."""
        try:
            await asyncio.wait_for(self._drained.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def stop(self, grace: float = 2.0) -> None:
        """SIGTERM every bootstrap, SIGKILL what is left after the grace period (Lambda's 2 s)."""
        running = []
        for invoker in self.invokers:
            invoker.stopping = True
        if self._starter is not None:
            self._starter.cancel()
        for invoker, task in self._runs.items():
            if invoker.process and invoker.process.returncode is None:
                invoker.kill(signal.SIGTERM)
                running.append(task)
            else:
                task.cancel()  # not started, or waiting to retry a failed init: nothing to stop
        if running:
            _, pending = await asyncio.wait(running, timeout=grace)
            for invoker in self.invokers:
                invoker.kill(signal.SIGKILL)
            if pending:
                await asyncio.wait(pending, timeout=1)
        for invoker in self.invokers:
            invoker.capture.drain()
            invoker.capture.close()
