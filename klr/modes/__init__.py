"""Event modes: how an HTTP request becomes a Lambda event and an outcome becomes a response.

Each mode is a module with one class, built from the Settings, offering `to_event(request)` and
`to_response(outcome)`, and saying whether it `streams` (relays a streamed result as it arrives;
otherwise the front door reads it whole first). EVENT_TYPE picks one. Adding a mode is adding a
module and a line in `mode_for`. A request that cannot become an event raises ApiError.
"""

from __future__ import annotations

import json
from typing import Protocol

from klr.config import Settings
from klr.errors import ApiError
from klr.http import Request, Response
from klr.invokers import Outcome


class Mode(Protocol):
    streams: bool

    def to_event(self, request: Request) -> bytes: ...

    def to_response(self, outcome: Outcome) -> Response: ...


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


def json_response(status: int, value: object) -> Response:
    return Response(status, json.dumps(value).encode(), [("Content-Type", "application/json")])


def mode_for(settings: Settings) -> Mode:
    from klr.modes.api_gateway import ApiGatewayMode
    from klr.modes.raw import RawMode

    modes = {"RAW": RawMode, "API_GATEWAY": ApiGatewayMode}
    return modes[settings.event_type](settings)
