"""The HTTP event modes in real containers, with each language's sample handlers.

The server that maps requests and results is the same in every image; what differs is the
language's shim reading the event and writing the result. So HTTP_API runs on every image (one
container: `echo` returns the 2.0 event it was given, a result without statusCode), and
FUNCTION_URL and ALB on one image per language, the first of each language selected: CI starts
one container per image and two per language rather than one per mode and image.
"""

from __future__ import annotations

import base64

import docker
import pytest
import requests

from conformance.harness import LANGUAGES, Function
from images import functions, matrix


def pytest_generate_tests(metafunc):
    """`representative`: the first selected runtime of each language."""
    if "representative" not in metafunc.fixturenames:
        return
    chosen: dict[str, matrix.Runtime] = {}
    for runtime in matrix.load().select(metafunc.config.getoption("runtime") or None):
        if not runtime.unavailable:
            chosen.setdefault(runtime.language, runtime)
    metafunc.parametrize("representative", list(chosen.values()), ids=list(chosen), scope="module")


@pytest.fixture(scope="module")
def representative_image(representative, docker_client) -> str:
    try:
        docker_client.images.get(representative.image)
    except docker.errors.ImageNotFound:
        pytest.fail(
            f"image {representative.image} is not built: "
            f"run ./invoke build --runtime {representative.id}"
        )
    return functions.sample_image(docker_client, representative, "conformance")


@pytest.fixture
def start_representative(docker_client, representative, representative_image):
    """start_representative(function, **env): a container of the language's samples."""
    started: list[Function] = []
    language = LANGUAGES[representative.language]

    def run(function: str, **env: str) -> Function:
        env = {"_HANDLER": language.handler.format(function), "INVOKER_COUNT": "1", **env}
        started.append(
            Function(docker_client, representative_image, env, representative.startup_seconds)
        )
        return started[-1].wait_for("/_klr/ready")

    yield run
    for function in started:
        function.remove()


def test_http_api_mode_delivers_the_2_0_event_to_each_language(start):
    """Checklists 74, 75: the language's function gets the 2.0 event (escaped rawPath,
    comma-joined query and headers, cookies, a binary body as base64) and its result, an
    object without statusCode, is a 200 application/json answer of that object."""
    function = start("echo", EVENT_TYPE="HTTP_API")
    result = requests.post(
        function.url + "/a%20b/c%2Fd?x=1&x=2",
        data=b"\xff\x00\xfe",
        headers={"Cookie": "s=1; t=2", "X-Test": "yes"},
        timeout=30,
    )
    assert result.status_code == 200
    assert result.headers["Content-Type"] == "application/json"
    event = result.json()
    assert (event["version"], event["routeKey"]) == ("2.0", "$default")
    assert (event["rawPath"], event["rawQueryString"]) == ("/a%20b/c%2Fd", "x=1&x=2")
    assert event["queryStringParameters"] == {"x": "1,2"}
    assert event["cookies"] == ["s=1", "t=2"]
    assert event["headers"]["x-test"] == "yes" and "cookie" not in event["headers"]
    assert base64.b64decode(event["body"]) == b"\xff\x00\xfe" and event["isBase64Encoded"]
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["http"]["path"] == "/a b/c/d"


def test_function_url_mode_per_language(start_representative):
    """Checklist 77: a Function URL's requestContext reaches the language's function and comes
    back. (The modes' error answers are the server's alone: tests/test_server.py.)"""
    function = start_representative("echo", EVENT_TYPE="FUNCTION_URL")
    event = requests.get(function.url + "/p?q=1", timeout=30).json()
    context = event["requestContext"]
    assert context["domainName"] == f"{context['apiId']}.lambda-url.us-east-1.on.aws"
    assert (context["routeKey"], context["stage"]) == ("$default", "$default")
    assert "authorizer" not in context and "pathParameters" not in event


def test_alb_mode_per_language(start_representative):
    """Checklist 78: the `http` handler reads a target-group event (the query string as sent)
    and its response's `headers` are the answer's; `multiValueHeaders` are not read unless
    KLR_ALB_MULTI_VALUE_HEADERS=true."""
    function = start_representative("http", EVENT_TYPE="ALB")
    result = requests.put(function.url + "/items/7?color=bl%20ue", data="hi", timeout=30)
    assert result.status_code == 201
    assert (result.headers["X-Single"], result.headers.get("X-Multi")) == ("one", None)
    reported = result.json()
    assert (reported["method"], reported["path"]) == ("PUT", "/items/7")
    assert (reported["query"], reported["body"]) == ({"color": "bl%20ue"}, "hi")
