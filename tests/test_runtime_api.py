"""The Runtime API's contract (spec/lambda-fidelity.md §7 A-C), with the test as the runtime.

The bootstrap the server starts only sleeps, so the test itself calls /next and posts results
on the invoker's port, exactly as a runtime client would.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

SLEEPER = "exec sleep 600"


@pytest.fixture
def caller():
    """Callers waiting on the front door; set up before the server so they end after it."""
    with ThreadPoolExecutor(4) as pool:
        yield pool


@pytest.fixture
def server(caller, start_server):
    return start_server(
        bootstrap=SLEEPER, ready=False, AWS_LAMBDA_FUNCTION_TIMEOUT="30", KLR_SHUTDOWN_TIMEOUT="0.5"
    )


def next_invocation(server) -> requests.Response:
    response = requests.get(server.runtime_api() + "/invocation/next", timeout=10)
    assert response.status_code == 200, response.text
    return response


def test_next_hands_out_the_event_with_lambda_headers(server, caller):
    pending = caller.submit(server.invoke, {"name": "Foo", "text": "héllo ☃"})
    started = time.time()
    response = next_invocation(server)
    request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
    assert re.fullmatch(r"[0-9a-f-]{36}", request_id)
    assert json.loads(response.content) == {"name": "Foo", "text": "héllo ☃"}
    assert response.headers["Content-Type"] == "application/json"
    deadline = int(response.headers["Lambda-Runtime-Deadline-Ms"])
    assert abs(deadline - (started + 30) * 1000) < 2000
    assert response.headers["Lambda-Runtime-Invoked-Function-Arn"] == (
        "arn:aws:lambda:us-east-1:012345678912:function:function"
    )
    assert response.headers["Lambda-Runtime-Trace-Id"].startswith("Root=1-")

    accepted = requests.post(
        f"{server.runtime_api()}/invocation/{request_id}/response", data=b'"done"'
    )
    assert (accepted.status_code, accepted.json()) == (202, {"status": "OK"})
    result = pending.result(timeout=10)
    assert (result.status_code, result.content) == (200, b'"done"')
    assert result.headers["X-Amzn-RequestId"] == request_id


def test_results_for_unknown_or_finished_ids_are_refused(server, caller):
    pending = caller.submit(server.invoke, {})
    request_id = next_invocation(server).headers["Lambda-Runtime-Aws-Request-Id"]
    unknown = requests.post(f"{server.runtime_api()}/invocation/not-an-id/response", data=b"{}")
    assert unknown.status_code == 400
    assert unknown.json() == {"errorType": "InvalidRequestID", "errorMessage": "Invalid request ID"}

    assert (
        requests.post(
            f"{server.runtime_api()}/invocation/{request_id}/response", data=b"1"
        ).status_code
        == 202
    )
    again = requests.post(f"{server.runtime_api()}/invocation/{request_id}/error", data=b"{}")
    assert again.status_code == 403
    assert again.json()["errorType"] == "InvalidStateTransition"
    assert pending.result(timeout=10).content == b"1"  # the first result stands


def test_next_while_an_invocation_is_open_is_refused(server, caller):
    caller.submit(server.invoke, {})
    next_invocation(server)
    again = requests.get(server.runtime_api() + "/invocation/next", timeout=10)
    assert again.status_code == 403
    assert again.json()["errorType"] == "InvalidStateTransition"


def test_error_body_passes_through_and_the_caller_sees_a_500(server, caller):
    pending = caller.submit(server.invoke, {})
    request_id = next_invocation(server).headers["Lambda-Runtime-Aws-Request-Id"]
    node_style = {"errorType": "TypeError", "errorMessage": "bad", "trace": ["at x (y.js:1:2)"]}
    posted = requests.post(
        f"{server.runtime_api()}/invocation/{request_id}/error",
        json=node_style,
        headers={"Lambda-Runtime-Function-Error-Type": "Unhandled"},
    )
    assert posted.status_code == 202
    result = pending.result(timeout=10)
    assert result.status_code == 500
    assert result.json() == node_style


def test_chunked_response_with_error_trailers_becomes_an_error(server, caller):
    pending = caller.submit(server.invoke, {})
    request_id = next_invocation(server).headers["Lambda-Runtime-Aws-Request-Id"]
    error_body = base64.b64encode(b'{"errorType":"Go.Panic","errorMessage":"oops"}').decode()
    raw = (
        f"POST /2018-06-01/runtime/invocation/{request_id}/response HTTP/1.1\r\n"
        f"Host: x\r\nTransfer-Encoding: chunked\r\n"
        f"Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n"
        f"3\r\n{{}}\n\r\n0\r\nLambda-Runtime-Function-Error-Type: Function.Panic\r\n"
        f"Lambda-Runtime-Function-Error-Body: {error_body}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.api_port)) as sock:
        sock.sendall(raw)
        assert sock.recv(4096).startswith(b"HTTP/1.1 202")
    result = pending.result(timeout=10)
    assert result.status_code == 500
    assert result.json() == {"errorType": "Go.Panic", "errorMessage": "oops"}


def test_oversized_response_is_refused_and_the_caller_told(server, caller):
    pending = caller.submit(server.invoke, {})
    request_id = next_invocation(server).headers["Lambda-Runtime-Aws-Request-Id"]
    huge = b'"' + b"x" * (6 * 1024 * 1024 + 200) + b'"'
    posted = requests.post(f"{server.runtime_api()}/invocation/{request_id}/response", data=huge)
    assert posted.status_code == 413
    assert posted.json()["errorType"] == "RequestEntityTooLarge"
    result = pending.result(timeout=10)
    assert result.status_code == 502
    assert result.json()["errorType"] == "Function.ResponseSizeTooLarge"
    assert "exceeded maximum allowed payload size (6291556 bytes)" in result.json()["errorMessage"]


def test_init_error_reaches_the_waiting_caller(start_server, caller):
    # A runtime that reports an init error, then exits as the official clients do.
    server = start_server(
        bootstrap='curl -s -o /dev/null -H "Lambda-Runtime-Function-Error-Type: Runtime.ImportModuleError" '
        '-d \'{"errorType":"Runtime.ImportModuleError","errorMessage":"no module"}\' '
        '"http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/init/error"; exit 1',
        ready=False,
    )
    for _ in range(2):  # each invocation retries init and gets the error again
        result = server.invoke({}, timeout=10)
        assert result.status_code == 502
        assert result.json() == {
            "errorType": "Runtime.ImportModuleError",
            "errorMessage": "no module",
        }
    assert "Phase: init\tStatus: error\tError Type: Runtime.ImportModuleError" in server.logs()


def test_init_error_after_init_is_refused(server, caller):
    caller.submit(server.invoke, {})
    next_invocation(server)
    late = requests.post(
        server.runtime_api() + "/init/error", json={"errorType": "X", "errorMessage": "y"}
    )
    assert late.status_code == 403


@pytest.mark.parametrize(
    "raw_type, expected",
    [
        ("Runtime.ImportModuleError", "Runtime.ImportModuleError"),
        ("Function.MyError", "Function.MyError"),
        ("Function<UserException>", "Runtime.Unknown"),
        ("Function.bad-name", "Function.Unknown"),
        ("Unhandled", "Runtime.Unknown"),
    ],
)
def test_error_types_are_normalised_like_lambda(raw_type, expected):
    from klr.runtime_api import normalized_error_type

    assert normalized_error_type(raw_type) == expected
