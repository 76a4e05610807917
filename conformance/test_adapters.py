"""The event modes through the libraries users parse them with (issue 8, item 1; checklist 72,
73, 74, 75, 77, 78): per language one widely used adapter, from its registry, turns KLR's event
back into a request and the echo route behind it answers what it saw (method, decoded path,
query with repeated keys, a header, cookies, the body as base64); its response comes back
through the mode's response rules. Projects: adapters/<language>/, built as a user would.

One table row per event mode (MODES), one per language (ADAPTERS), the same requests for all
(REQUESTS). Ruby has none here: its adapters (lamby, rack's) come from rubygems.org only."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import pytest
import requests

from conformance.harness import HERE, run_function
from images import functions
from images.matrix import IMAGE_PREFIX


@dataclass(frozen=True)
class Adapter:
    library: str
    handlers: dict[str, str]  # EVENT_TYPE -> the _HANDLER of its echo route
    since: tuple[int, ...] = ()  # the oldest language version the library supports
    project: str = ""  # under adapters/, when not the language's name
    # Python and Node.js fetch while building the function image, on a base that trusts this
    # machine's proxy; Go fetches in a build stage of its own that copies the CA itself.
    fetches_in_function_image: bool = True


@dataclass(frozen=True)
class Mode:
    event_type: str
    checklist: str  # the checklist items its requests cover
    # What the echo differs in from the request's plain reading, by request name.
    differences: dict[str, dict] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    name: str
    method: str
    target: str  # path and query, as sent
    headers: dict[str, str]
    body: bytes
    seen: dict  # what the echo route reports: the request as the library handed it over

    def send(self, url: str) -> requests.Response:
        return requests.request(
            self.method, url + self.target, headers=self.headers, data=self.body, timeout=30
        )


MODES = [
    Mode("API_GATEWAY", "72, 73"),
]

# A net/http handler behind awslabs' aws-lambda-go-api-proxy (on aws-lambda-go's event types),
# built in klr-go and run on klr-go or klr-provided.
GO_ADAPTER = Adapter(
    "aws-lambda-go-api-proxy (httpadapter)",
    {"API_GATEWAY": "rest", "HTTP_API": "http", "FUNCTION_URL": "url", "ALB": "alb"},
    project="go",
    fetches_in_function_image=False,
)
ADAPTERS = {
    "python": Adapter(
        "aws-lambda-powertools (event_handler resolvers)",
        {
            "API_GATEWAY": "handler.rest",
            "HTTP_API": "handler.http",
            "FUNCTION_URL": "handler.url",
            "ALB": "handler.alb",
        },
        since=(3, 9),
    ),
    "node": Adapter(
        "serverless-http",
        dict.fromkeys(("API_GATEWAY", "HTTP_API", "FUNCTION_URL", "ALB"), "handler.handler"),
        since=(12,),
    ),
    # Java users read these events through aws-lambda-java-events' classes, which the runtime
    # fills from the event (Maven Central; the jar is built on the host with `mvn package`).
    "java": Adapter(
        "aws-lambda-java-events",
        {
            "API_GATEWAY": "adapter.Echo::rest",
            "HTTP_API": "adapter.Echo::http",
            "FUNCTION_URL": "adapter.Echo::http",
            "ALB": "adapter.Echo::alb",
        },
        fetches_in_function_image=False,
    ),
    "go": GO_ADAPTER,
    "provided": GO_ADAPTER,
}
LANGUAGE = tuple(ADAPTERS)

BINARY = bytes(range(256)) * 4
NO_BODY = {"header": None, "largeHeader": 0, "cookies": [], "body": "", "query": {}}
REQUESTS = [
    Request(
        "escapes_repeated_query_cookies",
        "GET",
        "/items/a%20b/%C3%A9?tag=x&tag=y&q=1%2B1&empty=",
        {"X-Test": "hello", "Cookie": "a=1; b=two"},
        b"",
        {
            **NO_BODY,
            "method": "GET",
            "path": "/items/a b/\u00e9",
            "query": {"tag": ["x", "y"], "q": ["1+1"], "empty": [""]},
            "header": "hello",
            "cookies": ["a=1", "b=two"],
        },
    ),
    Request(
        "binary_body",
        "POST",
        "/upload",
        {"Content-Type": "application/octet-stream"},
        BINARY,
        {**NO_BODY, "method": "POST", "path": "/upload", "body": base64.b64encode(BINARY).decode()},
    ),
    Request(
        "text_body",
        "PUT",
        "/things/1",
        {"Content-Type": "application/json", "X-Test": "a text body"},
        '{"name": "Fo\u00f6"}'.encode(),
        {
            **NO_BODY,
            "method": "PUT",
            "path": "/things/1",
            "header": "a text body",
            "body": base64.b64encode('{"name": "Fo\u00f6"}'.encode()).decode(),
        },
    ),
    Request(
        "large_header",
        "DELETE",
        "/things/1",
        {"X-Large": "x" * 7000},
        b"",
        {**NO_BODY, "method": "DELETE", "path": "/things/1", "largeHeader": 7000},
    ),
]


@pytest.fixture(scope="module")
def adapter_image(docker_client, runtime):
    """The language's adapter project, built as its README step would (pip, npm), on the image
    with this machine's CA."""
    adapter = ADAPTERS[runtime.language]
    if adapter.since and tuple(map(int, runtime.version.split("."))) < adapter.since:
        pytest.skip(f"{adapter.library} supports {runtime.language} {adapter.since} and later")
    trusting = adapter.fetches_in_function_image
    return functions.build(
        docker_client,
        f"{IMAGE_PREFIX}adapter-{runtime.id}",
        functions.project_files(HERE / "adapters" / (adapter.project or runtime.language)),
        functions.trusting_image(docker_client, runtime) if trusting else runtime.image,
        ca_in_context=not trusting,
    )


@pytest.mark.parametrize("mode", MODES, ids=[m.event_type for m in MODES])
def test_the_adapter_sees_each_request_as_sent(docker_client, runtime, adapter_image, mode):
    """Each request through the mode's event and the adapter's parsing, and back through the
    adapter's response and the mode's response rules (status, a header, a JSON body)."""
    adapter = ADAPTERS[runtime.language]
    function = run_function(
        docker_client,
        runtime,
        adapter_image,
        EVENT_TYPE=mode.event_type,
        _HANDLER=adapter.handlers[mode.event_type],
    )
    try:
        for request in REQUESTS:
            answer = request.send(function.url)
            context = f"{adapter.library}, {mode.event_type}, {request.name}: {answer.text}"
            assert answer.status_code == 201, context
            assert answer.headers["X-Adapter"], context
            assert answer.headers["Content-Type"].startswith("application/json"), context
            expected = {**request.seen, **mode.differences.get(request.name, {})}
            assert answer.json() == expected, context
    finally:
        function.remove()
