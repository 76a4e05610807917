"""Reliability under load and under attack (issue 7, item 8), the server as a local process.

Loopback only, bounded in count and time. Each test records what it did (requests sent, faults
injected, hostile inputs tried, failures) and the module prints every test's figures at its end,
failed tests included, so a CI log shows what was tried and what it cost.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import math
import os
import random
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import pytest

from tests.rawhttp import (
    TCP_ESTABLISHED,
    Answer,
    ClosedBeforeAnswer,
    Connection,
    children,
    cpu_seconds,
    free_port_block,
    held_connections,
    raise_open_files_limit,
    request_bytes,
    rss_kb,
    server_side_state,
)

# Payload sizes and kill times are drawn from seeded generators, so a failure replays.
SEED = 7
MAX_PAYLOAD = 1024 * 1024
JSON = {"Content-Type": "application/json"}
# What RSS may stay above its idle figure once hostile clients have gone: closed connections
# wait for CPython's next full garbage collection (an asyncio transport refers to itself), about
# 2 kB each; a connection's buffers must not stay.
RSS_SLACK_KB = 8 * 1024


@dataclass
class Figures:
    requests: int = 0
    faults: int = 0
    hostile: int = 0
    failures: list[str] = field(default_factory=list)
    measured: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.failures.append(message)

    def assert_no_failures(self) -> None:
        if self.failures:
            kinds = collections.Counter(self.failures).most_common(10)
            shown = "\n".join(f"{count} x {message}" for message, count in kinds)
            raise AssertionError(f"{len(self.failures)} failures, the most frequent:\n{shown}")


FIGURES: dict[str, Figures] = {}


@pytest.fixture
def figures(request) -> Figures:
    return FIGURES.setdefault(request.node.name, Figures())


@pytest.fixture(scope="module", autouse=True)
def print_figures(request):
    """Print every test's figures once the module is done, past pytest's output capture."""
    yield
    total = Figures()
    lines = []
    for name, figures in [*FIGURES.items(), ("total", total)]:
        lines.append(
            f"{name}: {figures.requests} requests sent, {figures.faults} faults injected, "
            f"{figures.hostile} hostile inputs tried, {len(figures.failures)} failures"
        )
        lines += [f"    {line}" for line in figures.measured]
        if figures is not total:
            total.requests += figures.requests
            total.faults += figures.faults
            total.hostile += figures.hostile
            total.failures += figures.failures
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\n--- reliability figures ---\n" + "\n".join(lines))


@pytest.fixture
def start(start_server):
    """start_server with INVOKER_COUNT Runtime API ports where no client socket can take one."""

    def run(
        handler: str = "handler.echo", invokers: int = 1, bootstrap: str | None = None, **env: str
    ):
        first = free_port_block(invokers)
        return start_server(
            handler,
            bootstrap,
            INVOKER_COUNT=str(invokers),
            KLR_RUNTIME_API_PORT=str(first),
            **env,
        )

    return run


# --- load: jobs, the load generator, and the checks of an echo's answer -----------------------


@dataclass
class Job:
    number: int
    body: bytes
    expected: object  # the answer's JSON, parsed


Outcome = Answer | Exception
OnOutcome = Callable[[Job, float, Outcome], None]


def payload_size(rng: random.Random) -> int:
    """Skewed like real traffic: mostly under 16 KB, one in fifty up to 1 MB, a few empty."""
    roll = rng.random()
    if roll < 0.01:
        return 0
    low, high = (32, 16 * 1024) if roll < 0.98 else (16 * 1024, MAX_PAYLOAD)
    return int(math.exp(rng.uniform(math.log(low), math.log(high))))


def payload_sizes(rng: random.Random) -> Iterator[int]:
    """Sizes from `payload_size`, every 1000th exactly the largest."""
    for number in itertools.count():
        yield MAX_PAYLOAD if number % 1000 == 999 else payload_size(rng)


def echo_job(number: int, size: int) -> Job:
    """An event of `size` bytes (at least its id) that names its request all through, so a
    crossed, truncated or spliced answer cannot pass for it."""
    if size == 0:
        return Job(number, b"", {})  # the front door's empty event
    tag = f"request-{number}/"
    room = max(0, size - len(json.dumps({"id": tag, "pad": ""})))
    event = {"id": tag, "pad": (tag * (room // len(tag) + 1))[:room]}
    return Job(number, json.dumps(event).encode(), event)


def echo_failure(job: Job, outcome: Outcome) -> str | None:
    if isinstance(outcome, Exception):
        return f"request {job.number}: {type(outcome).__name__}: {outcome}"
    if outcome.status != 200:
        return f"request {job.number}: status {outcome.status}: {outcome.body[:300]!r}"
    try:
        answer = json.loads(outcome.body)
    except ValueError:
        return f"request {job.number}: not JSON: {outcome.body[:300]!r}"
    if answer != job.expected:
        theirs = answer.get("id") if isinstance(answer, dict) else str(answer)[:100]
        return (
            f"request {job.number} ({len(job.body)} bytes) got another answer: "
            f"id {theirs!r}, {len(outcome.body)} bytes"
        )
    return None


def repeated_request_id(outcome: Outcome, seen: set[str]) -> str | None:
    """Every answer names its own invocation; two answers naming one are crossed."""
    if isinstance(outcome, Exception):
        return None
    request_id = outcome.headers.get("x-amzn-requestid", "")
    if not request_id:
        return f"answer without X-Amzn-RequestId: status {outcome.status}"
    if request_id in seen:
        return f"two answers name invocation {request_id}"
    seen.add(request_id)
    return None


async def run_load(
    port: int,
    jobs: Iterable[Job],
    concurrency: int,
    on_outcome: OnOutcome,
    seconds: float,
    request_timeout: float = 60,
) -> None:
    """Send `jobs` over `concurrency` keep-alive connections, each job once, and hand every
    outcome (an answer, or the error that stood in its way) to `on_outcome` with its send time.
    A worker whose connection cannot be opened stops: the server is refusing connections."""
    shared = iter(jobs)  # the workers take turns on one iterator

    async def worker() -> None:
        connection = None
        for job in shared:
            sent_at = time.monotonic()
            if connection is None:
                try:
                    connection = await asyncio.wait_for(Connection.open(port), request_timeout)
                except OSError as error:  # TimeoutError is an OSError
                    on_outcome(job, sent_at, error)
                    return
                sent_at = time.monotonic()
            try:
                outcome = await asyncio.wait_for(
                    connection.request("POST", "/", job.body, JSON), request_timeout
                )
                reuse = outcome.headers.get("connection", "").lower() != "close"
            except (OSError, EOFError, ValueError) as error:
                outcome, reuse = error, False
            if not reuse:
                connection.close()
                connection = None
            on_outcome(job, sent_at, outcome)
        if connection:
            connection.close()

    try:
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), seconds)
    except asyncio.TimeoutError:
        raise AssertionError(f"the load did not finish within {seconds} s") from None


def assert_clean_log(server) -> None:
    """No traceback, and nothing the server calls an internal error."""
    logs = server.logs()
    for sign in ("Traceback", "klr: internal error"):
        assert sign not in logs, f"{sign!r} in the server's log:\n{logs[-5000:]}"


async def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        await asyncio.sleep(0.05)


# --- 1. many invocations, each answer checked against its own request ------------------------

INVOCATIONS = 20_000


def test_20000_invocations_at_concurrency_64_each_get_their_own_answer(start, figures):
    server = start(invokers=8, AWS_LAMBDA_FUNCTION_TIMEOUT="30")
    server.wait_until_all_invokers_ready()
    pid = server.process.pid
    sizes = list(itertools.islice(payload_sizes(random.Random(SEED)), INVOCATIONS))
    seen: set[str] = set()

    def check(job: Job, sent_at: float, outcome: Outcome) -> None:
        figures.requests += 1
        failure = echo_failure(job, outcome) or repeated_request_id(outcome, seen)
        if failure:
            figures.fail(failure)

    asyncio.run(run_load(server.port, (echo_job(n, 100) for n in range(100)), 8, check, 60))
    idle_rss = rss_kb(pid)
    started, client_cpu, server_cpu = time.monotonic(), time.process_time(), cpu_seconds(pid)
    jobs = (echo_job(number, size) for number, size in enumerate(sizes, 100))
    asyncio.run(run_load(server.port, jobs, 64, check, seconds=240))
    elapsed = time.monotonic() - started
    client_cpu, server_cpu = time.process_time() - client_cpu, cpu_seconds(pid) - server_cpu
    left_rss = rss_kb(pid)
    figures.measured.append(
        f"{sum(sizes) / 1e6:.0f} MB each way, largest {max(sizes)} bytes, median "
        f"{int(statistics.median(sizes))} bytes; {elapsed:.1f} s, {INVOCATIONS / elapsed:.0f} req/s"
    )
    figures.measured.append(
        f"CPU: client {client_cpu:.1f} s, server {server_cpu:.1f} s "
        f"({server_cpu / INVOCATIONS * 1e6:.0f} us per invocation)"
    )
    figures.measured.append(f"server RSS: idle {idle_rss} kB, after the load {left_rss} kB")
    if left_rss > idle_rss + RSS_SLACK_KB:
        figures.fail(f"RSS {left_rss} kB after the load, {idle_rss} kB before: payloads kept")
    figures.assert_no_failures()
    assert figures.requests == 100 + INVOCATIONS
    assert_clean_log(server)


PIPELINES, PIPELINE_DEPTH, PIPELINE_ROUNDS = 16, 8, 10


def test_pipelined_requests_under_load_are_answered_in_order(start, figures):
    """HTTP/1.1 pipelining: each connection sends its requests back to back before reading,
    and the answers must come back in the order of the requests."""
    server = start(invokers=4, AWS_LAMBDA_FUNCTION_TIMEOUT="30")
    server.wait_until_all_invokers_ready()
    sizes = payload_sizes(random.Random(SEED + 3))
    numbers = itertools.count()
    seen: set[str] = set()

    async def pipeline() -> None:
        connection = await Connection.open(server.port)
        try:
            for _ in range(PIPELINE_ROUNDS):
                jobs = [echo_job(next(numbers), next(sizes)) for _ in range(PIPELINE_DEPTH)]
                for job in jobs:
                    connection.send("POST", "/", job.body, JSON)
                for job in jobs:
                    figures.requests += 1
                    try:
                        outcome = await asyncio.wait_for(connection.answer(), 60)
                    except (OSError, EOFError, ValueError) as error:
                        figures.fail(echo_failure(job, error))
                        return  # the rest of this pipeline has no answers to read
                    failure = echo_failure(job, outcome) or repeated_request_id(outcome, seen)
                    if failure:
                        figures.fail(failure)
        finally:
            connection.close()

    async def attack() -> None:
        await asyncio.wait_for(asyncio.gather(*(pipeline() for _ in range(PIPELINES))), 120)

    asyncio.run(attack())
    figures.assert_no_failures()
    assert figures.requests == PIPELINES * PIPELINE_DEPTH * PIPELINE_ROUNDS
    assert_clean_log(server)


# --- 2. bootstraps killed at random under load ------------------------------------------------

KILLS = 30


def kill_child(parent: int, child: int) -> bool:
    """SIGKILL `child` if it is still `parent`'s: a pidfd pins the process we checked."""
    try:
        pidfd = os.pidfd_open(child)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{child}/stat") as stat:
            ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        if ppid != parent:
            return False
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        return True
    except (FileNotFoundError, ProcessLookupError):
        return False
    finally:
        os.close(pidfd)


def exit_error_failure(job: Job, outcome: Answer) -> str | None:
    """A 502 must be this request's own Runtime.ExitError: its invocation, no one else's."""
    try:
        error = json.loads(outcome.body)
    except ValueError:
        return f"request {job.number}: 502 that is not JSON: {outcome.body[:300]!r}"
    if error.get("errorType") != "Runtime.ExitError":
        return f"request {job.number}: 502 {error}"
    own = outcome.headers.get("x-amzn-requestid", "")
    message = error.get("errorMessage", "")
    if "RequestId: " in message and f"RequestId: {own} " not in message:
        return f"request {job.number} (invocation {own}) got another's exit error: {message}"
    return None


def test_bootstraps_killed_under_load_fail_only_their_own_invocations(start, figures):
    server = start(invokers=8, AWS_LAMBDA_FUNCTION_TIMEOUT="30")
    server.wait_until_all_invokers_ready()
    rng = random.Random(SEED)
    sizes = payload_sizes(random.Random(SEED + 1))
    seen: set[str] = set()
    exit_errors = 0
    killing = True

    def check(job: Job, sent_at: float, outcome: Outcome) -> None:
        nonlocal exit_errors
        figures.requests += 1
        if isinstance(outcome, Answer) and outcome.status == 502:
            exit_errors += 1
            failure = exit_error_failure(job, outcome)
        else:
            failure = echo_failure(job, outcome)
        failure = failure or repeated_request_id(outcome, seen)
        if failure:
            figures.fail(failure)

    async def kill_bootstraps() -> None:
        nonlocal killing
        deadline = time.monotonic() + 60
        while figures.faults < KILLS:
            assert time.monotonic() < deadline, f"{figures.faults} kills in 60 s: no bootstraps?"
            await asyncio.sleep(rng.uniform(0.03, 0.15))  # pacing of the faults, not a wait
            bootstraps = children(server.process.pid)
            if bootstraps and kill_child(server.process.pid, rng.choice(bootstraps)):
                figures.faults += 1
        killing = False

    async def attack() -> None:
        jobs = itertools.takewhile(
            lambda _: killing, (echo_job(number, next(sizes)) for number in itertools.count())
        )
        await asyncio.gather(kill_bootstraps(), run_load(server.port, jobs, 32, check, seconds=120))

    asyncio.run(attack())
    figures.measured.append(f"{exit_errors} invocations failed with Runtime.ExitError")
    under_fire = figures.requests

    # After the faults every invoker comes back and the server serves as before.
    server.wait_until_all_invokers_ready()
    jobs = (echo_job(number, next(sizes)) for number in range(under_fire, under_fire + 200))
    asyncio.run(run_load(server.port, jobs, 8, check, seconds=60))
    figures.assert_no_failures()
    assert 1 <= exit_errors <= figures.faults, (
        f"{exit_errors} exit errors for {figures.faults} kills: each kill fails at most the one "
        "invocation its process held, and some kills must have hit one"
    )
    assert figures.requests == under_fire + 200
    assert_clean_log(server)


# A bootstrap that dies half-way through posting its result: the deterministic form of a kill
# that lands while a result is on the wire.
DIES_MID_RESULT = """
import http.client, os, signal
api = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"])
api.request("GET", "/2018-06-01/runtime/invocation/next")
answer = api.getresponse()
request_id = answer.getheader("Lambda-Runtime-Aws-Request-Id")
answer.read()
api.putrequest("POST", "/2018-06-01/runtime/invocation/%s/response" % request_id)
api.putheader("Content-Length", "1000000")
api.endheaders()
api.send(b"x" * 500000)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_bootstrap_killed_while_posting_its_result_fails_with_runtime_exit_error(
    start, figures, tmp_path
):
    script = tmp_path / "dies_mid_result.py"
    script.write_text(DIES_MID_RESULT)
    server = start(bootstrap=f"exec {sys.executable} {script}")

    async def invoke_all() -> None:
        for number in range(10):  # its exit and its broken upload reach the server in any order
            job = echo_job(number, 100)
            connection = await Connection.open(server.port)
            try:
                answer = await asyncio.wait_for(connection.request("POST", "/", job.body, JSON), 30)
            finally:
                connection.close()
            figures.requests += 1
            figures.faults += 1
            failure = exit_error_failure(job, answer) if answer.status == 502 else None
            if answer.status != 502 or failure:
                figures.fail(failure or f"request {number}: {answer.status} {answer.body[:300]!r}")
            elif b"signal: SIGKILL" not in answer.body:
                figures.fail(f"request {number}: {answer.body[:300]!r} does not say SIGKILL")

    asyncio.run(invoke_all())
    figures.assert_no_failures()
    assert_clean_log(server)


# --- clients that vanish mid-request or mid-answer --------------------------------------------

VANISHING = 200


async def vanish(port: int, number: int, kind: int) -> None:
    """A client that goes away part-way: after half a body, or right after its request, or
    once its answer has begun; with a FIN or with a reset."""
    connection = await Connection.open(port)
    job = echo_job(number, 256 * 1024)
    if kind % 3 == 0:
        whole = request_bytes("POST", "/", job.body, JSON)
        connection.writer.write(whole[: len(whole) - len(job.body) // 2])
    else:
        connection.send("POST", "/", job.body, JSON)
    await connection.writer.drain()
    if kind % 3 == 2:
        await asyncio.wait_for(connection.reader.readline(), 30)  # the answer has begun
    if kind % 2:
        connection.reset()
    else:
        connection.close()


def test_clients_that_vanish_mid_request_or_mid_answer_disturb_no_one(start, figures):
    server = start(invokers=4, AWS_LAMBDA_FUNCTION_TIMEOUT="30")
    server.wait_until_all_invokers_ready()
    sizes = payload_sizes(random.Random(SEED + 2))
    seen: set[str] = set()
    vanishing = True

    def check(job: Job, sent_at: float, outcome: Outcome) -> None:
        figures.requests += 1
        failure = echo_failure(job, outcome) or repeated_request_id(outcome, seen)
        if failure:
            figures.fail(failure)

    async def vanishers() -> None:
        nonlocal vanishing
        gate = asyncio.Semaphore(16)

        async def one(number: int) -> None:
            async with gate:
                figures.hostile += 1
                await vanish(server.port, number, number)

        await asyncio.gather(*(one(number) for number in range(VANISHING)))
        vanishing = False

    async def attack() -> None:
        jobs = itertools.takewhile(
            lambda _: vanishing, (echo_job(number, next(sizes)) for number in itertools.count())
        )
        await asyncio.gather(vanishers(), run_load(server.port, jobs, 16, check, seconds=120))
        await wait_until(
            lambda: held_connections(server.port) == 0, 30, "the server to close what vanished"
        )
        await wait_until_served(server.port, 10, "an answer once the clients had vanished")
        figures.requests += 1

    asyncio.run(attack())
    figures.assert_no_failures()
    server.wait_until_all_invokers_ready()
    assert_clean_log(server)


# --- 3. idle, slowloris and slow-body clients; timeouts; the connection limit ---------------

IDLE_CONNECTIONS = 2000
SLOW_HEADERS = 20
SLOW_BODIES = 5
BIG_HEADERS = 10
# What a held connection may cost the server: its objects, and buffers bounded by the header
# limit (KLR_MAX_HEADER_BYTES, 64 KB by default), which a growing buffer may take twice over.
CONNECTION_COST_KB = 16
HEADER_LIMIT_KB = 64


async def normal_request(port: int, number: int) -> float:
    """One echo on a fresh connection; its latency in seconds, connect included."""
    started = time.monotonic()
    connection = await Connection.open(port)
    try:
        job = echo_job(number, 100)
        answer = await connection.request("POST", "/", job.body, {**JSON, "Connection": "close"})
    finally:
        connection.close()
    failure = echo_failure(job, answer)
    assert not failure, failure
    return time.monotonic() - started


async def wait_until_served(port: int, seconds: float, what: str) -> None:
    """Once an echo on a fresh connection gets its answer."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            await normal_request(port, 0)
            return
        except (OSError, EOFError, ValueError, AssertionError) as error:
            assert time.monotonic() < deadline, f"waited {seconds} s for {what}: {error!r}"
        await asyncio.sleep(0.05)


async def open_idle(port: int, count: int) -> list[Connection]:
    """`count` connections that never send a byte, opened a few dozen at a time."""
    gate = asyncio.Semaphore(64)

    async def one() -> Connection:
        async with gate:
            return await asyncio.wait_for(Connection.open(port), 30)

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def trickle(connection: Connection, head: bytes, every: float) -> None:
    """Send `head` at once, then one more byte every `every` seconds until cancelled or cut
    off: a header, or a body, that never ends."""
    connection.writer.write(head)
    for byte in itertools.cycle(b"abcdefgh"):
        await asyncio.sleep(every)
        if connection.writer.is_closing():
            return
        connection.writer.write(bytes([byte]))
        try:
            await connection.writer.drain()
        except ConnectionError:
            return


SLOW_HEADER = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
SLOW_BODY = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n"
# Seven 8 KB header lines, just under the header limits, and then nothing.
BIG_HEADER = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(
    b"X-Big-%d: %s\r\n" % (line, b"b" * 8000) for line in range(7)
)


def test_a_normal_client_is_answered_within_100_ms_beside_2000_idle_and_slowloris_connections(
    start, figures
):
    raise_open_files_limit(8192)
    # Timeouts far beyond the test, so every attacker stays connected while we measure.
    server = start(
        invokers=2,
        KLR_MAX_CONNECTIONS="4096",
        KLR_HEADER_TIMEOUT="600",
        KLR_IDLE_TIMEOUT="600",
        KLR_BODY_TIMEOUT="600",
    )
    server.wait_until_all_invokers_ready()
    pid = server.process.pid

    async def attack() -> None:
        for number in range(20):  # the idle figure includes what serving a request allocates
            await normal_request(server.port, number)
        idle_rss = rss_kb(pid)

        attackers = await open_idle(server.port, IDLE_CONNECTIONS)
        slow = [await Connection.open(server.port) for _ in range(SLOW_HEADERS + SLOW_BODIES)]
        attackers += slow
        trickles = [
            asyncio.ensure_future(trickle(c, SLOW_HEADER, 1.0)) for c in slow[:SLOW_HEADERS]
        ]
        trickles += [asyncio.ensure_future(trickle(c, SLOW_BODY, 1.0)) for c in slow[SLOW_HEADERS:]]
        for _ in range(BIG_HEADERS):
            connection = await Connection.open(server.port)
            connection.writer.write(BIG_HEADER)
            attackers.append(connection)
        held = len(attackers)
        figures.hostile += held
        await wait_until(
            lambda: held_connections(server.port) >= held, 60, f"the server to accept {held}"
        )

        latencies = []
        for number in range(40):
            latencies.append(await normal_request(server.port, 1000 + number))
            figures.requests += 1
        attack_rss = rss_kb(pid)
        assert held_connections(server.port) >= held, "attackers were cut off while we measured"

        for task in trickles:
            task.cancel()
        for connection in attackers:
            connection.close()
        await wait_until(
            lambda: held_connections(server.port) == 0, 30, "the server to close the attackers"
        )
        await normal_request(server.port, 2000)
        left_rss = rss_kb(pid)

        p50, worst = statistics.median(latencies), max(latencies)
        figures.measured.append(
            f"normal client during the attack: p50 {p50 * 1000:.1f} ms, max {worst * 1000:.1f} ms "
            f"over {len(latencies)} requests"
        )
        figures.measured.append(
            f"server RSS: idle {idle_rss} kB, {held} attackers {attack_rss} kB "
            f"({(attack_rss - idle_rss) / held:.1f} kB each), after they left {left_rss} kB"
        )
        bound = held * CONNECTION_COST_KB + (len(slow) + BIG_HEADERS) * 2 * HEADER_LIMIT_KB
        if attack_rss - idle_rss > bound:
            figures.fail(f"{held} attackers cost {attack_rss - idle_rss} kB, over {bound} kB")
        if p50 > 0.1 or worst > 0.1:
            figures.fail(f"normal client p50 {p50 * 1000:.1f} ms, max {worst * 1000:.1f} ms")
        if left_rss > idle_rss + RSS_SLACK_KB:
            figures.fail(f"RSS {left_rss} kB after the attackers left, {idle_rss} kB idle")

    asyncio.run(attack())
    figures.assert_no_failures()
    assert_clean_log(server)


# Small timeouts, each different, so the test sees which one cut a client off.
HEADER_TIMEOUT, IDLE_TIMEOUT, BODY_TIMEOUT, WRITE_TIMEOUT = 1.0, 2.0, 1.0, 1.0
# How late, past its timeout, the server may close a connection on a busy machine; and how
# early (a fraction of it), given that our clock starts a little after or before the server's.
CUTOFF_SLACK = 4.0
EARLIEST = 0.8
# Two answers of this size pipelined fill any loopback socket buffers (4 MB at most here).
PIPELINED_ECHO = 3 * 1024 * 1024
# A client cut off gets no answer, or one that says why.
TIMEOUT_ANSWERS = (b"HTTP/1.1 408 ", b"HTTP/1.1 400 ")


async def cut_off_after(
    connection: Connection, since: float, low: float, high: float, what: str, figures: Figures
) -> float:
    """Expect the server to close `connection` between `low` and `high` seconds after `since`;
    how long it took (inf: not at all)."""
    figures.hostile += 1
    try:
        rest = await connection.read_to_end(since + high - time.monotonic())
    except asyncio.TimeoutError:
        figures.fail(f"{what}: still open {high:g} s later")
        return math.inf
    finally:
        connection.close()
    elapsed = time.monotonic() - since
    if elapsed < low:
        figures.fail(f"{what}: closed after {elapsed:.2f} s, too early for its timeout")
    if rest and not rest.startswith(TIMEOUT_ANSWERS):
        figures.fail(f"{what}: closed with {rest[:200]!r}")
    return elapsed


async def stop_reading(port: int, figures: Figures) -> float:
    """Pipeline two large echoes and never read: the server must give up writing. How long it
    took, from sending them (inf: it did not)."""
    figures.hostile += 1
    connection = await Connection.open(port, receive_buffer=8192)
    try:
        for number in range(2):
            connection.send("POST", "/", echo_job(number, PIPELINED_ECHO).body, JSON)
        started = time.monotonic()
        allowed = WRITE_TIMEOUT + CUTOFF_SLACK + 5  # 5 s to echo them on a busy machine
        while server_side_state(port, connection.local_port) == TCP_ESTABLISHED:
            if time.monotonic() > started + allowed:
                figures.fail(f"a client that stopped reading: still connected {allowed:g} s later")
                return math.inf
            await asyncio.sleep(0.1)
        return time.monotonic() - started
    finally:
        connection.close()


def test_timeouts_cut_off_idle_and_slow_clients_and_free_their_memory(start, figures):
    raise_open_files_limit(8192)
    server = start(
        KLR_HEADER_TIMEOUT=f"{HEADER_TIMEOUT:g}",
        KLR_IDLE_TIMEOUT=f"{IDLE_TIMEOUT:g}",
        KLR_BODY_TIMEOUT=f"{BODY_TIMEOUT:g}",
        KLR_WRITE_TIMEOUT=f"{WRITE_TIMEOUT:g}",
    )
    server.wait_until_all_invokers_ready()
    pid, port = server.process.pid, server.port
    never_sent = "a connection that never sent a byte"
    kept_alive = "an idle keep-alive connection"
    slow_header = "a header sent a byte every 0.25 s"
    slow_body = "a body sent a byte every 0.25 s"
    stopped_reading = "a client that stopped reading its answers"

    async def attack() -> None:
        for number in range(20):  # the idle figure includes what serving a request allocates
            await normal_request(port, number)
        idle_rss = rss_kb(pid)
        # Each watch starts with its connection, so it sees the close when it comes.
        watches: list[tuple[str, asyncio.Future]] = []

        def watch(what: str, connection: Connection, since: float, low: float, high: float):
            check = cut_off_after(
                connection, since, low * EARLIEST, high + CUTOFF_SLACK, what, figures
            )
            watches.append((what, asyncio.ensure_future(check)))

        for connection in await open_idle(port, IDLE_CONNECTIONS):
            first, last = min(HEADER_TIMEOUT, IDLE_TIMEOUT), max(HEADER_TIMEOUT, IDLE_TIMEOUT)
            watch(never_sent, connection, connection.opened_at, first, last)
        for number in range(3):
            connection = await Connection.open(port)
            job = echo_job(number, 100)
            failure = echo_failure(job, await connection.request("POST", "/", job.body, JSON))
            assert not failure, failure
            figures.requests += 1
            watch(kept_alive, connection, time.monotonic(), IDLE_TIMEOUT, IDLE_TIMEOUT)
        trickles = []
        for head, count, timeout, what in (
            (SLOW_HEADER, SLOW_HEADERS, HEADER_TIMEOUT, slow_header),
            (SLOW_BODY, SLOW_BODIES, BODY_TIMEOUT, slow_body),
        ):
            for _ in range(count):
                connection = await Connection.open(port)
                trickles.append(asyncio.ensure_future(trickle(connection, head, 0.25)))
                watch(what, connection, connection.opened_at, timeout, timeout)

        for _ in range(2):
            watches.append((stopped_reading, asyncio.ensure_future(stop_reading(port, figures))))
        took = await asyncio.gather(*(task for _, task in watches))
        for task in trickles:
            task.cancel()
        latest: dict[str, float] = {}
        for (what, _), seconds in zip(watches, took):
            latest[what] = max(latest.get(what, 0), seconds)
        figures.measured.append(
            "closed at the latest after: "
            + ", ".join(f"{what} {seconds:.2f} s" for what, seconds in latest.items())
        )

        await wait_until(
            lambda: held_connections(port) == 0, 30, "the server to close the attackers"
        )
        await normal_request(port, 100)
        left_rss = rss_kb(pid)
        figures.measured.append(
            f"server RSS: idle {idle_rss} kB, after the attackers {left_rss} kB"
        )
        if left_rss > idle_rss + RSS_SLACK_KB:
            figures.fail(f"RSS {left_rss} kB after the attackers left, {idle_rss} kB idle")

    asyncio.run(attack())
    figures.assert_no_failures()
    assert_clean_log(server)


MAX_CONNECTIONS = 20


def test_connections_beyond_the_limit_get_503_and_close(start, figures):
    server = start(
        KLR_MAX_CONNECTIONS=str(MAX_CONNECTIONS), KLR_HEADER_TIMEOUT="60", KLR_IDLE_TIMEOUT="60"
    )
    server.wait_until_all_invokers_ready()

    async def refused(number: int) -> None:
        """Connection `number`, one beyond the limit, gets a 503 and the server closes it."""
        figures.hostile += 1
        connection = await Connection.open(server.port)
        try:
            connection.send("POST", "/", echo_job(number, 100).body, JSON)
            answer = await asyncio.wait_for(connection.answer(), 10)
            if answer.status != 503:
                figures.fail(f"connection {number}: {answer.status} {answer.body[:200]!r}")
                return
            rest = await connection.read_to_end(10)
            if rest:
                figures.fail(f"connection {number}: bytes after the 503: {rest[:200]!r}")
        except asyncio.TimeoutError:
            figures.fail(f"connection {number}: no answer, or not closed, within 10 s")
        except (OSError, EOFError, ValueError) as error:
            figures.fail(f"connection {number}: {error!r}")
        finally:
            connection.close()

    async def attack() -> None:
        held = []
        for number in range(MAX_CONNECTIONS):  # each one answered, so each one counted
            connection = await Connection.open(server.port)
            job = echo_job(number, 100)
            failure = echo_failure(job, await connection.request("POST", "/", job.body, JSON))
            assert not failure, failure
            held.append(connection)
            figures.requests += 1
        await asyncio.gather(*(refused(MAX_CONNECTIONS + 1 + number) for number in range(5)))

        held.pop().close()  # the slot it frees serves again
        await wait_until_served(server.port, 10, "a freed slot to serve again")
        figures.requests += 1
        for connection in held:
            connection.close()

    asyncio.run(attack())
    figures.assert_no_failures()
    assert_clean_log(server)


# --- 4. SIGTERM under load -----------------------------------------------------------------

SLEEP_SECONDS = 0.3
# A request sent this long before SIGTERM was surely read by the server, so it must be answered;
# one sent later may have raced the server's closing of idle connections.
IN_FLIGHT_MARGIN = 0.5
# The server's default KLR_SHUTDOWN_TIMEOUT (25 s) and its bootstraps' 2 s grace, with room.
SHUTDOWN_ALLOWANCE = 35


def sleep_job(number: int) -> Job:
    """The sleep handler answers with the seconds it was given: a unique value names the request."""
    seconds = SLEEP_SECONDS + number * 1e-6
    return Job(number, json.dumps({"seconds": seconds}).encode(), {"slept": seconds})


def test_sigterm_under_load_finishes_in_flight_work_refuses_new_connections_and_exits_0(
    start, figures
):
    server = start("handler.sleep", invokers=4)
    server.wait_until_all_invokers_ready()
    answered_after_sigterm = 0
    sigterm_at = math.inf

    def check(job: Job, sent_at: float, outcome: Outcome) -> None:
        nonlocal answered_after_sigterm
        figures.requests += 1
        turned_away = (ClosedBeforeAnswer, ConnectionRefusedError, ConnectionResetError)
        if isinstance(outcome, turned_away) and sent_at > sigterm_at - IN_FLIGHT_MARGIN:
            return  # raced the shutdown: a client retries it elsewhere
        failure = echo_failure(job, outcome)
        if failure:
            figures.fail(f"{failure} (sent {sent_at - sigterm_at:+.2f} s from SIGTERM)")
        elif time.monotonic() > sigterm_at:
            answered_after_sigterm += 1

    async def connection_refused() -> bool:
        try:
            connection = await asyncio.wait_for(Connection.open(server.port), 5)
        except (ConnectionRefusedError, ConnectionResetError):
            return True  # reset: it was still queued for accepting when the listener closed
        connection.close()
        return False

    async def attack() -> None:
        nonlocal sigterm_at
        load = asyncio.ensure_future(
            run_load(server.port, map(sleep_job, itertools.count()), 24, check, seconds=60)
        )
        await wait_until(lambda: figures.requests >= 48, 30, "48 answers before SIGTERM")
        sigterm_at = time.monotonic()
        server.process.send_signal(signal.SIGTERM)

        deadline = sigterm_at + 3
        while not await connection_refused():
            assert time.monotonic() < deadline, "a new connection was accepted 3 s after SIGTERM"
            await asyncio.sleep(0.01)
        refused_at = time.monotonic()
        answered_when_refused = answered_after_sigterm
        attempts = accepted_later = 0
        exit_deadline = sigterm_at + SHUTDOWN_ALLOWANCE
        while server.process.poll() is None:
            assert time.monotonic() < exit_deadline, f"still running {SHUTDOWN_ALLOWANCE} s later"
            accepted_later += not await connection_refused()
            attempts += 1
            await asyncio.sleep(0.02)
        await load
        figures.measured.append(
            f"new connections refused {refused_at - sigterm_at:.2f} s after SIGTERM; "
            f"{answered_after_sigterm} requests answered after SIGTERM, "
            f"{answered_after_sigterm - answered_when_refused} of them after the refusals began; "
            f"{attempts - accepted_later} of {attempts} later connections refused"
        )
        if accepted_later:
            figures.fail(f"{accepted_later} connections accepted after the first refusal")
        if answered_after_sigterm - answered_when_refused < 1:
            figures.fail("nothing was still in flight when the server stopped accepting")

    asyncio.run(attack())
    figures.assert_no_failures()
    assert server.process.returncode == 0, server.logs()
    assert answered_after_sigterm >= 4, "the requests in flight at SIGTERM were not answered"
    assert_clean_log(server)
