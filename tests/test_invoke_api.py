"""Lambda's Invoke API beyond the plain call: InvokeWithResponseStream through boto3, the real
client (botocore parses the event stream and checks every CRC), the client context's size
limit, and asynchronous `Event` invocations bounded by the queue, their failures logged."""

from __future__ import annotations

import base64
import json
import sys

import boto3
import botocore.config
import pytest
import requests
from botocore.exceptions import ClientError

from klr.config import MAX_STREAMED_RESPONSE_BYTES
from tests.local_server import LocalServer

INVOKE = "/2015-03-31/functions/function/invocations"
STREAM = "/2021-11-15/functions/function/response-streaming-invocations"
# What a boto3 call may wait for a server on this machine; a test that waits for longer has
# lost an answer.
READ_SECONDS = 30

# A runtime that streams its result as Lambda's Node.js runtime does (chunked, streaming
# response mode, errors in trailers). The event says what to do, step by step:
# {"send": text}, {"bytes": n} (n bytes in 64 KB chunks), {"wait": name} (until the test
# creates $SIGNALS/name), then how to end: "ok", "trailers" (an error), "exit", "hang".
STREAMING_RUNTIME = r"""
import base64, http.client, json, os, time

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
SIGNALS = os.environ["SIGNALS"]

while True:
    api = http.client.HTTPConnection(API)
    api.request("GET", "/2018-06-01/runtime/invocation/next")
    answer = api.getresponse()
    request_id = answer.getheader("Lambda-Runtime-Aws-Request-Id")
    event = json.loads(answer.read())
    api.putrequest("POST", "/2018-06-01/runtime/invocation/%s/response" % request_id)
    api.putheader("Lambda-Runtime-Function-Response-Mode", "streaming")
    api.putheader("Transfer-Encoding", "chunked")
    api.putheader("Content-Type", "text/plain")
    api.putheader(
        "Trailer", "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body"
    )
    api.endheaders()

    def send(data):
        api.send(b"%x\r\n%s\r\n" % (len(data), data))

    for step in event["steps"]:
        if "send" in step:
            send(step["send"].encode())
        elif "bytes" in step:
            left = step["bytes"]
            while left:
                send(b"x" * min(left, 65536))
                left -= min(left, 65536)
        else:
            deadline = time.time() + 60
            while not os.path.exists(os.path.join(SIGNALS, step["wait"])):
                assert time.time() < deadline, "no signal " + step["wait"]
                time.sleep(0.01)
    if event["end"] == "exit":
        os._exit(3)
    if event["end"] == "hang":
        time.sleep(600)
    trailers = b""
    if event["end"] == "trailers":
        error = {"errorType": "BrokenPipeline", "errorMessage": "the third part failed"}
        trailers = (
            b"Lambda-Runtime-Function-Error-Type: Function.BrokenPipeline\r\n"
            b"Lambda-Runtime-Function-Error-Body: %s\r\n"
            % base64.b64encode(json.dumps(error).encode())
        )
    api.send(b"0\r\n" + trailers + b"\r\n")
    assert api.getresponse().status == 202
    api.close()
"""


def lambda_client(server: LocalServer):
    """boto3's Lambda client, pointed at the server, with dummy credentials and no retries."""
    return boto3.client(
        "lambda",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=botocore.config.Config(
            connect_timeout=5, read_timeout=READ_SECONDS, retries={"total_max_attempts": 1}
        ),
    )


def stream_events(server: LocalServer, event: object, **options) -> tuple[dict, list[dict]]:
    """invoke_with_response_stream: the answer's fields and every event of its stream."""
    answer = lambda_client(server).invoke_with_response_stream(
        FunctionName="function", Payload=json.dumps(event), **options
    )
    return answer, list(answer["EventStream"])


def payload(events: list[dict]) -> bytes:
    return b"".join(e["PayloadChunk"]["Payload"] for e in events if "PayloadChunk" in e)


@pytest.fixture
def streaming(start_server, tmp_path):
    """A server whose runtime streams (STREAMING_RUNTIME); `signals` is the folder it watches."""
    script = tmp_path / "streaming_runtime.py"
    script.write_text(STREAMING_RUNTIME)
    signals = tmp_path / "signals"
    signals.mkdir()

    def start(**env: str) -> LocalServer:
        server = start_server(
            bootstrap=f"exec {sys.executable} {script}", SIGNALS=str(signals), **env
        )
        server.signals = signals
        return server

    return start


def test_a_whole_result_is_one_payload_chunk_then_invoke_complete(start_server):
    """checklist 71: InvokeWithResponseStream, as boto3 calls it, for a function that answers
    in one piece; Lambda's response headers."""
    server = start_server("handler.echo")
    answer, events = stream_events(server, {"name": "Foo", "text": "héllo ☃"})
    assert answer["StatusCode"] == 200
    assert answer["ExecutedVersion"] == "$LATEST"
    assert answer["ResponseStreamContentType"] == "application/vnd.amazon.eventstream"
    assert answer["ResponseMetadata"]["RequestId"] in server.wait_for_log("END RequestId")
    assert len(events) == 2 and "PayloadChunk" in events[0]
    assert json.loads(payload(events)) == {"name": "Foo", "text": "héllo ☃"}
    assert events[1] == {"InvokeComplete": {}}


def test_log_type_tail_puts_the_invocations_log_in_invoke_complete(start_server):
    """checklists 68 and 71: LogType=Tail on the stream route: InvokeComplete's LogResult is
    the base64 tail of that invocation's own log."""
    server = start_server("handler.log")
    answer, events = stream_events(server, {"marker": "streamed-tail"}, LogType="Tail")
    request_id = answer["ResponseMetadata"]["RequestId"]
    log = base64.b64decode(events[-1]["InvokeComplete"]["LogResult"]).decode()
    assert f"START RequestId: {request_id}" in log
    assert "log to stdout: streamed-tail" in log and "log to stderr: streamed-tail" in log
    _, untailed = stream_events(server, {"marker": "no-tail"})
    assert "LogResult" not in untailed[-1]["InvokeComplete"]


@pytest.mark.parametrize(
    "handler, env, event, error_code, details",
    [
        ("handler.fail", {}, {"id": 1}, "ValueError", 'something went wrong: {"id": 1}'),
        (
            "handler.sleep",
            {"AWS_LAMBDA_FUNCTION_TIMEOUT": "1"},
            {"seconds": 10},
            "Sandbox.Timedout",
            "Task timed out after 1.00 seconds",
        ),
        ("handler.crash", {}, {}, "Runtime.ExitError", "Runtime exited with error: exit status 3"),
    ],
    ids=["function-error", "timeout", "runtime-exit"],
)
def test_failures_end_the_stream_with_their_error_code(
    start_server, handler, env, event, error_code, details
):
    """checklist 71: function errors, timeouts and runtime exits are InvokeComplete's ErrorCode
    and ErrorDetails; the HTTP answer is still 200 and the stream ends cleanly."""
    server = start_server(handler, **env)
    answer, events = stream_events(server, event)
    assert answer["StatusCode"] == 200
    (complete,) = events
    assert complete["InvokeComplete"]["ErrorCode"] == error_code
    assert details in complete["InvokeComplete"]["ErrorDetails"]


def test_the_first_chunk_reaches_boto3_before_the_runtime_has_finished(streaming):
    """checklist 71, 21: a streamed result is relayed as it arrives: boto3 has the first
    PayloadChunk while the runtime still waits for the test's signal to send the rest."""
    server = streaming()
    answer = lambda_client(server).invoke_with_response_stream(
        FunctionName="function",
        Payload=json.dumps(
            {"steps": [{"send": "first "}, {"wait": "go"}, {"send": "second"}], "end": "ok"}
        ),
    )
    events = iter(answer["EventStream"])
    assert next(events) == {"PayloadChunk": {"Payload": b"first "}}
    assert "END RequestId" not in server.logs()  # the invocation is still running
    (server.signals / "go").touch()
    rest = list(events)
    assert payload(rest) == b"second"
    assert rest[-1] == {"InvokeComplete": {}}


def test_a_stream_larger_than_the_6_mb_buffer_arrives_whole(streaming):
    """checklist 71, 21: streamed results are not held to the 6 MB of a buffered one."""
    size = 8 * 1024 * 1024
    _, events = stream_events(streaming(), {"steps": [{"bytes": size}], "end": "ok"})
    assert payload(events) == b"x" * size
    assert events[-1] == {"InvokeComplete": {}}


@pytest.mark.parametrize(
    "end, env, error_code, details",
    [
        ("trailers", {}, "BrokenPipeline", "the third part failed"),
        ("exit", {}, "Runtime.ExitError", "exit status 3"),
        ("hang", {"AWS_LAMBDA_FUNCTION_TIMEOUT": "2"}, "Sandbox.Timedout", "after 2.00 seconds"),
    ],
    ids=["error-trailers", "runtime-exit", "timeout"],
)
def test_a_stream_cut_short_ends_with_invoke_complete_and_its_error(
    streaming, end, env, error_code, details
):
    """checklist 71, 12: what was sent arrives, then InvokeComplete names the error that ended
    the stream: the runtime's error trailers, its exit mid-stream, or the function's timeout."""
    server = streaming(**env)
    answer, events = stream_events(server, {"steps": [{"send": "partial"}], "end": end})
    assert answer["StatusCode"] == 200
    assert payload(events) == b"partial"
    complete = events[-1]["InvokeComplete"]
    assert complete["ErrorCode"] == error_code
    assert details in complete["ErrorDetails"]
    # The runtime (a new one, after an exit or a timeout) serves the next request.
    _, events = stream_events(server, {"steps": [{"send": "again"}], "end": "ok"})
    assert payload(events) == b"again"


def test_a_stream_past_lambdas_streaming_limit_is_cut_off_with_an_error(streaming):
    """checklist 71: a streamed result stops at Lambda's 200 MB; InvokeComplete says why. (Read
    as raw event-stream bytes here: 200 MB through boto3 takes too long on a busy machine.)"""
    server = streaming()
    event = {"steps": [{"bytes": MAX_STREAMED_RESPONSE_BYTES + 1024 * 1024}], "end": "ok"}
    with requests.post(server.url + STREAM, json=event, stream=True, timeout=60) as answer:
        assert answer.status_code == 200
        received, tail = 0, b""
        for piece in answer.iter_content(1024 * 1024):
            received += len(piece)
            tail = (tail + piece)[-4096:]
    assert MAX_STREAMED_RESPONSE_BYTES < received < MAX_STREAMED_RESPONSE_BYTES * 1.01
    assert b"InvokeComplete" in tail and b"Function.ResponseSizeTooLarge" in tail
    _, events = stream_events(server, {"steps": [{"send": "small"}], "end": "ok"})
    assert payload(events) == b"small"


def test_the_stream_route_checks_what_the_invoke_route_checks(start_server):
    """checklist 71, 65, 67: the function's name, the invocation types Lambda allows for a
    stream (RequestResponse, DryRun; Event is refused), POST only, JSON bodies."""
    server = start_server("handler.echo", AWS_LAMBDA_FUNCTION_NAME="orders")
    client = lambda_client(server)
    dry = client.invoke_with_response_stream(FunctionName="orders", InvocationType="DryRun")
    assert dry["StatusCode"] == 204
    arn = "arn:aws:lambda:us-east-1:012345678912:function:orders"
    answer = client.invoke_with_response_stream(FunctionName=arn, Payload=b"[1]")
    assert payload(list(answer["EventStream"])) == b"[1]"
    with pytest.raises(ClientError) as missing:
        client.invoke_with_response_stream(FunctionName="other", Payload=b"{}")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    route = "/2021-11-15/functions/orders/response-streaming-invocations"
    event = requests.post(
        server.url + route, data="{}", headers={"X-Amz-Invocation-Type": "Event"}, timeout=10
    )
    assert event.status_code == 400
    assert event.json()["errorType"] == "InvalidParameterValueException"
    assert requests.get(server.url + route, timeout=10).status_code == 405
    assert requests.post(server.url + route, data="name=Foo", timeout=10).status_code == 400
    assert server.logs().count("START RequestId") == 1  # only the call by ARN ran


def test_a_client_context_over_3583_bytes_is_refused(start_server):
    """checklist 69: X-Amz-Client-Context is at most 3,583 bytes of base64; a valid context of
    3,580 is passed on, a valid one of 3,584 refused with 400 on both Invoke routes."""
    server = start_server("handler.context")

    def context_of(length: int) -> str:
        padding = "x" * (length // 4 * 3 - len('{"custom":{"pad":""}}'))
        document = json.dumps({"custom": {"pad": padding}}, separators=(",", ":"))
        encoded = base64.b64encode(document.encode()).decode()
        assert len(encoded) == length
        return encoded

    fits = server.invoke({}, path=INVOKE, headers={"X-Amz-Client-Context": context_of(3580)})
    assert fits.status_code == 200 and len(fits.json()["clientContext"]["pad"]) > 2600
    for path in (INVOKE, STREAM):
        refused = server.invoke({}, path=path, headers={"X-Amz-Client-Context": context_of(3584)})
        assert refused.status_code == 400
        assert refused.json()["errorType"] == "InvalidParameterValueException"
        assert "3583" in refused.json()["errorMessage"]
    with pytest.raises(ClientError) as refused:
        lambda_client(server).invoke(FunctionName="function", ClientContext=context_of(3584))
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_event_invocations_are_bounded_by_the_queue(start_server):
    """checklist 67, 70: an asynchronous invocation waits in the same bounded queue: with the
    one invoker busy and KLR_QUEUE_SIZE=1 full, the next Event gets 429."""
    server = start_server("handler.sleep", KLR_QUEUE_SIZE="1")
    event = {"X-Amz-Invocation-Type": "Event"}
    assert server.invoke({"seconds": 2}, path=INVOKE, headers=event).status_code == 202
    server.wait_for_log("START RequestId")  # the one invoker is busy
    assert server.invoke({"seconds": 0}, path=INVOKE, headers=event).status_code == 202  # queued
    refused = server.invoke({"seconds": 0}, path=INVOKE, headers=event)
    assert refused.status_code == 429
    assert refused.json()["errorType"] == "TooManyRequestsException"
    assert "KLR_QUEUE_SIZE" in refused.json()["errorMessage"]
    server.wait_for_log("END RequestId", times=2, seconds=READ_SECONDS)  # both accepted ones ran


def test_a_failed_event_invocation_is_logged(start_server):
    """checklist 67: nobody waits for an Event invocation's result, so its failure goes to the
    log, with the function's error."""
    server = start_server("handler.fail")
    answer = server.invoke(
        {"job": "nightly"}, path=INVOKE, headers={"X-Amz-Invocation-Type": "Event"}
    )
    assert answer.status_code == 202 and answer.content == b""
    logs = server.wait_for_log("Asynchronous invocation failed")
    line = next(line for line in logs.splitlines() if "Asynchronous invocation failed" in line)
    assert "ValueError" in line and '{\\"job\\": \\"nightly\\"}' in line


def test_a_streamed_error_through_the_invoke_route_is_a_function_error(streaming):
    """checklists 12 and 66: a streamed result that ends with error trailers, read whole by
    the Invoke route, is the function's error, not the bytes sent before it failed."""
    server = streaming()
    answer = server.invoke(
        {"steps": [{"send": "partial"}], "end": "trailers"},
        path="/2015-03-31/functions/function/invocations",
    )
    assert answer.status_code == 200
    assert answer.headers["X-Amz-Function-Error"] == "Unhandled"
    assert answer.json() == {"errorType": "BrokenPipeline", "errorMessage": "the third part failed"}
