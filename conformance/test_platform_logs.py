"""Logs as Lambda writes them, on every image: X-Amz-Log-Type: Tail (checklist 68) with the
`log` sample handler, each invoker's output in its own invocation's tail (checklist 30), and
AWS_LAMBDA_LOG_FORMAT=JSON platform records (issue 8, item 5). Two containers per image."""

from __future__ import annotations

import base64
import json
import re
from concurrent.futures import ThreadPoolExecutor

INVOKE = "/2015-03-31/functions/function/invocations"
TAIL = {"X-Amz-Log-Type": "Tail"}


def invoke_with_tail(function, marker: str) -> tuple[str, str]:
    """(request id, decoded tail) of one invocation of the `log` handler."""
    answer = function.invoke({"marker": marker}, path=INVOKE, headers=TAIL)
    assert answer.status_code == 200, answer.text
    assert answer.json() == "logged"
    tail = base64.b64decode(answer.headers["X-Amz-Log-Result"], validate=True)
    assert len(tail) <= 4096
    return answer.headers["X-Amzn-RequestId"], tail.decode(errors="replace")


def test_tail_holds_each_invocations_own_log(start):
    """Checklists 68 and 30: with two invokers and invocations two at a time, each tail holds
    its START, its own markers from stdout and stderr, END and REPORT, and nothing of the
    invocations that ran beside it on the other invoker."""
    function = start("log", INVOKER_COUNT="2")
    function.wait_until_all_invokers_ready()
    markers = [f"marker-{n}-{'x' * n}" for n in range(6)]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda marker: invoke_with_tail(function, marker), markers))
    for marker, (request_id, tail) in zip(markers, results):
        order = [
            tail.index(f"START RequestId: {request_id} Version: $LATEST"),
            tail.index(f"END RequestId: {request_id}"),
            tail.index(f"REPORT RequestId: {request_id}\tDuration: "),
        ]
        assert order == sorted(order), tail
        assert order[0] < tail.index(f"log to stdout: {marker}\n") < order[1], tail
        assert order[0] < tail.index(f"log to stderr: {marker}\n") < order[1], tail
        others = [m for m in markers if m != marker]
        assert not [m for m in others if re.search(rf"{m}\n", tail)], tail
        assert not [rid for rid, _ in results if rid != request_id and rid in tail], tail
    function.wait_for_log(f"REPORT RequestId: {results[-1][0]}")


def test_json_platform_records(start):
    """Issue 8 item 5, checklist 30: with AWS_LAMBDA_LOG_FORMAT=JSON the platform lines are
    Lambda's platform.start, platform.runtimeDone and platform.report records, valid JSON with
    the invocation's requestId and numbers where Lambda has numbers; the markers still come
    through (as they are, or in the shim's JSON records)."""
    function = start("log", AWS_LAMBDA_LOG_FORMAT="JSON")
    request_id, tail = invoke_with_tail(function, "json-marker")
    records = [json.loads(line) for line in tail.splitlines() if line.startswith('{"time"')]
    assert [r["type"] for r in records] == [
        "platform.start",
        "platform.runtimeDone",
        "platform.report",
    ], tail
    assert records[0]["record"] == {"requestId": request_id, "version": "$LATEST"}
    assert all(r["record"]["requestId"] == request_id for r in records)
    assert records[1]["record"]["status"] == records[2]["record"]["status"] == "success"
    metrics = records[2]["record"]["metrics"]
    assert isinstance(metrics["durationMs"], float) and isinstance(metrics["billedDurationMs"], int)
    assert metrics["memorySizeMB"] == 3008 and isinstance(metrics["maxMemoryUsedMB"], int)
    assert isinstance(metrics["initDurationMs"], float)  # the first invocation of its process
    assert "log to stdout: json-marker" in tail and "log to stderr: json-marker" in tail
    assert "START RequestId" not in function.wait_for_log('"type":"platform.report"')
