"""What only Ruby images show: class-method handlers, Ruby's context object and error shape,
the official runtime's exit after a critical error, and the seed's ruby25 example."""

from __future__ import annotations

import base64
import json
import re
import time
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
