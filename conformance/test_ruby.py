"""What only Ruby images show: class-method handlers, Ruby's context object and error shape,
the official runtime's exit after a critical error, and the seed's ruby25 example."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from datetime import datetime, timezone

from conformance.harness import seed_function

LANGUAGE = "ruby"


def test_namespaced_class_method_handler(start):
    result = start(handler="handler.Greetings::Greeter.hello").invoke({"name": "Foo"})
    assert result.status_code == 200
    assert result.json() == {
        "greeting": "Hello, Foo!",
        "requestId": result.headers["X-Amzn-RequestId"],
    }


def test_context_deadline_client_context_and_tenant(start):
    function = start("ruby_context", AWS_LAMBDA_FUNCTION_TIMEOUT="60")
    client_context = {"custom": {"k": "v"}, "env": {"locale": "en"}}
    invoked_at = time.time() * 1000
    result = function.invoke(
        {},
        path="/2015-03-31/functions/function/invocations",
        headers={
            "X-Amz-Client-Context": base64.b64encode(json.dumps(client_context).encode()).decode(),
            "X-Amz-Tenant-Id": "tenant-7",
        },
    )
    context = result.json()
    assert invoked_at < context["deadlineMs"] <= invoked_at + 61_000
    assert 0 < context["remainingTimeInMillis"] <= 60_000
    assert context["clientContext"] == client_context  # the parsed JSON, as a Hash
    assert context["tenantId"] == "tenant-7"
    assert context["identity"] is None  # no Cognito identity was sent


def test_function_error_shape(start):
    function = start("fail")
    result = function.invoke({"id": 7})
    assert result.status_code == 500
    error = result.json()
    assert set(error) == {"errorMessage", "errorType", "stackTrace"}
    assert error["errorType"] == "Function<RuntimeError>"
    assert error["errorMessage"] == 'something went wrong: {"id":7}'
    # The function's frames only, as strings, none of the runtime's own.
    assert error["stackTrace"] and all(
        frame.startswith("/var/task/handler.rb:") for frame in error["stackTrace"]
    )
    function.wait_for_log("Error raised from handler method")


def test_missing_method_fails_each_invocation(start):
    function = start(
        "missing"
    )  # the file loads, so init succeeds: the method is looked up per call
    for _ in range(2):
        result = function.invoke({})
        assert result.status_code == 500
        assert result.json()["errorType"] == "Function<NoMethodError>"
        assert "undefined method" in result.json()["errorMessage"]
        assert "missing" in result.json()["errorMessage"]


def test_critical_error_replaces_the_process_and_plain_error_does_not(start):
    function = start("pid", INVOKER_COUNT="1")
    first = function.invoke({}).json()["pid"]
    assert function.invoke({"undefined": True}).json()["errorType"] == "Function<NameError>"
    second = function.invoke({}).json()["pid"]
    assert second != first
    function.wait_for_log("Critical exception from handler")
    assert function.invoke({}).json()["pid"] == second  # an ordinary invocation keeps the process


def test_logger_cases_of_the_logging_controls(start, runtime):
    """Issue 8 item 5, Ruby's Logger as Lambda's runtime client treats it from Ruby 3.2
    (aws-lambda-ruby-runtime-interface-client PR #58): with AWS_LAMBDA_LOG_FORMAT=JSON a Logger on
    $stdout or $stderr writes JSON records (its progname as `logger`; an exception with its
    errorType, errorMessage, stackTrace and location), a formatter or level the function gives
    wins, and a Logger on any other device is left alone. The older images write text."""
    function = start("loggers", AWS_LAMBDA_LOG_FORMAT="JSON", AWS_LAMBDA_LOG_LEVEL="INFO")
    marker = f"m-{uuid.uuid4().hex[:12]}"
    response = function.invoke({"marker": marker})
    assert response.status_code == 200, response.text
    request_id = response.headers["X-Amzn-RequestId"]
    logs = function.wait_for_log(f"exception record: {marker}")
    lines = {
        found.group(1): line
        for line in logs.split("\n")
        if (found := re.search(rf"(\w+) record: {marker}", line))
    }
    assert set(lines) == {"progname", "stderr", "formatter", "level", "buffer", "exception"}, logs
    # The function's own formatter, and a Logger on a device of its own, as Ruby writes them.
    assert lines["formatter"] == f"own format INFO: formatter record: {marker}"
    assert re.fullmatch(rf"D, \[[^\]]+\] DEBUG -- : buffer record: {marker}", lines["buffer"])
    if tuple(int(part) for part in runtime.version.split(".")) < (3, 2):
        for name in ("progname", "stderr", "level", "exception"):
            assert not lines[name].startswith("{"), lines[name]
        return
    records = {
        name: json.loads(lines[name]) for name in ("progname", "stderr", "level", "exception")
    }
    for record in records.values():
        assert record["requestId"] == request_id, record
    assert records["progname"]["logger"] == "named"
    assert records["stderr"]["level"] == "WARN"
    assert records["level"]["level"] == "DEBUG"  # its own level: AWS_LAMBDA_LOG_LEVEL=INFO yields
    error = records["exception"]
    assert (error["level"], error["message"]) == ("ERROR", f"exception record: {marker}")
    assert (error["errorType"], error["errorMessage"]) == ("ArgumentError", error["message"])
    assert error["stackTrace"][0].startswith("/var/task/handler.rb:")
    assert re.fullmatch(r"/var/task/handler\.rb:.*loggers'?:\d+", error["location"]), error


def test_seed_example(docker_client, runtime):
    """The seed's ruby25 example (handler.endpoint, returning the date) from its own Dockerfile."""
    function = seed_function(docker_client, runtime, "ruby25")
    try:
        result = function.invoke(data='{"name":"Foo"}')
        assert result.status_code == 200
        assert result.json()["statusCode"] == 200
        date = json.loads(result.json()["body"])["date"]
        # MRI writes the zone as +0000, JRuby (ruby25) as UTC.
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ([+-]\d{4}|UTC)", date)
        age = datetime.now(timezone.utc) - datetime.strptime(
            date.replace("UTC", "+0000"), "%Y-%m-%d %H:%M:%S %z"
        )
        assert abs(age.total_seconds()) < 60
    finally:
        function.remove()
