"""`invoke bench`: how fast and how big each image is at serving a function, measured on this
machine with the conformance suite's echo handler in a real container.

Figures per image: the cold start (container start until a bootstrap asks for work), the first
invocation, warm latency over sequential keep-alive requests, throughput with concurrent
clients, and the container's memory afterwards. Traffic goes only to 127.0.0.1, and every loop
is bounded in count.
"""

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import docker
import requests

from images.matrix import Runtime

WARM_REQUESTS = 300
CLIENTS = 4
REQUESTS_PER_CLIENT = 150
EVENT = {"name": "Foo", "items": list(range(20))}


@dataclass
class Figures:
    image: str
    cold_start_ms: float
    first_invoke_ms: float
    p50_ms: float
    p99_ms: float
    requests_per_second: float
    memory_mb: float

    HEADERS = (
        "image",
        "cold start ms",
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
    started = time.monotonic()
    container = client.containers.run(
        function_image,
        detach=True,
        labels={"klr.test": "1"},
        ports={"8080/tcp": ("127.0.0.1", None)},
        environment={"_HANDLER": handler, "INVOKER_COUNT": str(CLIENTS)},
    )
    try:
        container.reload()
        url = f"http://127.0.0.1:{container.ports['8080/tcp'][0]['HostPort']}"
        cold_start = _wait_ready(url, started)
        with requests.Session() as session:
            first = _timed(session, url)
            warm = sorted(_timed(session, url) for _ in range(WARM_REQUESTS))
        _wait_all_ready(url)
        throughput = _throughput(url)
        memory = container.stats(stream=False)["memory_stats"]["usage"] / 2**20
    finally:
        container.remove(force=True)
    return Figures(
        runtime.image,
        cold_start * 1000,
        first * 1000,
        statistics.median(warm) * 1000,
        warm[int(len(warm) * 0.99) - 1] * 1000,
        throughput,
        memory,
    )


def _wait_ready(url: str, started: float, seconds: float = 120) -> float:
    while time.monotonic() - started < seconds:
        try:
            if requests.get(url + "/_klr/ready", timeout=2).status_code == 200:
                return time.monotonic() - started
        except requests.ConnectionError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{url} was not ready within {seconds} s")


def _wait_all_ready(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = requests.get(url + "/_klr/ready", timeout=2).json()
        if state["readyInvokers"] == state["invokers"]:
            return
        time.sleep(0.05)


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
