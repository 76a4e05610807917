"""The behaviours every image must show, written once and run against each runtime's container."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

# Each behaviour runs once more with AWS's runtime interface clients as the bootstrap
# (harness.OFFICIAL_CLIENTS): awslambdaric, aws-lambda-ric, the Java client, aws-lambda-go.
OFFICIAL_CLIENTS = True


def test_echo(start):
    result = start("echo").invoke({"name": "Foo"})
    assert (result.status_code, result.json()) == (200, {"name": "Foo"})
    assert result.headers["Content-Type"] == "application/json"


def test_unicode(start):
    event = {"text": "héllo ☃ 日本語 🚀", "list": ["ü", 1, None]}
    assert start("echo").invoke(event).json() == event


def test_5_mb_payload(start):
    event = {"data": "x" * (5 * 1024 * 1024)}
    result = start("echo").invoke(event)
    assert result.status_code == 200
    assert len(result.json()["data"]) == 5 * 1024 * 1024


def test_context_and_environment(start, runtime):
    function = start("context", USER_SETTING="kept", AWS_REGION="eu-west-1")
    result = function.invoke({})
    context = result.json()
    env = context["env"]
    assert context["requestId"] == result.headers["X-Amzn-RequestId"]
    assert context["functionName"] == env["AWS_LAMBDA_FUNCTION_NAME"] == "function"
    assert (
        context["invokedFunctionArn"] == "arn:aws:lambda:eu-west-1:012345678912:function:function"
    )
    assert context["memoryLimitInMB"] == env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "3008"
    assert context["logGroupName"] == "/aws/lambda/function"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", context["logStreamName"])
    assert 0 < context["remainingTimeInMillis"] <= 300_000
    assert env["USER_SETTING"] == "kept" and env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert re.fullmatch(r"127\.0\.0\.1:\d+", env["AWS_LAMBDA_RUNTIME_API"])
    assert env["LAMBDA_TASK_ROOT"] == context["cwd"] == "/var/task"
    assert env["LAMBDA_RUNTIME_DIR"] == "/var/runtime"
    assert env["AWS_EXECUTION_ENV"] == runtime.aws_execution_env
    assert env["LANG"] == "en_US.UTF-8" and env["TZ"] == ":/etc/localtime"
    assert env["PATH"].startswith("/var/lang/bin:")
    assert env["_X_AMZN_TRACE_ID"].startswith("Root=1-")


def test_function_error(start, language):
    result = start("fail").invoke({"id": 1})
    assert result.status_code == 500
    assert result.json()["errorType"] == language.function_error
    assert "something went wrong" in result.json()["errorMessage"]


@pytest.mark.requires("marshal_error")
def test_unserialisable_result(start, language):
    result = start("unserialisable").invoke({})
    assert result.status_code == 500
    assert result.json()["errorType"] == language.marshal_error


def test_init_failures(start, language, init_failure):
    handler, error_type = language.init_failures[init_failure]
    function = start(handler=handler, ready=False)
    for _ in range(2):  # init is retried for every invocation, and fails again
        result = function.invoke({})
        assert result.status_code == 502
        assert result.json()["errorType"] == error_type


def test_timeout(start):
    function = start("sleep", AWS_LAMBDA_FUNCTION_TIMEOUT="1")
    result = function.invoke({"seconds": 5})
    assert result.status_code == 504
    assert result.json()["errorType"] == "Sandbox.Timedout"
    assert function.invoke({"seconds": 0}).json() == {"slept": 0}


def test_bootstrap_crash(start):
    function = start("crash")
    result = function.invoke({})
    assert result.status_code == 502
    assert result.json()["errorType"] == "Runtime.ExitError"
    function.wait_for("/_klr/ready")  # a replacement bootstrap asked for work


def test_concurrency(start):
    function = start("sleep", INVOKER_COUNT="4")
    function.wait_until_all_invokers_ready()
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: function.invoke({"seconds": 1}), range(4)))
    elapsed = time.monotonic() - started
    assert [r.status_code for r in results] == [200] * 4
    assert elapsed < 2, f"4 one-second invocations on 4 invokers took {elapsed:.2f} s"


def test_warm_reuse(start):
    function = start("warm", INVOKER_COUNT="1")
    first, second = function.invoke({}).json(), function.invoke({}).json()
    assert second["invocations"] == first["invocations"] + 1
    assert second["tmpBytes"] == first["tmpBytes"] + 1


def test_logs(start):
    function = start("log")
    request_id = function.invoke({"marker": "m-7"}).headers["X-Amzn-RequestId"]
    logs = function.wait_for_log(f"REPORT RequestId: {request_id}")
    start_at, end_at = (
        logs.index(f"START RequestId: {request_id}"),
        logs.index(f"END RequestId: {request_id}"),
    )
    assert start_at < logs.index("log to stdout: m-7") < end_at
    assert start_at < logs.index("log to stderr: m-7") < end_at
    assert re.search(
        rf"REPORT RequestId: {request_id}\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms", logs
    )


def test_api_gateway_mode(start):
    function = start("http", EVENT_TYPE="API_GATEWAY")
    result = requests.put(
        function.url + "/items/7?color=red", data="hi", headers={"X-Test": "yes"}, timeout=30
    )
    assert result.status_code == 201
    assert result.headers["X-Multi"] == "a, b"
    assert result.json() == {
        "method": "PUT",
        "path": "/items/7",
        "query": {"color": "red"},
        "header": "yes",
        "body": "hi",
    }
    failing = start("fail", EVENT_TYPE="API_GATEWAY")
    error = requests.get(failing.url + "/", timeout=30)
    assert (error.status_code, error.json()) == (502, {"message": "Internal server error"})


def test_invoke_api(start, language):
    function = start("fail")
    result = function.invoke({}, path="/2015-03-31/functions/function/invocations")
    assert result.status_code == 200
    assert result.headers["X-Amz-Function-Error"] == "Unhandled"
    assert result.json()["errorType"] == language.function_error
    echo = start("echo").invoke({"a": 1}, path="/2015-03-31/functions/function/invocations")
    assert (echo.status_code, echo.json()) == (200, {"a": 1})


def test_health_endpoints_do_not_invoke(start):
    function = start("echo")
    assert requests.get(function.url + "/_klr/health", timeout=5).status_code == 200
    assert requests.get(function.url + "/_klr/ready", timeout=5).json()["ready"] is True
    assert "START RequestId" not in function.logs()


def test_sigterm_drains_and_exits_0(start):
    function = start("sleep")
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(function.invoke, {"seconds": 1})
        function.wait_for_log("START RequestId")  # the invocation is in flight
        function.container.stop(timeout=20)
        assert in_flight.result().json() == {"slept": 1}
    assert function.container.wait()["StatusCode"] == 0


def test_any_user_id(start):
    assert start("warm", user="12345:12345").invoke({}).json()["invocations"] == 1
