"""The front door and the invoker pool, with the real Python shim as the bootstrap."""

from __future__ import annotations

import base64
import json
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from images.wait import until
from tests.local_server import PYTHON_SHIM


def test_raw_mode_echoes_and_an_empty_body_is_an_empty_object(start_server):
    server = start_server()
    form = {"Content-Type": "application/x-www-form-urlencoded"}  # what curl -d sends
    result = server.invoke(data='{"name": "Foo"}', headers=form)
    assert (result.status_code, result.json()) == (200, {"name": "Foo"})
    assert result.headers["Content-Type"] == "application/json"
    assert server.invoke().json() == {}


def test_non_json_body_is_refused_with_advice(start_server):
    result = start_server().invoke(data="name=Foo")
    assert result.status_code == 400
    assert result.json()["errorType"] == "InvalidRequestContentException"
    assert "curl -d" in result.json()["errorMessage"]


def test_request_over_6_mb_gets_413_and_the_server_goes_on(start_server):
    """Checklist 70: a body over 6 MB is a 413 RequestTooLargeException."""
    server = start_server()
    result = server.invoke(data=json.dumps("x" * (6 * 1024 * 1024)))
    assert result.status_code == 413
    assert result.json()["errorType"] == "RequestTooLargeException"
    assert server.invoke({"still": "serving"}).json() == {"still": "serving"}


def test_timeout_answers_504_and_replaces_the_bootstrap(start_server):
    server = start_server("handler.sleep", AWS_LAMBDA_FUNCTION_TIMEOUT="1")
    started = time.monotonic()
    result = server.invoke({"seconds": 10})
    assert time.monotonic() - started < 5
    assert result.status_code == 504
    assert result.json()["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in result.json()["errorMessage"]
    assert server.invoke({"seconds": 0}).json() == {"slept": 0}
    assert "Task timed out after 1.00 seconds" in server.logs()


def test_seed_function_ttl_is_accepted(start_server):
    server = start_server("handler.sleep", FUNCTION_TTL="1s")
    assert server.invoke({"seconds": 10}).status_code == 504


def test_crash_fails_only_its_own_invocation(start_server):
    server = start_server("handler.crash")
    result = server.invoke({})
    assert result.status_code == 502
    assert result.json()["errorType"] == "Runtime.ExitError"
    assert "Runtime exited with error: exit status 3" in result.json()["errorMessage"]
    assert server.invoke({}).json()["errorType"] == "Runtime.ExitError"  # a new process ran it


def test_saturation_answers_429(start_server):
    """Checklist 70: saturation is a 429."""
    server = start_server("handler.sleep", KLR_QUEUE_SIZE="0")
    with ThreadPoolExecutor(1) as pool:
        busy = pool.submit(server.invoke, {"seconds": 1})
        server.wait_for_log("START RequestId")  # the one invoker is busy
        refused = server.invoke({"seconds": 0})
        assert refused.status_code == 429
        assert refused.json()["errorType"] == "TooManyRequestsException"
        assert busy.result().status_code == 200


def test_queued_requests_wait_for_a_free_invoker(start_server):
    server = start_server("handler.sleep")
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: server.invoke({"seconds": 0.2}), range(3)))
    assert [r.status_code for r in results] == [200, 200, 200]


def test_invoke_api_reports_function_errors_in_a_header(start_server):
    """Checklists 66 and 70: X-Amz-Function-Error and X-Amz-Executed-Version."""
    server = start_server("handler.fail")
    result = server.invoke({"a": 1}, path="/2015-03-31/functions/function/invocations")
    assert result.status_code == 200
    assert result.headers["X-Amz-Function-Error"] == "Unhandled"
    assert result.headers["X-Amz-Executed-Version"] == "$LATEST"
    assert result.json()["errorType"] == "ValueError"


def test_invoke_api_modes_and_client_context(start_server):
    server = start_server("handler.context", AWS_LAMBDA_FUNCTION_NAME="orders")
    route = "/2015-03-31/functions/{}/invocations"
    context = base64.b64encode(json.dumps({"custom": {"tenant": "t1"}}).encode()).decode()
    result = server.invoke(
        {}, path=route.format("orders"), headers={"X-Amz-Client-Context": context}
    )
    assert result.status_code == 200 and "X-Amz-Function-Error" not in result.headers
    assert result.json()["clientContext"] == {"tenant": "t1"}
    assert result.json()["functionName"] == "orders"

    assert server.invoke({}, path=route.format("other")).status_code == 404
    dry = server.invoke(
        {}, path=route.format("orders"), headers={"X-Amz-Invocation-Type": "DryRun"}
    )
    assert dry.status_code == 204
    queued = server.invoke(
        {}, path=route.format("orders"), headers={"X-Amz-Invocation-Type": "Event"}
    )
    assert queued.status_code == 202
    bad = server.invoke({}, path=route.format("orders"), headers={"X-Amz-Client-Context": "%%%"})
    assert bad.status_code == 400


def test_api_gateway_mode_maps_request_and_response(start_server):
    """Checklists 72 and 73: a v1 event from the request; headers and multiValueHeaders of the
    result merged into the answer."""
    server = start_server("handler.http", EVENT_TYPE="API_GATEWAY")
    result = requests.put(
        server.url + "/items/7?color=red&color=blue",
        data="héllo",
        headers={"X-Test": "yes"},
        timeout=10,
    )
    assert result.status_code == 201
    assert result.headers["X-Single"] == "one"
    assert result.headers["X-Multi"] == "a, b"
    assert result.json() == {
        "method": "PUT",
        "path": "/items/7",
        "query": {"color": "blue"},
        "header": "yes",
        "body": "héllo",
    }


def test_api_gateway_mode_hides_function_errors_behind_502(start_server):
    """Checklist 76: a function error behind API Gateway is a 502 Internal server error."""
    server = start_server("handler.fail", RESPONSE_FORMAT="API_GATEWAY")
    result = requests.get(server.url + "/", timeout=10)
    assert (result.status_code, result.json()) == (502, {"message": "Internal server error"})


def test_api_gateway_mode_rejects_a_malformed_proxy_response(start_server):
    """Checklist 73: a result without statusCode is a 502, its reason logged."""
    server = start_server("handler.echo", EVENT_TYPE="API_GATEWAY")
    result = requests.get(server.url + "/", timeout=10)
    assert (result.status_code, result.json()) == (502, {"message": "Internal server error"})
    assert "Malformed Lambda proxy response" in server.logs()


def test_health_endpoints_never_invoke_the_function(start_server):
    server = start_server()
    assert requests.get(server.url + "/_klr/health", timeout=5).json() == {"status": "ok"}
    assert requests.get(server.url + "/_klr/ready", timeout=5).json() == {
        "ready": True,
        "readyInvokers": 1,
        "invokers": 1,
        "inFlight": 0,
    }
    assert requests.get(server.url + "/_klr/other", timeout=5).status_code == 404
    assert "START" not in server.logs()


def test_not_ready_until_a_bootstrap_asks_for_work(start_server):
    server = start_server(bootstrap="exec sleep 600", ready=False, KLR_SHUTDOWN_TIMEOUT="0")
    assert requests.get(server.url + "/_klr/ready", timeout=5).status_code == 503


def test_ready_counts_the_invocations_in_flight_running_or_queued(start_server):
    server = start_server("handler.sleep")
    with ThreadPoolExecutor(2) as pool:
        calls = [pool.submit(server.invoke, {"seconds": 1}) for _ in range(2)]
        state = until(
            "two invocations in flight", 10, lambda: server.ready_state()["inFlight"] == 2
        )
        assert state and [call.result().status_code for call in calls] == [200, 200]
    assert server.ready_state()["inFlight"] == 0


def test_sigterm_drains_in_flight_work_then_exits_0(start_server):
    server = start_server("handler.sleep")
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(server.invoke, {"seconds": 1})
        server.wait_for_log("START RequestId")
        assert server.stop() == 0
        assert in_flight.result().json() == {"slept": 1}
    assert "klr: stopped" in server.logs()


def test_sigterm_while_bootstraps_wait_for_work_is_quiet(start_server):
    """Bootstraps blocked on /next are let go without a traceback in the log."""
    server = start_server(INVOKER_COUNT="2").wait_until_all_invokers_ready()
    assert server.invoke({}).status_code == 200
    assert server.stop() == 0
    assert "Traceback" not in server.logs() and "klr: stopped" in server.logs()


def test_the_first_bootstrap_starts_alone_the_others_once_it_is_up(start_server):
    """Bootstraps that start together share the CPU (JVMs): the first one gets it to itself."""
    server = start_server(
        bootstrap=f"sleep 1; exec {sys.executable} {PYTHON_SHIM}", ready=False, INVOKER_COUNT="3"
    )
    first = until("one ready bootstrap", 30, lambda: server.ready_state()["readyInvokers"] >= 1)
    assert first and server.ready_state()["readyInvokers"] == 1
    first_at = time.monotonic()
    server.wait_until_all_invokers_ready()
    assert time.monotonic() - first_at >= 0.9  # the others slept their second after it was up


def test_http_api_mode_through_the_python_shim(start_server):
    """Checklists 74, 75: the echo handler gets the 2.0 event and returns it without a
    statusCode, so the answer is a 200 application/json body of that event."""
    server = start_server("handler.echo", EVENT_TYPE="HTTP_API")
    result = requests.post(
        server.url + "/a%20b/c%2Fd?x=1&x=2",
        data=b"\xff\x00",
        headers={"Cookie": "s=1; t=2", "X-Test": "yes"},
        timeout=10,
    )
    assert result.status_code == 200
    assert result.headers["Content-Type"] == "application/json"
    event = result.json()
    assert (event["version"], event["rawPath"]) == ("2.0", "/a%20b/c%2Fd")
    assert event["rawQueryString"] == "x=1&x=2"
    assert event["queryStringParameters"] == {"x": "1,2"}
    assert event["cookies"] == ["s=1", "t=2"]
    assert event["headers"]["x-test"] == "yes"
    assert (event["body"], event["isBase64Encoded"]) == ("/wA=", True)
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"


def test_http_api_and_function_url_answer_function_errors_as_their_services(start_server):
    """Checklist 76: a function error is HTTP API's 500 and a Function URL's 502."""
    for mode, status in [("HTTP_API", 500), ("FUNCTION_URL", 502)]:
        server = start_server("handler.fail", EVENT_TYPE=mode)
        result = requests.get(server.url + "/", timeout=10)
        assert (result.status_code, result.json()) == (status, {"message": "Internal Server Error"})


# A runtime that answers each invocation with a streamed response, chunk by chunk, as its
# event's body says: {"content_type", "chunks" (text; null waits until the file `gate` exists),
# "trailers"}. The HTTP layer under test reads it; nothing here is the server's code.
STREAMER = r"""
import http.client, json, os, socket, sys, time
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
while True:
    api = http.client.HTTPConnection(host, int(port))
    api.request("GET", "/2018-06-01/runtime/invocation/next")
    answer = api.getresponse()
    request_id = answer.getheader("Lambda-Runtime-Aws-Request-Id")
    plan = json.loads(json.loads(answer.read())["body"])
    sock = socket.create_connection((host, int(port)))
    sock.sendall((
        f"POST /2018-06-01/runtime/invocation/{request_id}/response HTTP/1.1\r\n"
        f"Host: {host}\r\nLambda-Runtime-Function-Response-Mode: streaming\r\n"
        f"Content-Type: {plan['content_type']}\r\nTransfer-Encoding: chunked\r\n"
        "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n"
    ).encode())
    for chunk in plan["chunks"]:
        if chunk is None:
            deadline = time.monotonic() + 20
            while not os.path.exists(plan["gate"]) and time.monotonic() < deadline:
                time.sleep(0.02)
            continue
        data = chunk.encode("latin-1")
        sock.sendall(b"%x\r\n%b\r\n" % (len(data), data))
    trailers = "".join(f"{name}: {value}\r\n" for name, value in plan["trailers"].items())
    sock.sendall(b"0\r\n" + trailers.encode() + b"\r\n")
    sock.recv(65536)
    sock.close()
"""
PRELUDE_TYPE = "application/vnd.awslambda.http-integration-response"
NULS = "\0" * 8


def streamed_answer(server, plan: dict) -> bytes:
    """The front door's answer to a request whose body is `plan`, as bytes off the wire."""
    body = json.dumps({"trailers": {}, **plan}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%b"
            % (len(body), body)
        )
        return read_to_end(sock)


def read_to_end(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def start_streamer(start_server, tmp_path, mode: str = "HTTP_API"):
    script = tmp_path / "streamer.py"
    script.write_text(STREAMER)
    return start_server(bootstrap=f"exec {sys.executable} {script}", EVENT_TYPE=mode)


def test_streaming_prelude_sets_status_headers_and_cookies_and_the_body_flows(
    start_server, tmp_path
):
    """Checklists 22, 79: the prelude's status, headers and cookies make the answer's head; the
    body after the eight NUL bytes reaches the caller before the function has finished."""
    server = start_streamer(start_server, tmp_path)
    gate = tmp_path / "gate"
    prelude = json.dumps(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "text/plain", "X-Custom": "yes"},
            "cookies": ["a=1; Path=/", "b=2"],
        }
    )
    plan = {
        "content_type": PRELUDE_TYPE,
        "gate": str(gate),
        "chunks": [prelude[:10], prelude[10:] + NULS[:3], NULS[3:] + "first|", None, "last"],
    }
    body = json.dumps({"trailers": {}, **plan})
    with requests.post(server.url + "/", data=body, stream=True, timeout=20) as result:
        assert result.status_code == 201
        assert result.headers["Content-Type"] == "text/plain"
        assert result.headers["X-Custom"] == "yes"
        assert result.raw.headers.getlist("Set-Cookie") == ["a=1; Path=/", "b=2"]
        assert result.headers["Transfer-Encoding"] == "chunked"
        pieces = result.iter_content(chunk_size=None)
        assert next(pieces) == b"first|"  # while the function waits for the gate
        gate.touch()
        assert b"".join(pieces) == b"last"


def test_streaming_prelude_error_trailers_and_broken_preludes(start_server, tmp_path):
    """Checklists 22, 79: an error reported in the trailers reaches the caller in its trailers
    after the body; a prelude that is not JSON, never ends or breaks a header rule is the
    service's error answer; another streamed type is the body as it is."""
    server = start_streamer(start_server, tmp_path)
    failed = streamed_answer(
        server,
        {
            "content_type": PRELUDE_TYPE,
            "chunks": ['{"statusCode": 200}' + NULS + "partial"],
            "trailers": {"Lambda-Runtime-Function-Error-Type": "Function.Boom"},
        },
    )
    head, _, rest = failed.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert rest.startswith(b"7\r\npartial\r\n0\r\n")
    assert b"Lambda-Runtime-Function-Error-Type: Function.Boom\r\n" in rest
    for chunks in (
        ["not json" + NULS + "body"],
        ["{" + " " * 70000],  # no end within 64 KB
        ['{"statusCode": 200, "headers": {"X-Evil": "a\\r\\nSet-Cookie: b"}}' + NULS],
        ['{"statusCode": 200}'],  # ends before its eight NUL bytes
    ):
        refused = streamed_answer(server, {"content_type": PRELUDE_TYPE, "chunks": chunks})
        assert refused.startswith(b"HTTP/1.1 500 "), refused[:200]
        assert refused.endswith(b'{"message": "Internal Server Error"}')
    assert "prelude" in server.logs()
    plain = streamed_answer(server, {"content_type": "text/csv", "chunks": ["a,b\n", "1,2\n"]})
    head, _, rest = plain.partition(b"\r\n\r\n")
    assert b"Content-Type: text/csv" in head
    assert rest.startswith(b"4\r\na,b\n\r\n4\r\n1,2\n\r\n0\r\n")


def test_alb_mode_through_the_python_shim(start_server, tmp_path):
    """Checklist 78: single-value events and `headers` by default; with
    KLR_ALB_MULTI_VALUE_HEADERS=true the result's multiValueHeaders; the query string as sent;
    a body over 1 MB refused 413; a result that is no target-group response a 502."""
    single = start_server("handler.http", EVENT_TYPE="ALB")
    result = requests.put(single.url + "/items/7?color=red&color=bl%20ue", data="héllo", timeout=10)
    assert result.status_code == 201
    assert (result.headers["X-Single"], result.headers.get("X-Multi")) == ("one", None)
    reported = result.json()
    assert (reported["method"], reported["path"]) == ("PUT", "/items/7")
    assert (reported["query"], reported["body"]) == ({"color": "bl%20ue"}, "héllo")
    big = requests.post(single.url + "/", data=b"x" * (1024 * 1024 + 1), timeout=10)
    assert big.status_code == 413
    multi = start_replier(start_server, tmp_path, KLR_ALB_MULTI_VALUE_HEADERS="true")
    result = requests.post(
        multi.url + "/?k=1&k=2",
        json={"statusCode": 200, "multiValueHeaders": {"X-Multi": ["a", "b"]}, "body": "ok"},
        headers={"X-Twice": "one"},
        timeout=10,
    )
    assert (result.status_code, result.headers["X-Multi"], result.text) == (200, "a, b", "ok")
    event = json.loads(multi.logs().split("EVENT ", 1)[1].splitlines()[0])
    assert event["multiValueQueryStringParameters"] == {"k": ["1", "2"]}
    assert event["multiValueHeaders"]["x-twice"] == ["one"]
    assert "headers" not in event
    malformed = start_server("handler.echo", EVENT_TYPE="ALB")
    result = requests.get(malformed.url + "/", timeout=10)
    assert result.status_code == 502 and "502 Bad Gateway" in result.text
    assert "statusCode must be an integer" in malformed.logs()


# A runtime whose function returns the request's body as its result, and logs the event.
REPLIER = r"""
import http.client, json, os
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
while True:
    api = http.client.HTTPConnection(host, int(port))
    api.request("GET", "/2018-06-01/runtime/invocation/next")
    answer = api.getresponse()
    request_id = answer.getheader("Lambda-Runtime-Aws-Request-Id")
    event = answer.read()
    print("EVENT " + event.decode(), flush=True)
    api.request("POST", f"/2018-06-01/runtime/invocation/{request_id}/response",
                json.loads(event)["body"].encode())
    api.getresponse().read()
"""


def start_replier(start_server, folder, **env):
    script = folder / "replier.py"
    script.write_text(REPLIER)
    return start_server(bootstrap=f"exec {sys.executable} {script}", EVENT_TYPE="ALB", **env)


def test_function_url_honours_the_streaming_prelude_and_answers_a_broken_one_502(
    start_server, tmp_path
):
    """Checklists 22, 79: a streaming Function URL takes status, headers and cookies from the
    prelude; a prelude that is not JSON is a Function URL's 502."""
    server = start_streamer(start_server, tmp_path, mode="FUNCTION_URL")
    prelude = json.dumps({"statusCode": 418, "headers": {"X-Tea": "yes"}, "cookies": ["c=1"]})
    answer = streamed_answer(
        server, {"content_type": PRELUDE_TYPE, "chunks": [prelude + NULS, "short and stout"]}
    )
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 418 ")
    assert b"\r\nX-Tea: yes\r\n" in head and b"\r\nSet-Cookie: c=1\r\n" in head
    assert b"short and stout" in rest and NULS.encode() not in rest
    broken = streamed_answer(server, {"content_type": PRELUDE_TYPE, "chunks": ["{oops" + NULS]})
    assert broken.startswith(b"HTTP/1.1 502 ")
    assert broken.endswith(b'{"message": "Internal Server Error"}')
