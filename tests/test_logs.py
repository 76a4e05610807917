"""The log: each bootstrap's output captured through a pipe of its own and written to the
server's stdout in order with its platform lines (checklist 30), X-Amz-Log-Type: Tail
(checklist 68), and AWS_LAMBDA_LOG_FORMAT / AWS_LAMBDA_LOG_LEVEL (issue 8, item 5).

Most tests run a small custom runtime (RUNTIME below), whose event lists what to write, so
that a test can make a bootstrap write exactly the bytes it then looks for.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from images.wait import until
from klr.config import Settings
from klr.errors import SettingsError
from tests.local_server import PYTHON_SHIM, LocalServer

INVOKE = "/2015-03-31/functions/function/invocations"
TAIL = {"X-Amz-Log-Type": "Tail"}

# A custom runtime: for each event {"steps": [[kind, argument], ...]} it writes what the steps
# say to stdout or stderr, then answers the environment's AWS_LAMBDA_LOG_* values.
RUNTIME = r"""
import json, os, sys, time, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
streams = {"out": sys.stdout.buffer, "err": sys.stderr.buffer}
while True:
    with urllib.request.urlopen(api + "next") as answer:
        request_id = answer.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(answer.read())
    for kind, argument in event.get("steps", []):
        if kind in streams:
            streams[kind].write(argument.encode("latin-1"))
            streams[kind].flush()
        elif kind == "lines":  # numbered lines, a megabyte is 50,000 of them
            for start in range(0, argument, 1000):
                chunk = "".join("line %08d of the flood\n" % n
                                for n in range(start, min(start + 1000, argument)))
                sys.stdout.buffer.write(chunk.encode())
            sys.stdout.buffer.flush()
        elif kind == "sleep":
            time.sleep(argument)
        elif kind == "exit":
            os._exit(argument)
    env = {k: v for k, v in os.environ.items() if k.startswith("AWS_LAMBDA_LOG_")}
    urllib.request.urlopen(urllib.request.Request(
        api + request_id + "/response", json.dumps(env).encode(), method="POST")).read()
"""


@pytest.fixture
def runtime_server(tmp_path, start_server):
    """runtime_server(**env): a server whose bootstrap is RUNTIME."""
    script = tmp_path / "runtime.py"
    script.write_text(RUNTIME)

    def start(**env: str) -> LocalServer:
        return start_server(bootstrap=f"exec {sys.executable} {script}", **env)

    return start


def steps(*pairs) -> dict:
    return {"steps": [list(pair) for pair in pairs]}


def tail_of(answer: requests.Response) -> str:
    return base64.b64decode(answer.headers["X-Amz-Log-Result"], validate=True).decode("latin-1")


def test_tail_is_the_invocations_own_log_from_start_to_report(start_server):
    """Checklist 68 and 30: Tail answers START, the function's stdout and stderr, END and
    REPORT of that invocation, base64; the same lines reach the server's stdout in that order."""
    server = start_server("handler.log")
    answer = server.invoke({"marker": "t-1"}, path=INVOKE, headers=TAIL)
    assert answer.status_code == 200
    request_id = answer.headers["X-Amzn-RequestId"]
    tail = tail_of(answer)
    lines = [
        f"START RequestId: {request_id} Version: $LATEST",
        "log to stdout: t-1",
        "log to stderr: t-1",
        f"END RequestId: {request_id}",
        f"REPORT RequestId: {request_id}\tDuration: ",
    ]
    positions = [tail.index(line) for line in lines]
    assert positions == sorted(positions) and positions[0] == 0
    assert re.search(r"Init Duration: [\d.]+ ms\t\n$", tail)  # REPORT is its last line
    log = server.wait_for_log(f"REPORT RequestId: {request_id}")
    assert log.index(tail) >= 0  # stdout has the same bytes, in the same order


def test_without_tail_there_is_no_log_result_and_other_log_types_are_refused(start_server):
    """Checklist 68: None (the default) answers no X-Amz-Log-Result; any other value is a 400
    that names the valid ones, and the function does not run."""
    server = start_server("handler.log")
    assert "X-Amz-Log-Result" not in server.invoke({"marker": "a"}, path=INVOKE).headers
    none = server.invoke({"marker": "b"}, path=INVOKE, headers={"X-Amz-Log-Type": "None"})
    assert none.status_code == 200 and "X-Amz-Log-Result" not in none.headers
    for bad in ("tail", "Tail\x7f", "All"):
        refused = server.invoke({"marker": "bad"}, path=INVOKE, headers={"X-Amz-Log-Type": bad})
        assert refused.status_code == 400
        assert refused.json()["errorType"] == "InvalidParameterValueException"
        assert "None or Tail" in refused.json()["errorMessage"]
    assert "log to stdout: bad" not in server.logs()


def test_tail_is_the_last_4096_bytes(runtime_server):
    """Checklist 68: a long log's tail is its last 4 KB, ending with REPORT."""
    server = runtime_server()
    answer = server.invoke(steps(["out", "x" * 10_000 + "\n"]), path=INVOKE, headers=TAIL)
    raw = base64.b64decode(answer.headers["X-Amz-Log-Result"])
    assert len(raw) == 4096
    assert raw.startswith(b"x" * 100) and b"START" not in raw
    assert (
        raw.endswith(b"\t\n")
        and b"REPORT RequestId: " + answer.headers["X-Amzn-RequestId"].encode() in raw
    )


def test_each_invoker_tail_holds_only_its_own_invocation(runtime_server):
    """Checklist 68 with INVOKER_COUNT=2: while one invocation runs, another one's output on
    the other invoker is in the other's tail only, though both are in the one stdout."""
    server = runtime_server(INVOKER_COUNT="2")
    server.wait_until_all_invokers_ready()
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(
            server.invoke,
            steps(["out", "slow begins\n"], ["sleep", 1.5], ["out", "slow ends\n"]),
            path=INVOKE,
            headers=TAIL,
        )
        server.wait_for_log("slow begins")
        quick = server.invoke(
            steps(["out", "quick\n"], ["err", "quick err\n"]), path=INVOKE, headers=TAIL
        )
        slow_tail, quick_tail = tail_of(slow.result()), tail_of(quick)
    assert "slow begins\n" in slow_tail and "slow ends\n" in slow_tail
    assert "quick" not in slow_tail
    assert "quick\n" in quick_tail and "quick err\n" in quick_tail and "slow" not in quick_tail
    assert quick.headers["X-Amzn-RequestId"] not in slow_tail
    log = server.wait_for_log("slow ends")
    assert log.index("slow begins") < log.index("quick\n") < log.index("slow ends")


def test_any_bytes_pass_through_untouched(runtime_server):
    """Checklist 30: binary junk, NULs, invalid UTF-8, a partial line and a long line without a
    newline reach stdout byte for byte, before END, and in the tail."""
    server = runtime_server()
    junk = "".join(chr(b) for b in range(256)) * 4
    long_line = "L" * 300_000
    answer = server.invoke(
        steps(["out", "partial "], ["err", "line\n"], ["out", junk], ["out", long_line]),
        path=INVOKE,
        headers=TAIL,
    )
    request_id = answer.headers["X-Amzn-RequestId"]
    server.wait_for_log(f"REPORT RequestId: {request_id}")
    log = server.log_path.read_bytes()
    expected = b"partial line\n" + junk.encode("latin-1") + long_line.encode()
    at = log.index(expected)
    assert log.index(f"START RequestId: {request_id}".encode()) < at
    # The END line follows the output at once; a missing newline is the function's to write.
    assert log[at + len(expected) :].startswith(f"END RequestId: {request_id}\n".encode())
    assert base64.b64decode(answer.headers["X-Amz-Log-Result"]).startswith(b"L" * 3000)


def test_dying_bootstraps_last_output_comes_before_its_exit(runtime_server):
    """Checklist 30: what a bootstrap wrote just before it exited is in the log before the exit
    is reported, and in the invocation's tail with END and REPORT."""
    server = runtime_server()
    answer = server.invoke(
        steps(["out", "last words, no newline"], ["exit", 3]), path=INVOKE, headers=TAIL
    )
    assert answer.json()["errorType"] == "Runtime.ExitError"
    tail = tail_of(answer)
    assert tail.index("last words") < tail.index("Runtime exited with error: exit status 3")
    assert "Status: failure\tError Type: Runtime.ExitError" in tail
    log = server.wait_for_log("Runtime exited with error")
    assert log.index("last words, no newline") < log.index("Runtime exited with error")


def test_timeout_tail_ends_with_its_report(runtime_server):
    """Checklists 25 and 68: a timed-out invocation's tail has the timeout line, END and a
    REPORT with Status: timeout, as Lambda's."""
    server = runtime_server(AWS_LAMBDA_FUNCTION_TIMEOUT="1")
    answer = server.invoke(steps(["out", "before\n"], ["sleep", 10]), path=INVOKE, headers=TAIL)
    assert answer.json()["errorType"] == "Sandbox.Timedout"
    tail = tail_of(answer)
    request_id = answer.headers["X-Amzn-RequestId"]
    assert tail.index("before\n") < tail.index("Task timed out after 1.00 seconds")
    assert re.search(rf"END RequestId: {request_id}\nREPORT .*\tStatus: timeout\t", tail)
    # END is written once, though the process ends after the answer.
    assert server.invoke(steps(), path=INVOKE).status_code == 200
    assert server.logs().count(f"END RequestId: {request_id}") == 1


def test_megabytes_of_output_arrive_whole_and_in_order(runtime_server):
    """Checklist 30: 8 MB of output from one invocation, while another invoker serves, reaches
    stdout line for line in order, within the invocation."""
    server = runtime_server(INVOKER_COUNT="2")
    server.wait_until_all_invokers_ready()
    count = 400_000  # 25 bytes each: 10 MB
    with ThreadPoolExecutor(1) as pool:
        flood = pool.submit(server.invoke, steps(["lines", count]), path=INVOKE)
        for _ in range(5):
            assert server.invoke(steps(["out", "meanwhile\n"]), path=INVOKE).status_code == 200
        request_id = flood.result().headers["X-Amzn-RequestId"]
    server.wait_for_log(f"END RequestId: {request_id}", seconds=30)
    log = server.log_path.read_bytes()
    flood_lines = re.findall(rb"line (\d{8}) of the flood\n", log)
    assert [int(n) for n in flood_lines] == list(range(count))
    assert log.index(f"START RequestId: {request_id}".encode()) < log.index(b"line 00000000")
    assert log.index(b"line %08d" % (count - 1)) < log.index(
        f"END RequestId: {request_id}".encode()
    )


class PipedServer(LocalServer):
    """The server with its stdout a pipe, as in a container, read by a collector that can be
    made to stop reading for a while."""

    def start(self, ready: bool) -> PipedServer:
        self.reading = threading.Event()
        self.reading.set()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "klr"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._collector = threading.Thread(target=self._collect, daemon=True)
        self._collector.start()
        self.wait_for("/_klr/ready" if ready else "/_klr/health")
        return self

    def _collect(self) -> None:
        with open(self.log_path, "wb") as log:
            while self.reading.wait() and (data := self.process.stdout.read1(65536)):
                log.write(data)
                log.flush()

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def test_a_slow_log_collector_holds_back_the_function_not_the_server(tmp_path):
    """Checklist 30: while nobody reads the server's stdout, a function writing 20 MB waits in
    its writes; the server still answers on its other invoker and its memory stays bounded;
    once the collector reads again, every line arrives in order."""
    script = tmp_path / "runtime.py"
    script.write_text(RUNTIME)
    server = PipedServer(
        tmp_path / "server", f"exec {sys.executable} {script}", {"INVOKER_COUNT": "2"}
    ).start(ready=True)
    try:
        server.wait_until_all_invokers_ready()
        before = server.rss_mb()
        server.reading.clear()
        count = 800_000  # 20 MB
        with ThreadPoolExecutor(1) as pool:
            flood = pool.submit(server.invoke, steps(["lines", count]), path=INVOKE)
            time.sleep(1)  # the flood fills the pipes and stdout's buffer meanwhile
            for _ in range(3):
                started = time.monotonic()
                assert server.invoke(steps(), path=INVOKE, timeout=10).status_code == 200
                assert time.monotonic() - started < 5
            assert not flood.done()  # the function waits in its writes
            assert server.rss_mb() - before < 16, "the server held back more than its buffer"
            server.reading.set()
            request_id = flood.result().headers["X-Amzn-RequestId"]
        until(
            "the flood's END in the log",
            30,
            lambda: f"END RequestId: {request_id}" in server.logs(),
            server.logs,
        )
        flood_lines = re.findall(rb"line (\d{8}) of the flood\n", server.log_path.read_bytes())
        assert [int(n) for n in flood_lines] == list(range(count))
    finally:
        server.reading.set()
        server.stop()


def test_json_platform_records(runtime_server):
    """Issue 8 item 5, checklist 30: AWS_LAMBDA_LOG_FORMAT=JSON writes START, END and REPORT
    as Lambda's platform.start, platform.runtimeDone and platform.report records; the
    function's output passes through as it is; the variables reach the bootstrap unchanged."""
    server = runtime_server(AWS_LAMBDA_LOG_FORMAT="JSON", AWS_LAMBDA_LOG_LEVEL="DEBUG")
    answer = server.invoke(steps(["out", "plain text\n"]), path=INVOKE, headers=TAIL)
    env = answer.json()
    assert (env["AWS_LAMBDA_LOG_FORMAT"], env["AWS_LAMBDA_LOG_LEVEL"]) == ("JSON", "DEBUG")
    request_id = answer.headers["X-Amzn-RequestId"]
    start, output, done, report = tail_of(answer).splitlines()
    assert output == "plain text"
    records = [json.loads(line) for line in (start, done, report)]
    assert [r["type"] for r in records] == [
        "platform.start",
        "platform.runtimeDone",
        "platform.report",
    ]
    for record in records:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"])
        assert record["record"]["requestId"] == request_id
    assert records[0]["record"] == {"requestId": request_id, "version": "$LATEST"}
    assert records[1]["record"]["status"] == "success"
    metrics = records[2]["record"]["metrics"]
    assert set(metrics) == {
        "durationMs",
        "billedDurationMs",
        "memorySizeMB",
        "maxMemoryUsedMB",
        "initDurationMs",
    }
    assert isinstance(metrics["durationMs"], float) and isinstance(metrics["initDurationMs"], float)
    assert isinstance(metrics["billedDurationMs"], int) and metrics["memorySizeMB"] == 3008
    assert isinstance(metrics["maxMemoryUsedMB"], int)
    assert "START RequestId" not in server.wait_for_log('"type":"platform.report"')


def test_json_faults_and_failed_init(runtime_server, start_server):
    """Issue 8 item 5: a timeout is a platform.fault record and a runtimeDone with status
    timeout; an init that fails is a platform.initReport with its error type."""
    server = runtime_server(AWS_LAMBDA_LOG_FORMAT="JSON", AWS_LAMBDA_FUNCTION_TIMEOUT="1")
    answer = server.invoke(steps(["sleep", 10]), path=INVOKE, headers=TAIL)
    records = [json.loads(line) for line in tail_of(answer).splitlines()]
    assert [r["type"] for r in records] == [
        "platform.start",
        "platform.fault",
        "platform.runtimeDone",
        "platform.report",
    ]
    assert "Task timed out after 1.00 seconds" in records[1]["record"]
    assert records[2]["record"]["status"] == records[3]["record"]["status"] == "timeout"
    assert records[3]["record"]["errorType"] == "Sandbox.Timedout"

    broken = start_server("init_error.handler", ready=False, AWS_LAMBDA_LOG_FORMAT="JSON")
    assert broken.invoke({}).status_code == 502
    log = broken.wait_for_log('"type":"platform.initReport"')
    report = json.loads(next(line for line in log.splitlines() if "platform.initReport" in line))
    assert report["record"]["phase"] == "init" and report["record"]["status"] == "error"
    assert report["record"]["errorType"].startswith("Runtime.")
    assert isinstance(report["record"]["metrics"]["durationMs"], float)


def test_json_log_level_leaves_out_the_info_records(runtime_server):
    """Issue 8 item 5: with JSON logs, AWS_LAMBDA_LOG_LEVEL=WARN leaves out START, END and
    REPORT (INFO) but keeps the function's output and the faults; Text logs ignore the level,
    as Lambda's."""
    server = runtime_server(AWS_LAMBDA_LOG_FORMAT="JSON", AWS_LAMBDA_LOG_LEVEL="WARN")
    assert tail_of(server.invoke(steps(["out", "kept\n"]), path=INVOKE, headers=TAIL)) == "kept\n"
    text = runtime_server(AWS_LAMBDA_LOG_LEVEL="ERROR")
    assert "START RequestId" in tail_of(text.invoke(steps(), path=INVOKE, headers=TAIL))


def test_log_settings_are_checked_once_with_clear_errors(tmp_path):
    """Issue 8 item 5: Lambda's spellings only, each error naming the variable and its values;
    the server refuses to start on a bad one."""
    assert Settings.from_env({}).log_format == "Text"
    assert Settings.from_env({}).log_level == "INFO"
    settings = Settings.from_env({"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "TRACE"})
    assert (settings.log_format, settings.log_level) == ("JSON", "TRACE")
    with pytest.raises(SettingsError, match="AWS_LAMBDA_LOG_FORMAT must be one of Text, JSON"):
        Settings.from_env({"AWS_LAMBDA_LOG_FORMAT": "json"})
    with pytest.raises(SettingsError, match="AWS_LAMBDA_LOG_LEVEL must be one of TRACE, DEBUG"):
        Settings.from_env({"AWS_LAMBDA_LOG_LEVEL": "VERBOSE"})
    server = LocalServer(
        tmp_path, f"exec {sys.executable} {PYTHON_SHIM}", {"AWS_LAMBDA_LOG_FORMAT": "XML"}
    )
    result = subprocess.run(
        [sys.executable, "-m", "klr"], env=server.env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode != 0
    assert "AWS_LAMBDA_LOG_FORMAT must be one of Text, JSON, got 'XML'" in result.stderr
