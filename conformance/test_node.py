"""What only Node.js images show: callback, context.succeed/fail/done and promise handlers, the
event loop rule, ES modules, Lambda's handler names and module order, the error shape, the
process exit after an error nobody caught, response streaming (awslambda.streamifyResponse and
HttpResponseStream, in RAW mode, which relays a streamed result as it arrives), and the seed's
node4 and node10 examples.

Features a Node.js version lacks are checked for the failure that version gives instead."""

from __future__ import annotations

import base64
import json
import socket
import uuid

import pytest
import requests

from conformance.harness import HERE, run_function, seed_function
from images import functions
from images.matrix import IMAGE_PREFIX
from images.wait import until

LANGUAGE = "node"
INVOKE_API = "/2015-03-31/functions/function/invocations"
ASYNC_FUNCTIONS_SINCE = 8  # async/await parses from Node.js 7.6
ES_MODULES_SINCE = 14  # import() and .mjs work unflagged from Node.js 12.17
ESM_SYNTAX_IN_JS_SINCE = 20  # require() of a .js with ES module syntax: Node.js 20.19 and 22.12
ERROR_TRAILERS = ("lambda-runtime-function-error-type", "lambda-runtime-function-error-body")
HTTP_INTEGRATION = "application/vnd.awslambda.http-integration-response"
PATTERN = bytes(range(251))  # what streaming.large repeats
MARKER_SECONDS = 30  # how long a handler waits for its marker file, then says it never came


def major(runtime) -> int:
    return int(runtime.version)


def failure(result) -> tuple[int, str, str]:
    return result.status_code, result.json()["errorType"], result.json()["errorMessage"]


def assert_init_error(function, error_type: str, message: str = "") -> None:
    status, actual_type, actual_message = failure(function.invoke({}))
    assert (status, actual_type) == (502, error_type)
    assert message in actual_message


def test_callback_result_waits_for_the_empty_event_loop_unless_told_not_to(start):
    function = start(handler="styles.callbackBeforeTimer")
    assert function.invoke({}).json() == {"timerFired": True}
    assert function.invoke({"waitForEmptyEventLoop": False}).json() == {"timerFired": False}


@pytest.mark.parametrize("handler", ["styles.callbackTwice", "styles.succeedThenCallback"])
def test_only_the_first_answer_counts(start, handler):
    result = start(handler=handler).invoke({})
    assert (result.status_code, result.json()) == (200, "first")


def test_handler_that_never_answers_returns_null(start):
    result = start(handler="styles.noAnswer").invoke({})
    assert (result.status_code, result.text) == (200, "null")


@pytest.mark.parametrize(
    "handler, status, body",
    [
        ("styles.succeed", 200, {"succeeded": {"a": 1}}),
        ("styles.done", 200, "done"),
        (
            "styles.failWithoutError",
            500,
            {"errorType": "string", "errorMessage": "handled", "trace": []},
        ),
        (
            "styles.doneWithString",
            500,
            {"errorType": "string", "errorMessage": "a plain string", "trace": []},
        ),
    ],
)
def test_context_succeed_fail_done(start, handler, status, body):
    result = start(handler=handler).invoke({"a": 1})
    assert (result.status_code, result.json()) == (status, body)


def test_context_fail_with_an_error(start):
    result = start(handler="styles.failWithError").invoke({})
    assert failure(result) == (500, "TypeError", "failed on purpose")


def test_promise_handler(start):
    assert start(handler="styles.promise").invoke({"a": 1}).json() == {"promised": {"a": 1}}
    result = start(handler="styles.rejectedPromise").invoke({})
    assert failure(result) == (500, "RangeError", "rejected on purpose")


def test_async_function_handler(start, runtime):
    if major(runtime) < ASYNC_FUNCTIONS_SINCE:
        function = start(handler="async.handler", ready=False)
        assert_init_error(function, "Runtime.UserCodeSyntaxError")
        return
    assert start(handler="async.handler").invoke({"a": 1}).json() == {"awaited": {"a": 1}}
    result = start(handler="async.throws").invoke({})
    assert failure(result) == (500, "RangeError", "thrown by an async handler")


def test_promise_left_unsettled_by_an_empty_event_loop(start):
    function = start(handler="styles.neverSettles", INVOKER_COUNT="1")
    for _ in range(2):  # the process goes on to the next event
        assert failure(function.invoke({}))[:2] == (500, "Runtime.NodeJsExit")


@pytest.mark.parametrize(
    "handler, error_type, message, exit_status",
    [
        ("styles.uncaughtException", "Error", "thrown from a timer", 129),
        (
            "styles.unhandledRejection",
            "Runtime.UnhandledPromiseRejection",
            "Error: nobody caught this",
            128,
        ),
    ],
)
def test_error_nobody_caught_fails_the_invocation_then_ends_the_process(
    start, handler, error_type, message, exit_status
):
    function = start(handler=handler, INVOKER_COUNT="1")
    for attempt in (1, 2):  # the second is served by the process that replaced the first
        assert failure(function.invoke({})) == (500, error_type, message)
        function.wait_for_log(f"exit status {exit_status}", times=attempt)
        function.wait_for("/_klr/ready")


@pytest.mark.parametrize(
    "handler, answer, since, otherwise",
    [
        ("esm.handler", "mjs", ES_MODULES_SINCE, "Runtime.ImportModuleError"),
        ("esm_package/index.handler", "index.js", ES_MODULES_SINCE, "Runtime.UserCodeSyntaxError"),
        ("esm_syntax.handler", "esm syntax", ESM_SYNTAX_IN_JS_SINCE, "Runtime.UserCodeSyntaxError"),
    ],
    ids=["mjs", "type_module", "esm_syntax_in_js"],
)
def test_es_module_handler(start, runtime, handler, answer, since, otherwise):
    if major(runtime) < since:
        assert_init_error(start(handler=handler, ready=False), otherwise)
        return
    assert start(handler=handler).invoke({"a": 1}).json() == {"module": answer, "event": {"a": 1}}


def test_module_order_is_as_given_then_js_mjs_cjs(start, runtime):
    assert start(handler="noext.handler").invoke({}).json() == "no extension"
    assert start(handler="choice.which").invoke({}).json() == "js"
    if major(runtime) < ES_MODULES_SINCE:
        function = start(handler="esm_or_cjs.which", ready=False)
        assert_init_error(function, "Runtime.ImportModuleError", "is an ES module")
    else:
        assert start(handler="esm_or_cjs.which").invoke({}).json() == "mjs"


def test_handler_in_a_folder_and_nested_objects(start):
    function = start(handler="lib/nested.deep.inner.handler")
    assert function.invoke({"a": 1}).json() == {"nested": {"a": 1}}


@pytest.mark.parametrize(
    "handler, error_type, message",
    [
        (
            "missing.handler",
            "Runtime.ImportModuleError",
            "Error: Cannot find module '/var/task/missing'",
        ),
        (
            "handler.missing",
            "Runtime.HandlerNotFound",
            "handler.missing is undefined or not exported",
        ),
        (
            "lib/nested.deep.missing",
            "Runtime.HandlerNotFound",
            "lib/nested.deep.missing is undefined or not exported",
        ),
        ("syntax_error.handler", "Runtime.UserCodeSyntaxError", "SyntaxError: "),
        ("handler", "Runtime.MalformedHandlerName", "Bad handler"),
        ("../task/handler.echo", "Runtime.MalformedHandlerName", "'..' is not allowed"),
        ("init_error.handler", "Error", "failed while loading"),
    ],
)
def test_init_errors_say_what_is_wrong(start, handler, error_type, message):
    function = start(handler=handler, ready=False)
    assert_init_error(function, error_type, message)
    function.wait_for_log("Uncaught Exception")


def test_error_shape_has_the_stack_as_trace(start):
    function = start("fail")
    error = function.invoke({"id": 7}).json()
    assert set(error) == {"errorType", "errorMessage", "trace"}
    assert error["errorMessage"] == 'something went wrong: {"id":7}'
    assert error["trace"][0] == 'Error: something went wrong: {"id":7}'
    assert any("(/var/task/handler.js:" in frame for frame in error["trace"])
    function.wait_for_log("\tERROR\tInvoke Error \t")


def test_unserialisable_result_message(start):
    result = start("unserialisable").invoke({})
    assert result.json()["errorMessage"] == "Unable to stringify response body"


def test_context_object(start):
    function = start(handler="styles.contextObject")
    client_context = {"custom": {"k": "v"}, "env": {"locale": "en"}}
    trace_id = "Root=1-67891233-abcdef012345678912345678;Parent=53995c3f42cd8ad8;Sampled=1"
    context = function.invoke(
        {},
        path=INVOKE_API,
        headers={
            "X-Amz-Client-Context": base64.b64encode(json.dumps(client_context).encode()).decode(),
            "X-Amzn-Trace-Id": trace_id,
            "X-Amz-Tenant-Id": "tenant-7",
        },
    ).json()
    assert context == {
        "clientContext": client_context,
        "identity": "undefined",
        "tenantId": "tenant-7",
        "memoryLimitInMB": "3008",
        "callbackWaitsForEmptyEventLoop": True,
        "traceId": trace_id,
    }
    plain = function.invoke({}).json()
    assert (plain["clientContext"], plain["tenantId"]) == ("undefined", "undefined")
    assert plain["traceId"].startswith("Root=1-") and plain["traceId"] != trace_id


def test_console_lines_carry_time_request_id_and_level(start):
    function = start("log")
    request_id = function.invoke({"marker": "m-3"}).headers["X-Amzn-RequestId"]
    function.wait_for_log(f"Z\t{request_id}\tINFO\tlog to stdout: m-3\n")


def test_seed_node4_landing_page(docker_client, runtime):
    """The seed's node4 example (handler.landingPage, an HTML page) behind API Gateway events."""
    function = seed_function(docker_client, runtime, "node4", EVENT_TYPE="API_GATEWAY")
    try:
        result = requests.get(function.url + "/?name=Foo", timeout=30)
        assert result.status_code == 200
        assert result.headers["Content-Type"] == "text/html"
        assert "<h1>Landing Page</h1>" in result.text and "<p>Hey Foo!</p>" in result.text
    finally:
        function.remove()


def test_seed_node10_async_hello(docker_client, runtime):
    """The seed's node10 example (async handler.sayHelloAsync); before async functions, the
    syntax error that version gives."""
    supported = major(runtime) >= ASYNC_FUNCTIONS_SINCE
    function = seed_function(docker_client, runtime, "node10", ready=supported)
    try:
        if supported:
            result = function.invoke(data='{"name":"Foo"}')
            assert (result.status_code, result.json()) == (200, {"hello": "Foo"})
        else:
            assert_init_error(function, "Runtime.UserCodeSyntaxError")
    finally:
        function.remove()


def test_original_klr_dockerfile_installs_package_json(docker_client, runtime):
    """The original KLR's node4 / node10 Dockerfile, verbatim but for FROM (`RUN npm install`,
    as the image's default user, no CA line: the base carries this machine's CA as a company's
    would), installs package.json's dependency from npm into /var/task/node_modules, and the
    function requires it (issue 8, item 7). The node10 project has an async handler, so Node.js
    before async functions builds the node4 one."""
    seed, event, expected = (
        ("node10", {"words": "foo-bar baz"}, {"camelCase": "fooBarBaz"})
        if major(runtime) >= ASYNC_FUNCTIONS_SINCE
        else ("node4", {"duration": "2 days"}, {"milliseconds": 172800000})
    )
    tag = functions.build(
        docker_client,
        f"{IMAGE_PREFIX}seed-npm-install-{runtime.id}",
        functions.project_files(HERE / "seed" / "tekton" / seed),
        functions.trusting_image(docker_client, runtime),
        ca_in_context=False,
    )
    function = run_function(docker_client, runtime, tag)
    try:
        result = function.invoke(event)
        assert result.status_code == 200, result.text
        body = result.json()
        installed_in = body.pop("installedIn")
        assert body == expected
        assert installed_in.startswith("/var/task/node_modules/"), installed_in
    finally:
        function.remove()


# Response streaming. A streaming handler's result reaches the caller as the handler writes it;
# RAW mode answers 200 at once, relays the chunks, and ends with the runtime's error trailers.


def streamed_answer(url: str, event: object, seconds: float = 60):
    """POST the event; (status, headers, body, trailers) of the chunked answer, read off the
    socket: HTTP libraries drop trailers."""
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps(event).encode()
    with socket.create_connection((host, int(port)), timeout=seconds) as connection:
        connection.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%b" % (len(body), body)
        )
        reader = connection.makefile("rb")
        status = int(reader.readline().split()[1])
        headers = fields(reader)
        assert headers["transfer-encoding"] == "chunked", headers
        chunks = []
        while size := int(reader.readline().split(b";")[0], 16):
            chunks.append(reader.read(size))
            assert reader.read(2) == b"\r\n"
        return status, headers, b"".join(chunks), fields(reader)


def fields(reader) -> dict[str, str]:
    """Header (or trailer) fields up to the empty line, by lower-case name."""
    found = {}
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        found[name.strip().lower()] = value.strip()
    return found


def trailer_error(trailers: dict[str, str]) -> dict:
    """The error a stream ended with: its trailers' type, and the base64 JSON body."""
    body = json.loads(base64.b64decode(trailers[ERROR_TRAILERS[1]], validate=True))
    assert trailers[ERROR_TRAILERS[0]] == body["errorType"]
    assert set(body) == {"errorType", "errorMessage", "trace"}
    return body


def read_first_chunk_then_release(function, answer: requests.Response, marker: str) -> None:
    """The handler (streaming.waitsForMarker, functionUrl) writes one chunk, then waits for
    /tmp/<marker>, made here (docker exec) only once that chunk has been read: the rest comes
    only if the first chunk reached the client while the handler was still running."""
    assert answer.headers["Transfer-Encoding"] == "chunked"
    chunks = answer.iter_content(chunk_size=None)
    first = b""
    while len(first) < len(b"first chunk\n"):
        first += next(chunks)
    assert first == b"first chunk\n"
    exit_code, output = function.container.exec_run(["touch", f"/tmp/{marker}"])
    assert exit_code == 0, output
    assert b"".join(chunks) == b"after the marker\n"


def test_streamed_bytes_reach_the_client_before_the_handler_finishes(start):
    """Checklist 21, 51: see read_first_chunk_then_release."""
    function = start(handler="streaming.waitsForMarker")
    marker = f"marker-{uuid.uuid4().hex}"
    event = {"marker": marker, "seconds": MARKER_SECONDS}
    with requests.post(function.url, json=event, stream=True, timeout=60) as answer:
        assert (answer.status_code, answer.headers["Content-Type"]) == (200, "text/plain")
        read_first_chunk_then_release(function, answer, marker)


@pytest.mark.parametrize("event_type", ["FUNCTION_URL", "HTTP_API"])
def test_streams_behind_function_urls_take_status_headers_and_cookies_from_the_prelude(
    start, event_type
):
    """Checklist 22, 79: HttpResponseStream.from's prelude becomes the answer's status,
    headers and one Set-Cookie per cookie; the body after it streams as it is written
    (read_first_chunk_then_release)."""
    function = start(handler="streaming.functionUrl", EVENT_TYPE=event_type)
    marker = f"marker-{uuid.uuid4().hex}"
    query = f"?marker={marker}&seconds={MARKER_SECONDS}"
    with requests.get(f"{function.url}/some/path{query}", stream=True, timeout=60) as answer:
        assert answer.status_code == 201
        assert answer.headers["Content-Type"] == "text/plain"
        assert answer.headers["X-Path"] == "/some/path"
        assert answer.raw.headers.getlist("Set-Cookie") == ["a=1", "b=2; Path=/"]
        read_first_chunk_then_release(function, answer, marker)


def test_a_stream_over_6_mb_arrives_whole(start):
    """Checklist 21: 20 MB, three times the 6 MB a buffered result may have, written as the
    stream's backpressure allows, arrives whole and byte for byte."""
    function = start(handler="streaming.large")
    size = 20 * 1000 * 1000
    answer = function.invoke({"bytes": size}, timeout=120)
    assert (answer.status_code, answer.headers["Content-Type"]) == (200, "application/octet-stream")
    assert len(answer.content) == size
    assert answer.content == (PATTERN * (size // len(PATTERN) + 1))[:size]


def test_a_client_that_stops_reading_holds_the_handler_back(start):
    """Backpressure: while the client reads no further, the handler's writes wait (write()
    returns false, 'drain' comes later): it gets no further than the buffers on the way hold,
    far from the whole stream, and goes on once the client reads again."""
    function = start(handler="streaming.large")
    size, progress = 128 * 1024 * 1024, f"progress-{uuid.uuid4().hex}"

    def handed_to_write() -> int:
        exit_code, output = function.container.exec_run(["cat", f"/tmp/{progress}"])
        return int(output) if exit_code == 0 else 0

    def settled(seen: list[int]):
        seen.append(handed_to_write())
        return len(seen) > 1 and seen[-1] == seen[-2] and seen[-1] > 0 and seen[-1]

    event = {"bytes": size, "progress": progress}
    with requests.post(function.url, json=event, stream=True, timeout=60) as answer:
        chunks = answer.iter_content(chunk_size=64 * 1024)
        received = len(next(chunks))
        seen: list[int] = []
        held_at = until("the handler to stop writing", 30, lambda: settled(seen), seen.__str__, 1)
        assert held_at < size // 2, f"the handler wrote {held_at} of {size} bytes unread"
        received += sum(len(chunk) for chunk in chunks)
    assert received == size
    assert handed_to_write() == size


def test_an_error_mid_stream_ends_it_with_the_error_in_the_trailers(start):
    """Checklist 21: what was written arrives, then the chunked answer ends cleanly with the
    error as trailers (type, and Node.js's error shape as base64 JSON); the function is logged
    as on Lambda and goes on to the next event."""
    function = start(handler="streaming.failsMidStream")
    for _ in range(2):
        status, headers, body, trailers = streamed_answer(function.url, {})
        assert (status, body) == (200, b"partial output\n")
        error = trailer_error(trailers)
        assert (error["errorType"], error["errorMessage"]) == (
            "TypeError",
            "failed after the first chunk",
        )
        assert error["trace"][0] == "TypeError: failed after the first chunk"
    function.wait_for_log('\tERROR\tInvoke Error \t{"errorType":"TypeError"', times=2)


def test_a_streamed_error_through_the_invoke_api_is_a_function_error(start):
    """The Invoke API answers in one piece: a stream that ended with error trailers is the
    function's error there (X-Amz-Function-Error), not the bytes it sent before failing."""
    result = start(handler="streaming.failsMidStream").invoke({}, path=INVOKE_API)
    assert (result.status_code, result.headers["X-Amz-Function-Error"]) == (200, "Unhandled")
    assert result.json()["errorType"] == "TypeError"
    assert result.json()["errorMessage"] == "failed after the first chunk"


def test_an_error_before_any_byte_is_a_plain_error(start):
    """Nothing streamed yet: the error is the whole answer, as a buffered handler's is."""
    result = start(handler="streaming.failsBeforeWriting").invoke({})
    assert failure(result) == (500, "RangeError", "failed before writing anything")


def test_streaming_handlers_must_return_a_promise(start):
    """Checklist 51: a streaming handler that is not async (returns no promise) fails with
    Runtime.MalformedStreamingHandler, after what it wrote."""
    status, _, body, trailers = streamed_answer(start(handler="streaming.notAsync").url, {})
    assert (status, body) == (200, b"never mind")
    error = trailer_error(trailers)
    assert error["errorType"] == "Runtime.MalformedStreamingHandler"
    assert "Streaming does not support non-async handlers" in error["errorMessage"]


def test_content_type_is_set_before_the_first_write_and_chunks_are_bytes_or_json(start):
    """setContentType names the answer's Content-Type; once a chunk is written it is too late
    (Runtime.InvalidStreamingOperation). Strings and bytes are written as they are, anything
    else as JSON."""
    answer = start(handler="streaming.contentType").invoke({})
    assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert answer.content == b'a,b\n{"not":"bytes"}\n1,2'
    answer = start(handler="streaming.contentTypeTooLate").invoke({})
    assert answer.headers["Content-Type"] == "application/octet-stream"
    assert answer.content == (
        b"a first chunk\nRuntime.InvalidStreamingOperation: Cannot set content-type, too late."
    )


@pytest.mark.parametrize(
    "handler, body",
    [("streaming.httpResponse", b"streamed body"), ("streaming.httpResponseWithoutBody", b"")],
)
def test_http_response_stream_sends_its_prelude_first(start, handler, body):
    """Checklist 22, 51: HttpResponseStream.from makes the stream Lambda's HTTP integration
    response: a JSON prelude, eight NUL bytes, then the body; the prelude goes out even when
    no body does. RAW mode passes it on as it is."""
    prelude = {"statusCode": 201, "headers": {"X-Kind": "streamed"}, "cookies": ["a=1", "b=2"]}
    answer = start(handler=handler).invoke({"prelude": prelude})
    assert answer.headers["Content-Type"] == HTTP_INTEGRATION
    sent_prelude, delimiter, sent_body = answer.content.partition(b"\0" * 8)
    assert delimiter and json.loads(sent_prelude) == prelude
    assert sent_body == body


@pytest.mark.parametrize(
    "env, expected",
    [({}, "function"), ({"AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA": "true"}, "undefined")],
    ids=["default", "opted_out"],
)
def test_awslambda_globals(start, env, expected):
    """Checklist 51: awslambda.streamifyResponse and awslambda.HttpResponseStream are globals,
    unless AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA says no, as on Lambda."""
    result = start(handler="globals.handler", **env).invoke({}).json()
    assert result == {"streamifyResponse": expected, "from": expected}


def test_async_streaming_handlers_with_pipeline(start, runtime):
    """Checklist 51, as Lambda's documentation writes streaming handlers: async functions and
    stream.pipeline (Node.js 10); a source that fails mid-way ends the stream with its error.
    A result is ignored, with Lambda's warning. Before async functions, the syntax error of
    that version."""
    if major(runtime) < ASYNC_FUNCTIONS_SINCE:
        assert_init_error(
            start(handler="streaming_async.pipeline", ready=False), "Runtime.UserCodeSyntaxError"
        )
        return
    function = start(handler="streaming_async.pipeline")
    answer = function.invoke({"lines": 3})
    assert (answer.headers["Content-Type"], answer.content) == (
        "text/plain",
        b"line 0\nline 1\nline 2\n",
    )
    _, _, body, trailers = streamed_answer(function.url, {"lines": 5, "failAt": 2})
    assert body == b"line 0\nline 1\n"
    assert trailer_error(trailers)["errorMessage"] == "the source failed at line 2"
    function = start(handler="streaming_async.awaitsWrites")
    answer = function.invoke({})
    assert answer.content == answer.headers["X-Amzn-RequestId"].encode() + b"\ndone\n"
    function.wait_for_log("\tWARN\tStreaming handlers ignore return values.")
