"""The HTTP layer as a contract, in raw bytes (RFC 9112; issue 7 of the project).

Each refusal is a complete answer followed by the end of the connection, and no input puts a
traceback in the log. Then what must work: pipelining, keep-alive, `Expect: 100-continue`,
trailers, HEAD; what a function's result must not do to the wire; the Runtime API's state
rules; a streamed result relayed chunk by chunk; the timeouts and the connection cap.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import h11
import pytest
import requests

from images.wait import until
from klr.config import MAX_STREAMED_RESPONSE_BYTES

SLEEPER = "exec sleep 600"
GET = b"GET / HTTP/1.1\r\nHost: x\r\n"


def talk(port: int, data: bytes, seconds: float = 10) -> bytes:
    """Send `data`, then read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=seconds) as sock:
        sock.sendall(data)
        chunks = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
        raise AssertionError(f"the server kept the connection open; it sent {b''.join(chunks)!r}")


def answers(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """The complete answers in `raw`, in order; AssertionError if any is cut short."""
    found = []
    while raw:
        head, separator, raw = raw.partition(b"\r\n\r\n")
        assert separator, f"an answer's head is cut short: {head!r}"
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.lower()] = value.strip()
        status = int(status_line.split(" ")[1])
        if "transfer-encoding" in headers:
            body = b""
            while True:
                size_line, _, raw = raw.partition(b"\r\n")
                size = int(size_line, 16)
                if not size:
                    _, _, raw = raw.partition(b"\r\n")  # no trailers in these answers
                    break
                body, raw = body + raw[:size], raw[size + 2 :]
        else:
            length = int(headers.get("content-length", "0"))
            assert len(raw) >= length, f"an answer's body is cut short: {raw!r}"
            body, raw = raw[:length], raw[length:]
        found.append((status, headers, body))
    return found


LINES_OVER_64_KB = b"".join(b"X-Line-%d: %s\r\n" % (i, b"a" * 4000) for i in range(17))
REFUSALS = [
    ("header section over 64 KB", GET + LINES_OVER_64_KB + b"\r\n", 431),
    (
        "trailer section over 64 KB",
        GET + b"Transfer-Encoding: chunked\r\n\r\n0\r\n" + LINES_OVER_64_KB + b"\r\n",
        431,
    ),
    ("version 2.0", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    ("version 1.2", b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505),
    ("request line over 8 KB", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ("header line over 8 KB", GET + b"X-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    ("1 MB header line", GET + b"X-Big: " + b"a" * 1_000_000 + b"\r\n\r\n", 431),
    ("whitespace before the colon", GET + b"Content-Length : 0\r\n\r\n", 400),
    ("obs-fold", GET + b"X-A: one\r\n two\r\n\r\n", 400),
    ("field name not a token", GET + b"X[a]: b\r\n\r\n", 400),
    ("NUL in a value", GET + b"X-A: a\x00b\r\n\r\n", 400),
    ("lone CR in a value", GET + b"X-A: a\rb\r\n\r\n", 400),
    ("no Host on HTTP/1.1", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two Host headers", GET + b"Host: y\r\n\r\n", 400),
    ("method not a token", b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("two spaces in the request line", b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("leading empty line", b"\r\n" + GET + b"\r\n", 400),
    ("Content-Length with a sign", GET + b"Content-Length: +2\r\n\r\nab", 400),
    ("Content-Length not a number", GET + b"Content-Length: 2a\r\n\r\nab", 400),
    ("Content-Length in Arabic digits", GET + "Content-Length: ١\r\n\r\na".encode(), 400),
    ("negative Content-Length", GET + b"Content-Length: -1\r\n\r\n", 400),
    (
        "two different Content-Lengths",
        GET + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
        400,
    ),
    ("a Content-Length list of two", GET + b"Content-Length: 2, 3\r\n\r\nabc", 400),
    (
        "Content-Length with Transfer-Encoding",
        GET + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    ("Transfer-Encoding xchunked", GET + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 501),
    (
        "Transfer-Encoding chunked, identity",
        GET + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        501,
    ),
    ("Transfer-Encoding gzip", GET + b"Transfer-Encoding: gzip\r\n\r\n", 501),
    (
        "Transfer-Encoding twice",
        GET + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        501,
    ),
    ("chunk size 0x2", GET + b"Transfer-Encoding: chunked\r\n\r\n0x2\r\nab\r\n0\r\n\r\n", 400),
    ("negative chunk size", GET + b"Transfer-Encoding: chunked\r\n\r\n-1\r\nab\r\n0\r\n\r\n", 400),
    (
        "chunk size with a space",
        GET + b"Transfer-Encoding: chunked\r\n\r\n 2\r\nab\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk not followed by CRLF",
        GET + b"Transfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
        400,
    ),
]


@pytest.fixture(scope="module")
def echo_server(tmp_path_factory):
    from tests.local_server import PYTHON_SHIM, LocalServer

    server = LocalServer(
        tmp_path_factory.mktemp("http"),
        f"exec python3 {PYTHON_SHIM}",
        {"_HANDLER": "handler.echo", "INVOKER_COUNT": "2"},
    ).start(ready=True)
    yield server
    server.stop()


@pytest.mark.parametrize(("case", "data", "status"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_each_refusal_is_a_complete_answer_then_the_connection_closes(
    echo_server, case, data, status
):
    (answer,) = answers(talk(echo_server.port, data))
    assert answer[0] == status, answer
    assert answer[1]["connection"] == "close"
    error = json.loads(answer[2])
    assert error["errorType"] and error["errorMessage"]
    assert "Traceback" not in echo_server.logs()


def test_a_json_body_nested_100000_deep_is_a_400(echo_server):
    body = b"[" * 100_000 + b"]" * 100_000
    head = b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 200000\r\n\r\n"
    ((status, _, answer),) = answers(talk(echo_server.port, head + body))
    assert (status, json.loads(answer)["errorType"]) == (400, "InvalidRequestContentException")
    assert "Traceback" not in echo_server.logs()


def test_a_repeated_equal_content_length_and_bare_lf_lines_are_accepted(echo_server):
    data = (
        b"POST / HTTP/1.1\nHost: x\nContent-Length: 2\nContent-Length: 2\nConnection: close\n\n{}"
    )
    ((status, _, body),) = answers(talk(echo_server.port, data))
    assert (status, body) == (200, b"{}")


def test_pipelined_requests_are_answered_in_order_on_one_connection(echo_server):
    one = b'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{"n":1}'
    two = b'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{"n\r\n4\r\n":2}\r\n0\r\n\r\n'
    last = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    got = answers(talk(echo_server.port, one + two + last))
    assert [(s, json.loads(b)) for s, _, b in got] == [(200, {"n": 1}), (200, {"n": 2}), (200, {})]
    assert "connection" not in got[0][1] and got[2][1]["connection"] == "close"


def test_keep_alive_by_version_and_connection_header(echo_server):
    with requests.Session() as session:
        first = session.post(echo_server.url, json={"a": 1})
        second = session.post(echo_server.url, json={"a": 2})
    assert (first.json(), second.json()) == ({"a": 1}, {"a": 2})
    assert "connection" not in {k.lower() for k in second.headers}
    http10 = answers(talk(echo_server.port, b"POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}"))
    assert http10[0][1]["connection"] == "close"


def test_expect_100_continue(echo_server):
    with socket.create_connection(("127.0.0.1", echo_server.port), timeout=10) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"{}")
        assert sock.recv(1000).startswith(b"HTTP/1.1 200 OK\r\n")
    too_big = (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\nExpect: 100-continue\r\n\r\n"
    )
    ((status, headers, body),) = answers(talk(echo_server.port, too_big))
    assert (status, headers["connection"]) == (413, "close")
    assert json.loads(body)["errorType"] == "RequestTooLargeException"


def test_chunked_request_with_trailers(echo_server):
    data = (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b'2;ext=1\r\n{"\r\n5\r\na":1}\r\n0\r\nX-Trailer: yes\r\n\r\n'
    )
    ((status, _, body),) = answers(talk(echo_server.port, data))
    assert (status, json.loads(body)) == (200, {"a": 1})


def test_head_gets_the_headers_but_no_body(echo_server):
    raw = talk(
        echo_server.port, b"HEAD /_klr/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: 16" in head
    assert rest == b""


@pytest.fixture
def gateway(start_server):
    """An API Gateway front door whose runtime is the test: it answers each /next itself."""
    return start_server(
        bootstrap=SLEEPER, ready=False, EVENT_TYPE="API_GATEWAY", AWS_LAMBDA_FUNCTION_TIMEOUT="30"
    )


def reply(server, result: bytes, kind: str = "response") -> None:
    invocation = requests.get(server.runtime_api() + "/invocation/next", timeout=10)
    request_id = invocation.headers["Lambda-Runtime-Aws-Request-Id"]
    url = f"{server.runtime_api()}/invocation/{request_id}/{kind}"
    assert requests.post(url, data=result, timeout=10).status_code == 202


def front_door_answer(server, result: bytes, method: str = "GET") -> bytes:
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(
            talk,
            server.port,
            method.encode() + b" / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        reply(server, result)
        return pending.result(timeout=20)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-A": "a\r\nSet-Cookie: forged=1"},
        {"X-A": "a\r\n\r\nHTTP/1.1 200 OK\r\nX-Forged: 1"},
        {"Content-Length ": "0"},
        {"X-Snowman": "☃"},
        {"X-A": "a\x01b"},
    ],
    ids=["crlf-set-cookie", "crlf-second-response", "name-with-space", "non-latin-1", "control"],
)
def test_a_result_header_that_would_split_the_answer_is_a_502(gateway, headers):
    result = json.dumps({"statusCode": 200, "headers": headers, "body": "ok"}).encode()
    ((status, got, body),) = answers(front_door_answer(gateway, result))
    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})
    assert "set-cookie" not in got and "x-forged" not in got
    assert "Malformed Lambda proxy response" in gateway.wait_for_log("Malformed Lambda proxy")


@pytest.mark.parametrize("status", [204, 304])
def test_204_and_304_carry_no_body(gateway, status):
    raw = front_door_answer(gateway, json.dumps({"statusCode": status, "body": "a body"}).encode())
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d" % status) and rest == b""
    assert b"Content-Length" not in head


def test_a_result_nested_too_deep_is_a_502(gateway):
    ((status, _, _),) = answers(front_door_answer(gateway, b"[" * 100_000 + b"]" * 100_000))
    assert status == 502


@pytest.fixture
def runtime(start_server):
    """A raw-mode front door whose runtime is the test."""
    return start_server(
        bootstrap=SLEEPER, ready=False, AWS_LAMBDA_FUNCTION_TIMEOUT="30", KLR_SHUTDOWN_TIMEOUT="0.5"
    )


def test_client_context_reaches_the_runtime_as_compact_json(runtime):
    context = base64.b64encode(b'{"custom":\r\n {"a": "b\\r\\nc"}}').decode()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(
            runtime.invoke,
            {},
            path="/2015-03-31/functions/function/invocations",
            headers={"X-Amz-Client-Context": context},
        )
        invocation = requests.get(runtime.runtime_api() + "/invocation/next", timeout=10)
        assert invocation.headers["Lambda-Runtime-Client-Context"] == '{"custom":{"a":"b\\r\\nc"}}'
        request_id = invocation.headers["Lambda-Runtime-Aws-Request-Id"]
        requests.post(f"{runtime.runtime_api()}/invocation/{request_id}/response", data=b"{}")


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Amzn-Trace-Id": "Root=1\x01"},
        {"X-Amz-Tenant-Id": "t" * 300},
        {"X-Amz-Client-Context": base64.b64encode(b"[1]").decode()},
        {"X-Amz-Client-Context": base64.b64encode(b"{" * 3000).decode()[:3583]},
        {"X-Amz-Client-Context": "a" * 4000},
    ],
    ids=["trace-control", "tenant-too-long", "context-not-object", "context-bad", "context-big"],
)
def test_a_bad_value_for_the_runtime_headers_is_a_400_before_any_runtime_sees_it(runtime, headers):
    answer = runtime.invoke(
        {}, path="/2015-03-31/functions/function/invocations", headers=headers, timeout=10
    )
    assert answer.status_code == 400, answer.text
    assert "START RequestId" not in runtime.logs()


def test_a_lone_cr_in_the_trace_id_is_refused_by_the_parser(runtime):
    data = (
        b"POST / HTTP/1.1\r\nHost: x\r\nX-Amzn-Trace-Id: Root=1\rX\r\nContent-Length: 2\r\n\r\n{}"
    )
    ((status, _, _),) = answers(talk(runtime.port, data))
    assert status == 400


def test_a_second_waiting_next_is_refused_and_loses_nothing(runtime):
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(requests.get, runtime.runtime_api() + "/invocation/next", timeout=20)
        until("the first /next to arrive", 10, lambda: runtime.ready_state()["readyInvokers"])
        second = requests.get(runtime.runtime_api() + "/invocation/next", timeout=10)
        assert second.status_code == 403
        assert second.json()["errorType"] == "InvalidStateTransition"
        pending = pool.submit(runtime.invoke, {"lost": "no"})
        invocation = first.result(timeout=20)
        assert invocation.json() == {"lost": "no"}
        request_id = invocation.headers["Lambda-Runtime-Aws-Request-Id"]
        requests.post(f"{runtime.runtime_api()}/invocation/{request_id}/response", data=b'"ok"')
        assert pending.result(timeout=20).json() == "ok"


def test_a_next_whose_client_went_away_gives_its_invocation_back(runtime):
    port = int(runtime.runtime_api().split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as gone:
        gone.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
        until("the /next to arrive", 10, lambda: runtime.ready_state()["readyInvokers"])
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(runtime.invoke, {"given": "back"})
        invocation = requests.get(runtime.runtime_api() + "/invocation/next", timeout=10)
        assert invocation.json() == {"given": "back"}
        request_id = invocation.headers["Lambda-Runtime-Aws-Request-Id"]
        requests.post(f"{runtime.runtime_api()}/invocation/{request_id}/response", data=b"1")
        assert pending.result(timeout=20).json() == 1


def test_a_malformed_chunked_result_fails_its_invocation_at_once(runtime):
    port = int(runtime.runtime_api().split(":")[2].split("/")[0])
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(runtime.invoke, {})
        invocation = requests.get(runtime.runtime_api() + "/invocation/next", timeout=10)
        request_id = invocation.headers["Lambda-Runtime-Aws-Request-Id"].encode()
        started = time.monotonic()
        raw = talk(
            port,
            b"POST /2018-06-01/runtime/invocation/" + request_id + b"/response HTTP/1.1\r\n"
            b"Host: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
        )
        assert answers(raw)[0][0] == 400
        result = pending.result(timeout=20)
        assert time.monotonic() - started < 5
        assert result.status_code == 502
        assert result.json()["errorType"] == "Runtime.MalformedResponse"


def test_a_streamed_result_reaches_the_caller_chunk_by_chunk(runtime):
    """The runtime sends its second chunk only once the caller has read the first."""
    port = int(runtime.runtime_api().split(":")[2].split("/")[0])
    with ThreadPoolExecutor(1) as pool:
        caller = pool.submit(requests.post, runtime.url, json={}, stream=True, timeout=20)
        invocation = requests.get(runtime.runtime_api() + "/invocation/next", timeout=10)
        request_id = invocation.headers["Lambda-Runtime-Aws-Request-Id"].encode()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as stream:
            stream.sendall(
                b"POST /2018-06-01/runtime/invocation/" + request_id + b"/response HTTP/1.1\r\n"
                b"Host: x\r\nLambda-Runtime-Function-Response-Mode: streaming\r\n"
                b"Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
                b"Trailer: Lambda-Runtime-Function-Error-Type\r\n\r\n6\r\nfirst \r\n"
            )
            answer = caller.result(timeout=20)
            assert answer.headers["Transfer-Encoding"] == "chunked"
            chunks = answer.iter_content(chunk_size=None)
            assert next(chunks) == b"first "
            stream.sendall(b"6\r\nsecond\r\n0\r\n\r\n")
            assert b"".join(chunks) == b"second"
            assert stream.recv(1000).startswith(b"HTTP/1.1 202")


def test_a_streamed_result_passes_6_mb_and_is_cut_off_at_lambdas_streaming_limit(runtime):
    """Checklist 21: a streamed result is not held to the 6 MB buffer. Past Lambda's streaming
    limit (200 MiB) the caller gets the bytes up to it, then the error in its trailers; the
    runtime gets 413."""
    port = int(runtime.runtime_api().split(":")[2].split("/")[0])
    limit, chunk = MAX_STREAMED_RESPONSE_BYTES, b"x" * (1 << 20)
    with socket.create_connection(("127.0.0.1", runtime.port), timeout=30) as caller:
        client = h11.Connection(h11.CLIENT)
        head = h11.Request(
            method="POST", target="/", headers=[("Host", "x"), ("Content-Length", "2")]
        )
        caller.sendall(client.send(head) + client.send(h11.Data(data=b"{}")))
        caller.sendall(client.send(h11.EndOfMessage()))
        invocation = requests.get(runtime.runtime_api() + "/invocation/next", timeout=10)
        request_id = invocation.headers["Lambda-Runtime-Aws-Request-Id"].encode()

        def stream_past_the_limit() -> bytes:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as stream:
                stream.sendall(
                    b"POST /2018-06-01/runtime/invocation/" + request_id + b"/response HTTP/1.1\r\n"
                    b"Host: x\r\nLambda-Runtime-Function-Response-Mode: streaming\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n"
                )
                with contextlib.suppress(OSError):  # the server stops reading at the limit
                    for _ in range(limit // len(chunk) + 2):
                        stream.sendall(b"100000\r\n" + chunk + b"\r\n")
                return stream.recv(1000)

        with ThreadPoolExecutor(1) as pool:
            runtime_answer = pool.submit(stream_past_the_limit)
            received, event = 0, None
            while not isinstance(event, h11.EndOfMessage):
                event = client.next_event()
                if event is h11.NEED_DATA:
                    client.receive_data(caller.recv(1 << 20))
                elif isinstance(event, h11.Data):
                    received += len(event.data)
            assert runtime_answer.result(timeout=60).startswith(b"HTTP/1.1 413")
    assert received == limit
    trailers = dict(event.headers)
    assert trailers[b"lambda-runtime-function-error-type"] == b"Function.ResponseSizeTooLarge"
    body = json.loads(base64.b64decode(trailers[b"lambda-runtime-function-error-body"]))
    assert f"({limit} bytes)" in body["errorMessage"]


def test_slow_and_idle_clients_are_cut_off_and_the_cap_holds(start_server):
    server = start_server(
        KLR_HEADER_TIMEOUT="0.5",
        KLR_IDLE_TIMEOUT="0.5",
        KLR_BODY_TIMEOUT="0.5",
        KLR_MAX_CONNECTIONS="3",
    )
    started = time.monotonic()
    ((status, _, _),) = answers(talk(server.port, b"POST / HTTP/1.1\r\nHost: x\r\n"))
    assert status == 408  # half a head
    ((status, _, _),) = answers(
        talk(server.port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{")
    )
    assert status == 408  # half a body
    assert talk(server.port, b"") == b""  # nothing sent: closed without an answer
    assert time.monotonic() - started < 8
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
    try:
        ((status, headers, _),) = answers(talk(server.port, GET + b"\r\n"))
        assert (status, headers["connection"]) == (503, "close")
    finally:
        for sock in idle:
            sock.close()
    until("a connection to be accepted again", 10, lambda: _echoes(server))


def _echoes(server) -> bool:
    try:
        return requests.post(server.url, json={"after": 1}, timeout=10).json() == {"after": 1}
    except requests.ConnectionError:
        return False


def test_a_streamed_result_for_an_unknown_invocation_is_a_400(runtime):
    port = int(runtime.runtime_api().split(":")[2].split("/")[0])
    raw = talk(
        port,
        b"POST /2018-06-01/runtime/invocation/no-such-id/response HTTP/1.1\r\nHost: x\r\n"
        b"Lambda-Runtime-Function-Response-Mode: streaming\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nab\r\n",
    )
    ((status, headers, body),) = answers(raw)
    assert (status, json.loads(body)["errorType"]) == (400, "InvalidRequestID")
    assert headers["connection"] == "close"
