"""What only Node.js images show: callback, context.succeed/fail/done and promise handlers, the
event loop rule, ES modules, Lambda's handler names and module order, the error shape, the
process exit after an error nobody caught, and the seed's node4 and node10 examples.

Features a Node.js version lacks are checked for the failure that version gives instead."""

from __future__ import annotations

import base64
import json

import pytest
import requests

from conformance.harness import HERE, run_function, seed_function
from images import functions
from images.matrix import IMAGE_PREFIX

LANGUAGE = "node"
INVOKE_API = "/2015-03-31/functions/function/invocations"
ASYNC_FUNCTIONS_SINCE = 8  # async/await parses from Node.js 7.6
ES_MODULES_SINCE = 14  # import() and .mjs work unflagged from Node.js 12.17
ESM_SYNTAX_IN_JS_SINCE = 20  # require() of a .js with ES module syntax: Node.js 20.19 and 22.12


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
