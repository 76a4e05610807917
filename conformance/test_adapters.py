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
from urllib.parse import parse_qsl, unquote

import pytest
import requests

from conformance.harness import HERE, run_function
from images import functions
from images.matrix import IMAGE_PREFIX


@dataclass(frozen=True)
class Adapter:
    library: str
    handlers: dict[str, str]  # Mode.name -> the _HANDLER of its echo route
    project: str = ""  # under adapters/, when not the language's name
    # Python and Node.js fetch while building the function image, on a base that trusts this
    # machine's proxy; Go fetches in a build stage of its own that copies the CA itself.
    fetches_in_function_image: bool = True
    # Mode.name -> what the library hands over as the service sent it, percent-escapes kept
    # ("path", "query"), where it decodes nothing itself.
    undecoded: dict[str, tuple[str, ...]] = field(default_factory=dict)
    unsupported: dict[str, str] = field(default_factory=dict)  # Mode.name -> why not


@dataclass(frozen=True)
class Mode:
    name: str
    event_type: str
    checklist: str  # the checklist items its requests cover
    env: dict[str, str] = field(default_factory=dict)
    last_value_only: bool = False  # a repeated query key reaches the function once


@dataclass(frozen=True)
class Request:
    name: str
    method: str
    target: str  # path and query, as sent
    headers: dict[str, str]
    body: bytes = b""
    header: str | None = None  # the X-Test header the echo should report
    cookies: tuple[str, ...] = ()

    def send(self, url: str) -> requests.Response:
        return requests.request(
            self.method, url + self.target, headers=self.headers, data=self.body, timeout=30
        )

    def seen(self, undecoded: tuple[str, ...], last_value_only: bool) -> dict:
        """What the echo route should report: the request as the library hands it over."""
        path, _, query = self.target.partition("?")
        pairs = (
            [tuple(part.split("=", 1)) for part in query.split("&") if part]
            if "query" in undecoded
            else parse_qsl(query, keep_blank_values=True)
        )
        grouped: dict[str, list[str]] = {}
        for key, value in pairs:
            grouped[key] = [value] if last_value_only else [*grouped.get(key, []), value]
        return {
            "method": self.method,
            "path": path if "path" in undecoded else unquote(path),
            "query": grouped,
            "header": self.header,
            "largeHeader": len(self.headers.get("X-Large", "")),
            "cookies": list(self.cookies),
            "body": base64.b64encode(self.body).decode(),
        }


MODES = [
    Mode("API_GATEWAY", "API_GATEWAY", "72, 73"),
    Mode("HTTP_API", "HTTP_API", "74, 75"),
    Mode("FUNCTION_URL", "FUNCTION_URL", "74, 75, 77"),
    Mode("ALB", "ALB", "78", last_value_only=True),
    Mode("ALB_MULTI_VALUE", "ALB", "78", {"KLR_ALB_MULTI_VALUE_HEADERS": "true"}),
]
ALB_MODES = ("ALB", "ALB_MULTI_VALUE")

# A net/http handler behind awslabs' aws-lambda-go-api-proxy (on aws-lambda-go's event types),
# built in klr-go and run on klr-go or klr-provided. Its ALB adapter escapes the query values
# of the event again (so "1%2B1" reaches the handler), and answers in multiValueHeaders only,
# which a load balancer reads only with multi-value headers on.
GO_ADAPTER = Adapter(
    "aws-lambda-go-api-proxy (httpadapter)",
    {"API_GATEWAY": "rest", "HTTP_API": "http", "FUNCTION_URL": "url", "ALB_MULTI_VALUE": "alb"},
    project="go",
    fetches_in_function_image=False,
    undecoded={"ALB_MULTI_VALUE": ("query",)},
    unsupported={"ALB": "its ALB responses set multiValueHeaders only"},
)
ADAPTERS = {
    # Powertools hands over payload 2.0's rawPath and ALB's path and query as sent.
    "python": Adapter(
        "aws-lambda-powertools (event_handler resolvers)",
        {
            "API_GATEWAY": "handler.rest",
            "HTTP_API": "handler.http",
            "FUNCTION_URL": "handler.url",
            "ALB": "handler.alb",
            "ALB_MULTI_VALUE": "handler.alb",
        },
        undecoded={
            "HTTP_API": ("path",),
            "FUNCTION_URL": ("path",),
            "ALB": ("path", "query"),
            "ALB_MULTI_VALUE": ("path", "query"),
        },
    ),
    "node": Adapter(
        "serverless-http",
        dict.fromkeys((m.name for m in MODES), "handler.handler"),
    ),
    # Java users read these events through aws-lambda-java-events' classes, which the runtime
    # fills from the event (Maven Central; the jar is built on the host with `mvn package`).
    # ALB's path reaches getPath() as sent (the echo decodes the query itself, as users must).
    "java": Adapter(
        "aws-lambda-java-events",
        {
            "API_GATEWAY": "adapter.Echo::rest",
            "HTTP_API": "adapter.Echo::http",
            "FUNCTION_URL": "adapter.Echo::http",
            "ALB": "adapter.Echo::alb",
            "ALB_MULTI_VALUE": "adapter.Echo::alb",
        },
        fetches_in_function_image=False,
        undecoded=dict.fromkeys(ALB_MODES, ("path",)),
    ),
    "go": GO_ADAPTER,
    "provided": GO_ADAPTER,
}
LANGUAGE = tuple(ADAPTERS)
# One image per language keeps the suite cheap; the libraries' releases here need Python 3.9+
# (Powertools 3) and Node.js 12+ (serverless-http 4). The Go program runs on klr-provided, as
# the README's recipe has it.
RUNTIME_IDS = ("python311", "node22", "java21", "provided")

BINARY = bytes(range(256)) * 4
TEXT = '{"name": "Fo\u00f6"}'.encode()
REQUESTS = [
    Request(
        "escapes_repeated_query_cookies",
        "GET",
        "/items/a%20b/%C3%A9?tag=x&tag=y&q=1%2B1&empty=",
        {"X-Test": "hello", "Cookie": "a=1; b=two"},
        header="hello",
        cookies=("a=1", "b=two"),
    ),
    Request("binary_body", "POST", "/upload", {"Content-Type": "application/octet-stream"}, BINARY),
    Request(
        "text_body",
        "PUT",
        "/things/1",
        {"Content-Type": "application/json", "X-Test": "a text body"},
        TEXT,
        header="a text body",
    ),
    Request("large_header", "DELETE", "/things/1", {"X-Large": "x" * 7000}),
]


@pytest.fixture(scope="module")
def adapter_image(docker_client, runtime):
    """The language's adapter project, built as its README step would (pip, npm), on the image
    with this machine's CA."""
    adapter = ADAPTERS[runtime.language]
    trusting = adapter.fetches_in_function_image
    return functions.build(
        docker_client,
        f"{IMAGE_PREFIX}adapter-{runtime.id}",
        functions.project_files(HERE / "adapters" / (adapter.project or runtime.language)),
        functions.trusting_image(docker_client, runtime) if trusting else runtime.image,
        ca_in_context=not trusting,
    )


@pytest.mark.parametrize("mode", MODES, ids=[m.name for m in MODES])
def test_the_adapter_sees_each_request_as_sent(docker_client, runtime, adapter_image, mode):
    """Each request through the mode's event and the adapter's parsing, and back through the
    adapter's response and the mode's response rules (status, a header, a JSON body)."""
    adapter = ADAPTERS[runtime.language]
    if mode.name in adapter.unsupported:
        pytest.skip(f"{adapter.library} has no {mode.name}: {adapter.unsupported[mode.name]}")
    function = run_function(
        docker_client,
        runtime,
        adapter_image,
        EVENT_TYPE=mode.event_type,
        _HANDLER=adapter.handlers[mode.name],
        **mode.env,
    )
    try:
        for request in REQUESTS:
            answer = request.send(function.url)
            context = (
                f"{adapter.library}, {mode.name} (checklist {mode.checklist}), {request.name}: "
                f"{answer.text}"
            )
            assert answer.status_code == 201, context
            assert answer.headers["X-Adapter"], context
            assert answer.headers["Content-Type"].startswith("application/json"), context
            expected = request.seen(adapter.undecoded.get(mode.name, ()), mode.last_value_only)
            assert answer.json() == expected, context
    finally:
        function.remove()
