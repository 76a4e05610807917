"""`invoke bench`: how fast and how big each image is at serving a function, measured on this
machine with the conformance suite's echo handler in a real container.

Figures per image: the cold start (container start until a bootstrap asks for work), the first
invocation, warm latency over sequential keep-alive requests, throughput with concurrent
clients, and the container's memory afterwards; with the image's exact language version and
its size. Beside the cold start, its floor: a bare `docker run` of the same image whose process
exits at once; the JVM images have targets for the time to the first answer over that floor. Traffic goes only to 127.0.0.1, and every loop is bounded in count.

The figures of the latest run of each image are kept in REPORT_FILE (committed), from which
`invoke docs` writes the README's images and performance tables.
"""

import dataclasses
import json
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import docker
import requests

from images import UserError
from images.functions import TEST_LABELS
from images.matrix import Runtime
from images.wait import startup_allowance, until

REPORT_FILE = Path(__file__).with_name("bench-report.json")
# A shell command per language that prints the image's exact language version, as the README's
# images table shows it. Its output holds the row's version, which the suite checks.
VERSION_PROBES = {
    "python": (
        "python -c \"import platform, sys; pypy = getattr(sys, 'pypy_version_info', None); "
        "print('Python ' + platform.python_version()"
        " + (' on PyPy %d.%d.%d' % pypy[:3] if pypy else ''))\""
    ),
    "node": 'echo "Node.js $(node -p process.versions.node), npm $(npm --version)"',
    "ruby": (
        'ruby -e \'v = "Ruby #{RUBY_VERSION}"; '
        'v += " on JRuby #{JRUBY_VERSION} (OpenJDK #{ENV_JAVA[%q(java.specification.version)]})"'
        " if defined?(JRUBY_VERSION); puts v'"
    ),
    "java": (
        "echo OpenJDK $(java -XshowSettings:properties -version 2>&1"
        " | sed -n 's/^ *java[.]version = //p' | sed 's/^1[.]8[.]0_/8u/')"
    ),
    "go": "go version | sed 's/^go version go\\([^ ]*\\) .*/Go \\1 toolchain/'",
    "provided": (
        '. /etc/os-release; echo "none: your bootstrap, on Debian $VERSION_CODENAME;'
        ' curl $(curl --version | head -n 1 | cut -d " " -f 2)"'
    ),
}

# Issue 10's targets for the images on a JVM: `docker run` to the first answer, over the floor.
COLD_START_TARGETS_MS = {"java": 500, "ruby": 2000}
FLOOR_RUNS = 3
WARM_REQUESTS = 300
CLIENTS = 4
REQUESTS_PER_CLIENT = 150
EVENT = {"name": "Foo", "items": list(range(20))}


@dataclass
class Figures:
    """One image's figures, as REPORT_FILE keeps them."""

    image: str
    version: str  # what VERSION_PROBES prints
    size_mb: float
    cold_start_ms: float
    first_invoke_ms: float
    p50_ms: float
    p99_ms: float
    requests_per_second: float
    memory_mb: float
    floor_ms: float | None = None  # a bare `docker run` of the image (none in older reports)

    HEADERS = (
        "image",
        "cold start ms",
        "docker run floor ms",
        "first ms",
        "p50 ms",
        "p99 ms",
        f"req/s ({CLIENTS} clients)",
        "memory MB",
    )

    def row(self) -> tuple[str, ...]:
        return (
            self.image,
            f"{self.cold_start_ms:.0f}",
            "-" if self.floor_ms is None else f"{self.floor_ms:.0f}",
            f"{self.first_invoke_ms:.1f}",
            f"{self.p50_ms:.2f}",
            f"{self.p99_ms:.2f}",
            f"{self.requests_per_second:.0f}",
            f"{self.memory_mb:.0f}",
        )


def measure(
    client: docker.DockerClient, runtime: Runtime, function_image: str, handler: str
) -> Figures:
    """Start the function image with CLIENTS invokers and measure it; the container is removed."""
    version = exact_version(client, runtime)
    size_mb = client.images.get(runtime.image).attrs["Size"] / 1e6
    floor = bare_run_seconds(client, function_image)
    started = time.monotonic()
    container = client.containers.run(
        function_image,
        detach=True,
        labels=TEST_LABELS,
        ports={"8080/tcp": ("127.0.0.1", None)},
        environment={"_HANDLER": handler, "INVOKER_COUNT": str(CLIENTS)},
    )

    def logs() -> str:
        return container.logs().decode(errors="replace")

    try:
        container.reload()
        url = f"http://127.0.0.1:{container.ports['8080/tcp'][0]['HostPort']}"
        # The first bootstrap starts alone; the others after it, together, sharing the cores.
        allowance = startup_allowance(runtime.startup_seconds, CLIENTS)
        cold_start = _wait_ready(url, started, allowance, logs)
        with requests.Session() as session:
            first = _timed(session, url)
            warm = sorted(_timed(session, url) for _ in range(WARM_REQUESTS))
        _wait_all_ready(url, allowance, logs)
        throughput = _throughput(url)
        memory = container.stats(stream=False)["memory_stats"]["usage"] / 2**20
    finally:
        container.remove(force=True)
    return Figures(
        runtime.image,
        version,
        size_mb,
        cold_start * 1000,
        first * 1000,
        statistics.median(warm) * 1000,
        warm[int(len(warm) * 0.99) - 1] * 1000,
        throughput,
        memory,
        floor * 1000,
    )


def bare_run_seconds(client: docker.DockerClient, image: str) -> float:
    """The floor of a cold start: docker creating and starting a container of the image whose
    process (`true`) exits at once, until it has exited; the median of FLOOR_RUNS."""
    times = []
    for _ in range(FLOOR_RUNS):
        started = time.monotonic()
        container = client.containers.run(
            image, entrypoint=["true"], detach=True, labels=TEST_LABELS
        )
        try:
            container.wait(timeout=60)
            times.append(time.monotonic() - started)
        finally:
            container.remove(force=True)
    return statistics.median(times)


def cold_start_verdict(runtime: Runtime, figures: Figures) -> str | None:
    """Issue 10's target for an image on a JVM: met or missed, with the figures; else None."""
    target = COLD_START_TARGETS_MS.get(runtime.language) if runtime.on_jvm else None
    if target is None or figures.floor_ms is None:
        return None
    over = figures.cold_start_ms + figures.first_invoke_ms - figures.floor_ms
    verdict = "met" if over <= target else "MISSED"
    return (
        f"{figures.image}: docker run to the first answer {over:.0f} ms over the floor "
        f"({figures.floor_ms:.0f} ms); target {target} ms: {verdict}"
    )


def exact_version(client: docker.DockerClient, runtime: Runtime) -> str:
    """The language's VERSION_PROBES output in a container of the runtime's image."""
    output = client.containers.run(
        runtime.image,
        [VERSION_PROBES[runtime.language]],
        entrypoint=["/bin/sh", "-c"],
        labels=TEST_LABELS,
        remove=True,
    )
    return output.decode().strip()


def load_report(path: Path = REPORT_FILE) -> dict[str, Figures]:
    """The latest figures of each image measured, by image name."""
    try:
        entries = json.loads(path.read_text())
        return {e["image"]: Figures(**e) for e in entries}
    except FileNotFoundError:
        return {}
    except (ValueError, TypeError, KeyError) as e:
        raise UserError(f"{path.name}: not a bench report ({e}); restore it from git") from None


def save_report(figures: list[Figures], order: list[str], path: Path = REPORT_FILE) -> None:
    """Merge the new figures into the report, images in the matrix's `order` (then any other)."""
    merged = {**load_report(path), **{f.image: f for f in figures}}
    ranked = sorted(
        merged.values(), key=lambda f: order.index(f.image) if f.image in order else len(order)
    )
    rounded = [
        {k: round(v, 2) if isinstance(v, float) else v for k, v in dataclasses.asdict(f).items()}
        for f in ranked
    ]
    # One image a line: a new run's diff shows which figures moved.
    path.write_text("[\n" + ",\n".join(json.dumps(entry) for entry in rounded) + "\n]\n")


def _wait_ready(url: str, started: float, seconds: float, logs: Callable[[], str]) -> float:
    """Seconds from `started` until a bootstrap asks for work, polled finely: it is a figure."""

    def ready() -> bool:
        try:
            return requests.get(url + "/_klr/ready", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    until(f"{url}/_klr/ready to answer 200", seconds, ready, logs, interval=0.01)
    return time.monotonic() - started


def _wait_all_ready(url: str, seconds: float, logs: Callable[[], str]) -> None:
    """Until every bootstrap has asked for work; they start together and share the cores."""

    def state() -> dict:
        return requests.get(url + "/_klr/ready", timeout=2).json()

    until(
        f"all invokers of {url} to ask for work",
        seconds,
        lambda: (s := state())["readyInvokers"] == s["invokers"],
        lambda: f"last /_klr/ready: {state()}\n{logs()}",
    )


def _timed(session: requests.Session, url: str) -> float:
    started = time.perf_counter()
    reply = session.post(url, json=EVENT, timeout=30)
    elapsed = time.perf_counter() - started
    if reply.status_code != 200 or reply.json() != EVENT:
        raise RuntimeError(f"echo answered {reply.status_code}: {reply.text[:200]}")
    return elapsed


def _throughput(url: str) -> float:
    def client(_: int) -> None:
        with requests.Session() as session:
            for _ in range(REQUESTS_PER_CLIENT):
                _timed(session, url)

    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client, range(CLIENTS)))
    return CLIENTS * REQUESTS_PER_CLIENT / (time.perf_counter() - started)
