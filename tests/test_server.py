"""The front door and the invoker pool, with the real Python shim as the bootstrap."""

from __future__ import annotations

import base64
import json
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
    }
    assert requests.get(server.url + "/_klr/other", timeout=5).status_code == 404
    assert "START" not in server.logs()


def test_not_ready_until_a_bootstrap_asks_for_work(start_server):
    server = start_server(bootstrap="exec sleep 600", ready=False, KLR_SHUTDOWN_TIMEOUT="0")
    assert requests.get(server.url + "/_klr/ready", timeout=5).status_code == 503


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
