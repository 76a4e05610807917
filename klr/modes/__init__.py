"""Event modes: how an HTTP request becomes a Lambda event and an outcome becomes a response.

Each mode is a module with one class, built from the Settings, offering `to_event(request)` and
`to_response(outcome)`, and saying whether it `streams` (relays a streamed result as it arrives;
otherwise the front door reads it whole first). A streaming mode may answer with an awaitable
Response, when a streamed result's first bytes say what the status and headers are; a mode
that sends the result on elsewhere first (CLOUDEVENTS with K_SINK) may too. EVENT_TYPE picks
one. Adding a mode is adding a module and a line in `mode_for`. A request that cannot become
an event raises ApiError; one the mode answers itself, with no invocation, raises Answered.
"""

from __future__ import annotations

import base64
import ipaddress
import json
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol

from klr.config import Settings
from klr.errors import ApiError
from klr.http import Request, Response
from klr.invokers import Outcome


class Mode(Protocol):
    streams: bool

    def to_event(self, request: Request) -> bytes: ...

    def to_response(self, outcome: Outcome) -> Response | Awaitable[Response]: ...


class Answered(Exception):
    """Raised by `to_event` for a request the mode answers itself (an OPTIONS probe)."""

    def __init__(self, response: Response):
        super().__init__(response.status)
        self.response = response


def json_event(body: bytes) -> bytes:
    """A request body as a Lambda event: JSON as Lambda requires, an empty body meaning {}."""
    if not body.strip():
        return b"{}"
    try:
        json.loads(body)
    except (ValueError, RecursionError) as error:  # RecursionError: nested too deep
        raise ApiError(
            400,
            "InvalidRequestContentException",
            f"Could not parse request body into json: {error}. "
            """Send a JSON document, for example: curl -d '{"name": "Foo"}'""",
        ) from None
    return body


# Hop-by-hop and framing headers are the server's to set, never a function result's.
SERVER_HEADERS = {
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
}


@dataclass(frozen=True)
class Forwarding:
    """Where a request came from, as the proxies in front of the server tell it."""

    source_ip: str
    proto: str
    port: str
    host: str


def forwarding(request: Request, server_port: int) -> Forwarding:
    """X-Forwarded-* first (what load balancers and Knative's queue-proxy set), then RFC 7239's
    Forwarded, then the connection itself. Each is the client's to send, so an address is
    taken only when it parses as one."""
    element = _first_forwarded(request.header("forwarded"))
    source_ip = (
        _address(request.header("x-forwarded-for").split(",")[0])
        or _address(element.get("for", ""))
        or request.peer
    )
    proto = (
        request.header("x-forwarded-proto").split(",")[0].strip().lower()
        or element.get("proto", "").lower()
    )
    host = (
        request.header("x-forwarded-host").split(",")[0].strip()
        or element.get("host", "")
        or request.header("host")
    )
    port = request.header("x-forwarded-port").split(",")[0].strip()
    if not port.isdigit():
        forwarded_port = host.rpartition(":")[2] if element.get("host") else ""
        if forwarded_port.isdigit():
            port = forwarded_port
        elif proto:
            port = "443" if proto == "https" else "80"
        else:
            port = str(server_port)
    return Forwarding(source_ip, proto or "http", port, host)


def _first_forwarded(value: str) -> dict[str, str]:
    """The first (client-most) element of a Forwarded header, its parameter names lower-cased."""
    element: dict[str, str] = {}
    for pair in value.split(",")[0].split(";"):
        name, _, raw = pair.partition("=")
        element[name.strip().lower()] = raw.strip().strip('"')
    return element


def _address(value: str) -> str:
    """An IP address out of `1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]:80`, or ''."""
    value = value.strip()
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return ""


def forwarded_headers(request: Request, origin: Forwarding) -> list[tuple[str, str]]:
    """The X-Forwarded-For/Proto/Port headers API Gateway, Function URLs and load balancers add,
    where the request has none."""
    present = {name.lower() for name, _ in request.headers}
    added = [
        ("X-Forwarded-For", origin.source_ip),
        ("X-Forwarded-Proto", origin.proto),
        ("X-Forwarded-Port", origin.port),
    ]
    return [(name, value) for name, value in added if name.lower() not in present and value]


def group(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Repeated names' values in order, under the name as first seen."""
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return grouped


def body_text(body: bytes) -> tuple[str | None, bool]:
    """A body as an HTTP event carries it: text if it is UTF-8, else base64 (and True)."""
    if not body:
        return None, False
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode(), True


def json_response(status: int, value: object) -> Response:
    return Response(status, json.dumps(value).encode(), [("Content-Type", "application/json")])


def mode_for(settings: Settings) -> Mode:
    from klr.modes.alb import AlbMode
    from klr.modes.api_gateway import ApiGatewayMode
    from klr.modes.cloudevents import CloudEventsMode
    from klr.modes.function_url import FunctionUrlMode
    from klr.modes.http_api import HttpApiMode
    from klr.modes.raw import RawMode

    modes = {
        "RAW": RawMode,
        "API_GATEWAY": ApiGatewayMode,
        "HTTP_API": HttpApiMode,
        "FUNCTION_URL": FunctionUrlMode,
        "ALB": AlbMode,
        "CLOUDEVENTS": CloudEventsMode,
    }
    return modes[settings.event_type](settings)
