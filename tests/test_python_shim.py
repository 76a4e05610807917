"""The Python shim against the real server, and against shim_probe.py's scripted Runtime API for
the connection rules; on every Python the host has (3.x, and 2.7)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conformance import shim_probe
from tests.local_server import PYTHON_FIXTURES, PYTHON_SHIM, python_interpreters


@pytest.fixture(params=python_interpreters(), ids=lambda path: os.path.basename(path))
def interpreter(request):
    return request.param


SHIM_START_SECONDS = 30  # a Python shim starts in well under a second; this is a busy machine


@pytest.mark.parametrize(
    "unset, message",
    [
        ("AWS_LAMBDA_RUNTIME_API", shim_probe.MISSING_RUNTIME_API),
        ("LAMBDA_TASK_ROOT", shim_probe.MISSING_TASK_ROOT),
    ],
)
def test_missing_setting_is_one_clear_line_and_exit_1(interpreter, unset, message):
    env = {
        **os.environ,
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9",
        "LAMBDA_TASK_ROOT": str(PYTHON_FIXTURES),
        "_HANDLER": "handler.echo",
    }
    del env[unset]
    shim = subprocess.run(
        [interpreter, str(PYTHON_SHIM)],
        env=env,
        capture_output=True,
        text=True,
        timeout=SHIM_START_SECONDS,
        check=False,
    )
    assert (shim.returncode, shim.stderr, shim.stdout) == (1, message + "\n", "")


@pytest.mark.parametrize("scenario", sorted(shim_probe.SCENARIOS))
def test_runtime_api_connection_rules(interpreter, scenario):
    """A dropped connection is retried once, then the shim exits; a refused result is not
    fatal; an unexpected status is (bootstrap/README.md, section 2)."""
    report = probe(interpreter, scenario)
    assert shim_probe.problems(scenario, report) == [], report


def probe(interpreter: str, scenario: str) -> dict:
    """shim_probe.py's report on the shim's handling of the scenario."""
    run = subprocess.run(
        [sys.executable, shim_probe.__file__, scenario, str(SHIM_START_SECONDS)]
        + [interpreter, str(PYTHON_SHIM)],
        env={**os.environ, "LAMBDA_TASK_ROOT": str(PYTHON_FIXTURES), "_HANDLER": "handler.echo"},
        capture_output=True,
        text=True,
        timeout=SHIM_START_SECONDS + 10,
        check=True,
    )
    return json.loads(run.stdout)


def test_unicode_round_trip(start_server, interpreter):
    event = {"text": "héllo ☃ 日本", "nested": [1, 2.5, None, True]}
    assert start_server(interpreter=interpreter).invoke(event).json() == event


def test_context_carries_lambda_values(start_server, interpreter):
    server = start_server(
        "handler.context",
        interpreter=interpreter,
        AWS_LAMBDA_FUNCTION_TIMEOUT="60",
        USER_SETTING="kept",
    )
    result = server.invoke({})
    context = result.json()
    assert context["requestId"] == result.headers["X-Amzn-RequestId"]
    assert context["functionName"] == "function"
    assert context["memoryLimitInMB"] == "3008"
    assert context["invokedFunctionArn"].endswith(":function:function")
    assert context["logGroupName"] == "/aws/lambda/function"
    assert 55_000 < context["remainingTimeInMillis"] <= 60_000
    assert context["env"]["USER_SETTING"] == "kept"
    assert context["env"]["_X_AMZN_TRACE_ID"].startswith("Root=1-")
    assert context["cwd"] == str(server.task_root)


def test_function_error_has_type_message_and_stack(start_server, interpreter):
    result = start_server("handler.fail", interpreter=interpreter).invoke({"id": 7})
    assert result.status_code == 500
    error = result.json()
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == 'something went wrong: {"id": 7}'
    assert any("handler.py" in frame for frame in error["stackTrace"])
    assert all(isinstance(frame, str) for frame in error["stackTrace"])


@pytest.mark.parametrize(
    "handler, error_type, message",
    [
        ("missing.handler", "Runtime.ImportModuleError", "Unable to import module 'missing'"),
        (
            "handler.missing",
            "Runtime.HandlerNotFound",
            "Handler 'missing' missing on module 'handler'",
        ),
        (
            "syntax_error.handler",
            "Runtime.UserCodeSyntaxError",
            "Syntax error in module 'syntax_error'",
        ),
        ("handler", "Runtime.MalformedHandlerName", "Bad handler 'handler'"),
        ("init_error.handler", "RuntimeError", "failed while loading"),
    ],
)
def test_init_errors_use_the_official_types(
    start_server, interpreter, handler, error_type, message
):
    result = start_server(handler, interpreter=interpreter, ready=False).invoke({})
    assert result.status_code == 502
    assert result.json()["errorType"] == error_type
    assert message in result.json()["errorMessage"]


def test_unserialisable_result_is_a_marshal_error(start_server, interpreter):
    result = start_server("handler.unserialisable", interpreter=interpreter).invoke({})
    assert result.status_code == 500
    assert result.json()["errorType"] == "Runtime.MarshalError"


def test_globals_and_tmp_survive_between_invocations(start_server, interpreter):
    server = start_server("handler.warm", interpreter=interpreter)
    first, second = server.invoke({}).json(), server.invoke({}).json()
    assert second["invocations"] == first["invocations"] + 1
    assert second["tmpBytes"] == first["tmpBytes"] + 1


def test_function_output_comes_between_start_and_end(start_server, interpreter):
    server = start_server("handler.log", interpreter=interpreter)
    request_id = server.invoke({"marker": "m-42"}).headers["X-Amzn-RequestId"]
    logs = server.logs()
    start = logs.index(f"START RequestId: {request_id}")
    end = logs.index(f"END RequestId: {request_id}")
    assert start < logs.index("log to stdout: m-42") < end
    assert start < logs.index("log to stderr: m-42") < end
    assert f"REPORT RequestId: {request_id}\tDuration: " in logs


def test_event_that_is_not_json_is_an_unmarshal_error(interpreter):
    """The front door only lets JSON through, so shim_probe.py sends it."""
    report = probe(interpreter, "bad event")
    (error,) = shim_probe.posted(report, "/error")
    assert json.loads(error["body"])["errorType"] == "Runtime.UnmarshalError"
