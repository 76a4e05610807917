"""KLR behind Knative's own data plane: each case runs a revision's pod (knative_pod.py), KLR
behind Knative Serving's queue-proxy, both configured from the Service that
`images.manifest.service` writes, and talks to the queue-proxy as Knative's ingress or the
activator would. One image per language: what is tested is the server and the queue-proxy.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conformance.knative_pod import Pod
from images import manifest
from images.wait import startup_allowance, until
from tests.endpoint import LOG_LAG_SECONDS

RUNTIME_IDS = ("python313", "node22", "ruby33", "java21", "go")
SLOW_SECONDS = 2  # a slow request: long enough to be seen waiting, short enough to be cheap


@pytest.fixture
def pod(docker_client, fixture_image, language, runtime):
    """pod(function, started=True, **service options): a revision's pod of the sample function,
    running once the queue-proxy is ready (with started=False, only its sandbox)."""
    pods: list[Pod] = []

    def run(function: str, started: bool = True, **options) -> Pod:
        invokers = options.get("invokers", 1)
        service = manifest.service(fixture_image, name="hello", **options)
        pods.append(Pod(docker_client, service, runtime.base_image, runtime.startup_seconds))
        if not started:
            return pods[-1]
        env = {
            "_HANDLER": language.handler.format(function),
            # As the suite's other containers: a JVM on this busy machine may need more than
            # Lambda's 10 s to start.
            "KLR_INIT_TIMEOUT": f"{startup_allowance(runtime.startup_seconds, invokers):g}",
        }
        return pods[-1].start(**env)

    yield run
    for started in pods:
        started.remove()


def all_invokers_ready(pod: Pod, invokers: int) -> None:
    until(
        "all of KLR's invokers to ask for work",
        startup_allowance(pod.startup_seconds, invokers) + 10,
        lambda: (state := pod.klr_state()) and state["readyInvokers"] == state["invokers"],
        pod.logs,
    )


def test_requests_are_served_through_the_queue_proxy(pod):
    hello = pod("echo")
    answer = requests.post(hello.url, json={"through": "queue-proxy"}, timeout=30)
    assert answer.status_code == 200, hello.logs()
    assert answer.json() == {"through": "queue-proxy"}
    request_id = answer.headers["X-Amzn-RequestId"]  # KLR's, in its START line
    until(f"KLR to log {request_id}", LOG_LAG_SECONDS, lambda: request_id in hello.logs())


def test_container_concurrency_holds_the_extra_request_in_the_queue_proxy(pod):
    """containerConcurrency = INVOKER_COUNT: of INVOKER_COUNT + 1 slow requests, the queue-proxy
    passes INVOKER_COUNT to KLR and holds the last until one is answered. KLR (which would
    queue it itself) never counts more than INVOKER_COUNT in flight, and none fails."""
    invokers = 2
    hello = pod("sleep", invokers=invokers)
    all_invokers_ready(hello, invokers)
    seen: list[int] = []
    done = threading.Event()

    def watch_klr() -> None:
        while not done.is_set():
            if state := hello.klr_state():
                seen.append(state["inFlight"])
            time.sleep(0.05)

    def slow() -> tuple[requests.Response, float]:
        answer = requests.post(hello.url, json={"seconds": SLOW_SECONDS}, timeout=60)
        return answer, time.monotonic()

    with ThreadPoolExecutor(invokers + 2) as threads:
        watcher = threads.submit(watch_klr)
        calls = [threads.submit(slow) for _ in range(invokers + 1)]
        results = [call.result() for call in calls]
        done.set()
        watcher.result()
    answers = [answer for answer, _ in results]
    assert [a.status_code for a in answers] == [200] * (invokers + 1), hello.logs()
    assert all(a.json() == {"slept": SLOW_SECONDS} for a in answers)
    assert max(seen) == invokers, f"KLR's inFlight, every 50 ms: {seen}"
    first, *_, before_last, last = sorted(at for _, at in results)
    assert before_last - first < SLOW_SECONDS / 2, "the first INVOKER_COUNT ran together"
    assert last - before_last > SLOW_SECONDS * 0.75, "the extra one ran after one of them"


def test_readiness_reaches_the_queue_proxy_from_klr(pod, language):
    """The queue-proxy is ready when KLR's /_klr/ready says so (the Service's readiness probe,
    run by the queue-proxy), not when KLR merely listens: with a function whose init fails,
    KLR answers /_klr/health but never becomes ready, and neither does the queue-proxy."""
    failing = pod("", started=False)
    handler, _ = language.init_failures["raises_while_loading"]
    failing.start_user(_HANDLER=handler).start_queue()
    until(
        "KLR to answer /_klr/health",
        failing.startup_seconds + 10,
        lambda: (answer := failing.klr("/_klr/health")) is not None and answer.status_code == 200,
        failing.logs,
    )
    probes = [failing.queue_ready() for _ in range(3)]
    assert probes == [False] * 3 and failing.klr_state()["ready"] is False, failing.logs()

    hello = pod("echo")  # started once the queue-proxy is ready
    assert hello.klr_state()["ready"] is True


def test_sigterm_drains_in_flight_requests_through_both(pod):
    """SIGTERM to both containers while a slow request is in flight: it is answered, while KLR
    takes no new request from the moment of the signal (the queue-proxy answers them 502), then
    exits 0; the queue-proxy's probe says it is shutting down."""
    hello = pod("sleep", invokers=2)
    assert requests.post(hello.url, json={"seconds": 0}, timeout=30).status_code == 200
    with ThreadPoolExecutor(1) as threads:
        in_flight = threads.submit(
            requests.post, hello.url, json={"seconds": SLOW_SECONDS}, timeout=60
        )
        until(
            "the slow request to reach KLR",
            10,
            lambda: (state := hello.klr_state()) and state["inFlight"] == 1,
        )
        hello.terminate()
        # (a Response of an error status is false: its text is what is kept)
        refused = until(
            "a new request to be refused",
            5,
            lambda: (
                (r := requests.post(hello.url, json={"seconds": 0}, timeout=5)).status_code == 502
                and r.text
            ),
        )
        # Refused if it dialled KLR, reset if it went down a connection KLR had kept alive and
        # closed at SIGTERM; either way before the request in flight was answered.
        assert "127.0.0.1:8080" in refused and not in_flight.done(), refused
        answer = in_flight.result()
    assert (answer.status_code, answer.json()) == (200, {"slept": SLOW_SECONDS}), hello.logs()
    exit_code = until(
        "KLR to exit",
        10,
        lambda: hello.user.reload() or (hello.user.status == "exited" and hello.user),
        hello.logs,
    ).attrs["State"]["ExitCode"]
    assert exit_code == 0 and "klr: stopped" in hello.logs()
    probe = requests.get(hello.url, headers={"User-Agent": "kube-probe/1.30"}, timeout=5)
    assert (probe.status_code, probe.text.strip()) == (503, "shutting down")


def test_the_function_timeout_answers_before_the_revision_timeout(pod):
    """A function past its timeout gets KLR's Lambda error through the queue-proxy, not the
    queue-proxy's own "request timeout": the revision's timeoutSeconds leaves KLR time."""
    timeout = 2
    hello = pod("sleep", timeout=timeout)
    started = time.monotonic()
    answer = requests.post(hello.url, json={"seconds": timeout * 2}, timeout=30)
    took = time.monotonic() - started
    assert answer.status_code == 504, hello.logs()
    assert answer.json()["errorType"] == "Sandbox.Timedout", answer.text
    assert f"Task timed out after {timeout:.2f} seconds" in answer.json()["errorMessage"]
    assert timeout <= took < timeout * 2
