"""Init is an answer too: an init that never asks for work fails the request waiting for it
after KLR_INIT_TIMEOUT, an /init/error fails it at once even if the runtime does not exit,
and the next request retries init, as Lambda retries it. Real bootstrap processes throughout."""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from images.wait import until
from klr.config import Settings
from klr.errors import SettingsError
from klr.invokers import INIT_ERROR_EXIT_SECONDS
from tests.local_server import PYTHON_SHIM

# A bootstrap whose every start is one step of $PLAN (the last step repeats): "exit" at once,
# "hang" without ever asking for work, "init-error" (once the test creates $SIGNALS/go: post
# /init/error, try /next, note its status in $SIGNALS/next, then stay), or "serve" (the Python
# shim). $SIGNALS/attempts counts the starts.
PLANNED_BOOTSTRAP = r"""
import http.client, json, os, sys, time

signals = os.environ["SIGNALS"]
counter = os.path.join(signals, "attempts")
attempt = int(open(counter).read()) + 1 if os.path.exists(counter) else 1
with open(counter, "w") as out:
    out.write(str(attempt))
plan = os.environ["PLAN"].split(",")
step = plan[min(attempt, len(plan)) - 1]

def wait_for(name):
    open(os.path.join(signals, "waiting"), "w").close()
    deadline = time.time() + 60
    while not os.path.exists(os.path.join(signals, name)):
        assert time.time() < deadline, "no signal " + name
        time.sleep(0.01)

if step == "exit":
    sys.exit(1)
if step == "hang":
    time.sleep(600)
if step == "init-error":
    api = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"])
    wait_for("go")
    error = {"errorType": "Runtime.ImportModuleError", "errorMessage": "No module named 'app'"}
    api.request(
        "POST",
        "/2018-06-01/runtime/init/error",
        json.dumps(error),
        {"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"},
    )
    api.getresponse().read()
    api.request("GET", "/2018-06-01/runtime/invocation/next")
    with open(os.path.join(signals, "next"), "w") as out:
        out.write(str(api.getresponse().status))
    time.sleep(600)
os.execv(sys.executable, [sys.executable, os.environ["SHIM"]])
"""
TIMED_OUT = "Phase: init\tStatus: timeout"
FAILED = "Phase: init\tStatus: error"


@pytest.fixture
def planned(start_server, tmp_path):
    """start(plan, **env): a server, not yet ready, whose bootstrap follows `plan`."""
    script = tmp_path / "planned_bootstrap.py"
    script.write_text(PLANNED_BOOTSTRAP)
    signals = tmp_path / "signals"
    signals.mkdir()

    def start(plan: str, **env: str):
        server = start_server(
            bootstrap=f"exec {sys.executable} {script}",
            ready=False,
            PLAN=plan,
            SIGNALS=str(signals),
            SHIM=str(PYTHON_SHIM),
            **env,
        )
        server.signals = signals
        return server

    return start


def test_an_init_that_never_asks_for_work_fails_the_waiting_request_and_is_retried(planned):
    """checklist 27, 7: no /next within KLR_INIT_TIMEOUT fails the request that waits for the
    init with Sandbox.Timedout, logs INIT_REPORT with Status: timeout and kills the process;
    the next request retries init, and this time the runtime serves it."""
    server = planned("hang,serve", KLR_INIT_TIMEOUT="5")
    started = time.monotonic()
    result = server.invoke({"n": 1}, timeout=30)
    assert time.monotonic() - started < 5 + 10
    assert result.status_code == 504
    assert result.json()["errorType"] == "Sandbox.Timedout"
    assert "Init timed out after 5.00 seconds" in result.json()["errorMessage"]
    assert "KLR_INIT_TIMEOUT" in result.json()["errorMessage"]
    assert server.logs().count(TIMED_OUT) == 1  # the request failed with the first init
    assert server.invoke({"n": 2}, timeout=30).json() == {"n": 2}  # a second init
    assert (server.signals / "attempts").read_text() == "2"


def test_a_retried_init_that_runs_out_of_time_fails_its_request(planned):
    """checklist 27: after a failed init, a request retries init; a retry that never asks for
    work fails that request after KLR_INIT_TIMEOUT (via the Invoke API: 200 and Unhandled)."""
    server = planned("exit,hang,serve", KLR_INIT_TIMEOUT="5")
    server.wait_for_log(FAILED)  # the first start failed while no request waited
    started = time.monotonic()
    result = server.invoke({}, path="/2015-03-31/functions/function/invocations", timeout=30)
    assert 5 <= time.monotonic() - started < 5 + 10
    assert result.status_code == 200 and result.headers["X-Amz-Function-Error"] == "Unhandled"
    assert result.json()["errorType"] == "Sandbox.Timedout"
    assert TIMED_OUT in server.logs()
    assert server.invoke({"n": 3}, timeout=30).json() == {"n": 3}


def test_an_init_error_fails_the_waiting_request_at_once_though_the_runtime_stays(planned):
    """checklist 19, 20, 27: /init/error answers the request waiting for the init at once, not
    when the runtime exits; /next is refused to it (403); a runtime that stays is stopped,
    and the next request retries init."""
    server = planned("exit,init-error,serve", KLR_INIT_TIMEOUT="60")
    server.wait_for_log(FAILED)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(server.invoke, {}, timeout=30)
        until("the retried init to wait for the test", 30, (server.signals / "waiting").exists)
        go = time.monotonic()
        (server.signals / "go").touch()
        result = pending.result(timeout=30)
        answered_after = time.monotonic() - go
    assert answered_after < INIT_ERROR_EXIT_SECONDS, f"answered after {answered_after:.2f} s"
    assert result.status_code == 502
    assert result.json() == {
        "errorType": "Runtime.ImportModuleError",
        "errorMessage": "No module named 'app'",
    }
    noted = server.signals / "next"
    assert until("the runtime's /next", 10, lambda: noted.exists() and noted.read_text()) == "403"
    assert server.invoke({"n": 4}, timeout=30).json() == {"n": 4}  # the runtime was stopped
    logs = server.logs()
    assert f"{FAILED}\tError Type: Runtime.ImportModuleError" in logs
    assert (server.signals / "attempts").read_text() == "3"


def test_the_init_timeout_is_lambdas_10_s_unless_set():
    """KLR_INIT_TIMEOUT: seconds, checked like the other settings."""
    assert Settings.from_env({}).init_timeout == 10
    assert Settings.from_env({"KLR_INIT_TIMEOUT": "2.5"}).init_timeout == 2.5
    for bad in ("0", "soon", "-1"):
        with pytest.raises(SettingsError, match="KLR_INIT_TIMEOUT must be a number of seconds"):
            Settings.from_env({"KLR_INIT_TIMEOUT": bad})
