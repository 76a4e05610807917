"""`invoke bench --peers`: KLR's server beside AWS's Runtime Interface Emulator (RIE) and two
floors, measured in one run on this machine with the same Python shim, handlers and load
generator (wrk, POSTing a small JSON event over keep-alive connections).

The peers, each serving conformance/fixtures/python's `echo` (a no-op) or `sleep` (50 ms):
- "klr": KLR's server as a local process (`python3 -m klr`, the shim as its bootstrap);
- "klr-python311": KLR in that image's container, the fixtures bind-mounted at /var/task;
- "rie": RIE, built from the Go module proxy at a pinned version, the same shim as bootstrap;
- "asyncio-echo": a bare asyncio HTTP echo server, the floor for a Python HTTP server;
- and the handler called in-process in a loop, the floor for any server at all.

KLR and RIE listen on every interface, so the local peers and wrk run in a network namespace
that has only loopback (`unshare -rn`); the container is published on 127.0.0.1. Every load is
a fixed-length wrk run after a short warm-up, and every wait has a deadline. Server CPU and
memory are the server process's own (/proc/<pid>), never its bootstraps'.

The results document (build/bench/peers.json) holds `servers`, one entry per server started
({peer, handler, invokers, idle_rss_kb, runs: [one per wrk load]}), `in_process` and `meta`;
images/peers_report.py turns it into the table, the targets and the chart.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from images import REPO_ROOT, UserError, host, wait
from images.functions import SAMPLES_DIR, TEST_LABELS
from images.matrix import IMAGE_PREFIX

RIE_PACKAGE = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"
RIE_VERSION = "v0.0.0-20261030222936-bef5c4ba774d"
RIE_INVOKE_PATH = "/2015-03-31/functions/function/invocations"
TOOLS_DIR = Path.home() / ".cache" / "klr" / "tools"
OUTPUT_DIR = REPO_ROOT / "build" / "bench"
SHIM = REPO_ROOT / "bootstrap" / "python" / "bootstrap.py"
FIXTURES = SAMPLES_DIR / "python"
ECHO_FLOOR = REPO_ROOT / "images" / "echo_floor.py"
CONTAINER_IMAGE = f"{IMAGE_PREFIX}python311"
KLR_SOURCE = REPO_ROOT  # where `python3 -m klr` imports the server from

WARMUP_SECONDS = 1
LOAD_SECONDS = 5
START_SECONDS = 90  # a server and all its bootstraps ready, on a busy 2-core machine
FIRST_ANSWER_SECONDS = 30  # RIE starts its bootstrap on the first invocation
WRK_TIMEOUT = "10s"  # per request: a 50 ms handler queued behind one other takes ~0.1 s
# Latency percentiles wrk reports: enough points for a CDF.
PERCENTILES = [*range(1, 100), 99.5, 99.9, 99.99]

EVENTS = {"echo": {"name": "Foo", "items": list(range(20))}, "sleep": {"seconds": 0.05}}
ANSWERS = {"echo": EVENTS["echo"], "sleep": {"slept": 0.05}}  # the echo floor's too
# Which servers each peer starts, as (handler, INVOKER_COUNT) -> connection counts to load it
# with. Throughput runs use two connections per invoker, so that no invoker waits for work.
KLR_PLAN = {
    ("echo", 1): (1, 2),
    ("sleep", 1): (2,),
    ("echo", 4): (8,),
    ("sleep", 4): (8,),
    ("echo", 8): (16,),
    ("sleep", 8): (16,),
    ("sleep", 16): (32,),
}
# RIE serves one invocation at a time and crashes on a second concurrent request.
RIE_PLAN = {("echo", 1): (1,), ("sleep", 1): (1,)}
ECHO_FLOOR_PLAN = {("echo", 0): (1, 2, 8, 16)}


@dataclass
class Server:
    """A started peer: where to send invocations, the process to watch, what to show on failure."""

    url: str
    pid: int
    alive: Callable[[], bool]
    logs: Callable[[], str]
    # Whether no invocation is running; only for a server that a second one would crash.
    idle: Callable[[], bool] | None = None


# ---- on the host: tools, the namespace run, the container ---------------------------------


def measure(client) -> dict:
    """Measure every peer (client: a docker.DockerClient); returns the results document."""
    wrk = ensure_wrk()
    rie = ensure_rie()
    python = host_python()
    started, load_average = time.time(), os.getloadavg()  # others' load, before ours
    with tempfile.TemporaryDirectory(prefix="klr-peers-") as workdir:
        config = Path(workdir) / "config.json"
        local = Path(workdir) / "local.json"
        config.write_text(json.dumps({"wrk": wrk, "rie": str(rie), "python": python}))
        command = [sys.executable, "-m", "images.peers", "inside", str(config), str(local)]
        print("Local peers, in a network namespace with only loopback", flush=True)
        try:
            # Bounded well above the plan's two minutes or so.
            subprocess.run(["unshare", "-rn", *command], cwd=REPO_ROOT, check=True, timeout=900)
        except subprocess.CalledProcessError as error:
            raise UserError(f"measuring the local peers failed (exit {error.returncode})") from None
        except subprocess.TimeoutExpired:
            raise UserError("measuring the local peers took over 900 s: stopped") from None
        document = json.loads(local.read_text())
        print(f"KLR in {CONTAINER_IMAGE}, published on 127.0.0.1", flush=True)
        for (handler, invokers), connections in KLR_PLAN.items():
            with klr_container(client, handler, invokers) as server:
                document["servers"].append(
                    measure_server(
                        CONTAINER_IMAGE, handler, invokers, server, connections, wrk, workdir
                    )
                )
    document["meta"] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started),
        "warmup_seconds": WARMUP_SECONDS,
        "load_seconds": LOAD_SECONDS,
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in load_average],
        "python": python,
        "python_version": platform.python_version(),
        "rie": f"{RIE_PACKAGE}@{RIE_VERSION}",
        "wrk": subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout.split("\n")[0],
        "container_image": CONTAINER_IMAGE,
        "commit": subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip(),
    }
    return document


def ensure_wrk() -> str:
    if not shutil.which("wrk"):
        host.apt_install("wrk", why="wrk, the load generator of bench --peers, is not installed")
    path = shutil.which("wrk")
    if not path:
        raise UserError("wrk was installed but is not on PATH")
    return path


def ensure_rie() -> Path:
    """RIE at the pinned version, built once from the Go module proxy into TOOLS_DIR."""
    binary = TOOLS_DIR / f"aws-lambda-rie@{RIE_VERSION}"
    if binary.exists():
        return binary
    go = shutil.which("go", path=f"{os.environ.get('PATH', '')}:/usr/local/go/bin")
    if not go:
        raise UserError("bench --peers builds AWS's emulator with Go: install Go (1.22 or later)")
    print(f"Building {RIE_PACKAGE}@{RIE_VERSION} into {TOOLS_DIR}", flush=True)
    TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=TOOLS_DIR) as gobin:
        try:
            subprocess.run(
                [go, "install", f"{RIE_PACKAGE}@{RIE_VERSION}"],
                env={**os.environ, "GOBIN": gobin},
                check=True,
                timeout=600,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            raise UserError(f"go install {RIE_PACKAGE}@{RIE_VERSION} failed: {error}") from None
        # Named by its version, so that a new pin builds anew; moved in whole, never half-built.
        os.replace(Path(gobin) / "aws-lambda-rie", binary)
    return binary


def host_python() -> str:
    """The host's python3 itself, not a wrapper such as pyenv's shim, which would add a
    process to every start."""
    python3 = shutil.which("python3")
    if not python3:
        raise UserError("bench --peers runs the server and the shim with python3: install it")
    found = subprocess.run(
        [python3, "-c", "import sys; print(sys.executable)"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return found.stdout.strip()


@contextmanager
def klr_container(client, handler: str, invokers: int) -> Iterator[Server]:
    container = client.containers.run(
        CONTAINER_IMAGE,
        detach=True,
        labels=TEST_LABELS,
        ports={"8080/tcp": ("127.0.0.1", None)},
        environment={"_HANDLER": f"handler.{handler}", "INVOKER_COUNT": str(invokers)},
        volumes={str(FIXTURES): {"bind": "/var/task", "mode": "ro"}},
    )
    try:
        container.reload()
        port = container.ports["8080/tcp"][0]["HostPort"]

        def alive() -> bool:
            container.reload()
            return container.status == "running"

        def logs() -> str:
            return container.logs(tail=40).decode(errors="replace")

        # The container's first process is the server: /opt/aws-custom-runtime.
        server = Server(f"http://127.0.0.1:{port}/", container.attrs["State"]["Pid"], alive, logs)
        _wait_klr_ready(server, invokers)
        yield server
    finally:
        container.remove(force=True)


# ---- in the namespace: the local peers --------------------------------------------------


def inside(config_path: str, out_path: str) -> None:
    """Measure the local peers (run by `measure` under `unshare -rn`); write their results."""
    config = json.loads(Path(config_path).read_text())
    _loopback_only()
    servers = []
    with tempfile.TemporaryDirectory(prefix="klr-peers-") as workdir:
        task_root = Path(workdir) / "task"
        # A copy, so that nothing (bytecode) is written into the repository.
        shutil.copytree(FIXTURES, task_root)
        bootstrap = Path(workdir) / "runtime" / "bootstrap"
        bootstrap.parent.mkdir()
        bootstrap.write_text(f"#!/bin/sh\nexec {config['python']} {SHIM}\n")
        bootstrap.chmod(0o755)
        python, rie, wrk = config["python"], config["rie"], config["wrk"]
        peers = [
            (
                "asyncio-echo",
                ECHO_FLOOR_PLAN,
                lambda handler, invokers: echo_floor(workdir, python),
            ),
            (
                "rie",
                RIE_PLAN,
                lambda handler, invokers: rie_process(workdir, rie, bootstrap, task_root, handler),
            ),
            (
                "klr",
                KLR_PLAN,
                lambda handler, invokers: klr_process(
                    workdir, python, bootstrap, task_root, handler, invokers
                ),
            ),
        ]
        for peer, plan, start in peers:
            for (handler, invokers), connections in plan.items():
                with start(handler, invokers) as server:
                    servers.append(
                        measure_server(peer, handler, invokers, server, connections, wrk, workdir)
                    )
        in_process = measure_in_process(task_root)
    Path(out_path).write_text(json.dumps({"servers": servers, "in_process": in_process}))


def _loopback_only() -> None:
    """Bring up lo, and refuse to go on if this namespace has any other interface."""
    # Asked of the kernel for this namespace (/sys may still show the host's).
    interfaces = sorted(name for _, name in socket.if_nameindex())
    if interfaces != ["lo"]:
        raise SystemExit(f"bench --peers: expected a namespace with only lo, found {interfaces}")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)


def measure_in_process(task_root: Path) -> dict:
    """The floor: µs per call of each handler, called in a loop in this interpreter."""
    spec = importlib.util.spec_from_file_location("handler", task_root / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    figures = {}
    for name, seconds in (("echo", 1.0), ("sleep", 0.5)):
        function, event = getattr(module, name), EVENTS[name]
        batch = 10_000 if name == "echo" else 1
        calls, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            for _ in range(batch):
                function(event, None)
            calls += batch
        figures[f"{name}_us_per_call"] = (time.perf_counter() - started) / calls * 1e6
    print(
        f"  handler in-process: echo {figures['echo_us_per_call']:.3f} µs/call, "
        f"sleep {figures['sleep_us_per_call']:.0f} µs/call",
        flush=True,
    )
    return figures


@contextmanager
def klr_process(
    workdir: str, python: str, bootstrap: Path, task_root: Path, handler: str, invokers: int
) -> Iterator[Server]:
    port = free_port()
    env = {
        **_base_env(),
        "PYTHONPATH": str(KLR_SOURCE),
        "PORT": str(port),
        "KLR_RUNTIME_API_PORT": "9001",  # the namespace is empty: Lambda's own port is free
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": str(bootstrap.parent),
        "_HANDLER": f"handler.{handler}",
        "INVOKER_COUNT": str(invokers),
    }
    log = Path(workdir) / f"klr-{handler}-{invokers}.log"
    url = f"http://127.0.0.1:{port}/"
    with _process([python, "-m", "klr"], env, task_root, log, url) as server:
        _wait_klr_ready(server, invokers)
        yield server


@contextmanager
def rie_process(
    workdir: str, rie: str, bootstrap: Path, task_root: Path, handler: str
) -> Iterator[Server]:
    port = free_port()
    env = {**_base_env(), "_HANDLER": f"handler.{handler}", "LAMBDA_TASK_ROOT": str(task_root)}
    command = [rie, "--runtime-interface-emulator-address", f"127.0.0.1:{port}", str(bootstrap)]
    log, url = Path(workdir) / f"rie-{handler}.log", f"http://127.0.0.1:{port}{RIE_INVOKE_PATH}"
    with _process(command, env, task_root, log, url) as server:
        server.idle = lambda: _rie_idle(log.read_text(errors="replace"))
        _wait_listening(server, port)
        yield server


def _rie_idle(log: str) -> bool:
    # RIE logs START and END lines of each invocation, as Lambda does.
    return log.count("START RequestId:") == log.count("END RequestId:")


@contextmanager
def echo_floor(workdir: str, python: str) -> Iterator[Server]:
    port = free_port()
    command = [python, str(ECHO_FLOOR), str(port)]
    env = _base_env()
    log, url = Path(workdir) / "echo-floor.log", f"http://127.0.0.1:{port}/"
    with _process(command, env, REPO_ROOT, log, url) as server:
        _wait_listening(server, port)
        yield server


def _base_env() -> dict[str, str]:
    # Only what a process needs to run: none of the host's proxies or tool settings.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _process(
    command: list[str], env: dict[str, str], cwd: Path, log: Path, url: str
) -> Iterator[Server]:
    """A process in a session of its own, stopped with SIGTERM (SIGKILL after 30 s), then its
    whole process group killed: a bootstrap must never outlive its server."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield Server(
            url,
            process.pid,
            alive=lambda: process.poll() is None,
            logs=lambda: log.read_text(errors="replace")[-4000:],
        )
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def _wait_klr_ready(server: Server, invokers: int) -> None:
    def ready() -> bool:
        _fail_if_exited(server)
        try:
            status, body = _request(server.url + "_klr/ready", None, timeout=2)
        except OSError:
            return False
        return status == 200 and json.loads(body).get("readyInvokers") == invokers

    wait.until(
        f"KLR at {server.url} with {invokers} ready invokers", START_SECONDS, ready, server.logs
    )


def _wait_listening(server: Server, port: int) -> None:
    def listening() -> bool:
        _fail_if_exited(server)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError:
            return False
        return True

    wait.until(f"a server listening on 127.0.0.1:{port}", START_SECONDS, listening, server.logs)


def _fail_if_exited(server: Server) -> None:
    if not server.alive():
        raise RuntimeError(f"the server at {server.url} exited:\n{server.logs()}")


def _request(url: str, body: bytes | None, timeout: float) -> tuple[int, bytes]:
    """One request to a loopback URL with the standard library: no proxy settings apply."""
    address = url.split("/")[2]
    path = "/" + url.split("/", 3)[3]
    connection = http.client.HTTPConnection(address, timeout=timeout)
    try:
        method = "GET" if body is None else "POST"
        connection.request(method, path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


# ---- loading a server with wrk ----------------------------------------------------------


def measure_server(
    peer: str,
    handler: str,
    invokers: int,
    server: Server,
    connections: tuple[int, ...],
    wrk: str,
    workdir: str,
) -> dict:
    """Check that the server answers the handler's event rightly, then load it with wrk at
    each connection count; its idle memory is taken after that first answer."""
    event = json.dumps(EVENTS[handler]).encode()
    status, body = _request(server.url, event, FIRST_ANSWER_SECONDS)
    if status != 200 or json.loads(body) != ANSWERS[handler]:
        raise RuntimeError(f"{peer} answered {status} {body[:300]!r} to the {handler} event")
    script = Path(workdir) / f"{handler}.lua"
    script.write_text(wrk_script(event))
    record = {
        "peer": peer,
        "handler": handler,
        "invokers": invokers,
        "idle_rss_kb": rss_kb(server.pid),
        "runs": [],
    }
    for count in connections:
        _wrk(wrk, server, script, count, WARMUP_SECONDS)
        _wait_idle(server)
        cpu_before = cpu_seconds(server.pid)
        run, peak_rss = _wrk(wrk, server, script, count, LOAD_SECONDS)
        cpu = cpu_seconds(server.pid) - cpu_before
        _wait_idle(server)
        run["cpu_us_per_request"] = cpu / run["requests"] * 1e6 if run["requests"] else None
        run["load_rss_kb"] = peak_rss
        record["runs"].append(run)
        errors = sum(run["errors"].values())
        print(
            f"  {peer:<13} {handler:<5} invokers {invokers:>2}, {count:>2} connections: "
            f"{run['requests_per_second']:8.1f} req/s, p50 {run['latency_us']['p50'] / 1000:7.2f}"
            f" ms, p99 {run['latency_us']['p99'] / 1000:7.2f} ms, "
            f"CPU {run['cpu_us_per_request'] or 0:6.0f} µs/req"
            + (f", {errors} ERRORS" if errors else ""),
            flush=True,
        )
    return record


def _wait_idle(server: Server) -> None:
    """wrk stops with a request in flight on each connection; for a server that serves one
    at a time, wait until it has answered, or the next run's first request would crash it."""
    if not server.idle:
        return
    settled = []  # idle at two polls in a row: the last request has been read and finished

    def idle() -> bool:
        _fail_if_exited(server)
        settled.append(server.idle())
        return settled[-2:] == [True, True]

    wait.until(f"{server.url} to finish the invocation wrk left", 30, idle, server.logs)


def wrk_script(body: bytes) -> str:
    """wrk's Lua: POST `body`; at the end print one line, `PEERS <json>`, with the counts and
    the latency percentiles (µs)."""
    points = ", ".join(f"{p:g}" for p in PERCENTILES)
    return f"""
wrk.method = "POST"
wrk.body = [==[{body.decode()}]==]
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local points = {{}}
  for _, p in ipairs({{{points}}}) do
    points[#points + 1] = string.format("[%g,%d]", p, latency:percentile(p))
  end
  local e = summary.errors
  io.write(string.format(
    'PEERS {{"requests":%d,"duration_us":%d,"errors":{{"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d}},"min_us":%d,"mean_us":%.1f,"max_us":%d,"percentiles":[%s]}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max, table.concat(points, ",")))
end
"""


def _wrk(
    wrk: str, server: Server, script: Path, connections: int, seconds: int
) -> tuple[dict, int]:
    """One wrk load (one thread, `connections` keep-alive connections, `seconds` long);
    returns its figures and the server's peak RSS in kB, sampled while it ran."""
    command = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", WRK_TIMEOUT]
    command += ["-s", str(script), server.url]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + seconds + 30
    peak = 0
    while process.poll() is None:
        peak = max(peak, rss_kb(server.pid))
        if time.monotonic() > deadline:
            process.kill()
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.1)
    output = process.stdout.read()
    process.stdout.close()
    lines = [line for line in output.splitlines() if line.startswith("PEERS ")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed (exit {process.returncode}): {output[-2000:]}")
    figures = json.loads(lines[-1].removeprefix("PEERS "))
    seconds_run = figures.pop("duration_us") / 1e6
    points = figures.pop("percentiles")
    by_point = dict(points)
    return {
        "connections": connections,
        "seconds": seconds_run,
        "requests": figures["requests"],
        "requests_per_second": figures["requests"] / seconds_run,
        "errors": figures["errors"],
        "latency_us": {
            "min": figures["min_us"],
            "mean": figures["mean_us"],
            "p50": by_point[50],
            "p99": by_point[99],
            "max": figures["max_us"],
        },
        "percentiles": points,
    }, peak


# ---- /proc figures of one process -------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """The process's own user + system CPU time (its children's not included)."""
    with open(f"/proc/{pid}/stat") as stat:
        # Fields after the command name, which is in parentheses and may hold spaces;
        # utime and stime are fields 14 and 15 of the whole line.
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0  # a zombie has no memory left


if __name__ == "__main__":
    if sys.argv[1:2] != ["inside"]:
        sys.exit("usage: python -m images.peers inside CONFIG OUT (run by invoke bench --peers)")
    inside(*sys.argv[2:4])
