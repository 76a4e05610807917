"""Raw mode, the seed's default: the request body is the event, the result is the body."""

from __future__ import annotations

import json

from klr.config import Settings
from klr.http import Request, Response
from klr.invokers import Outcome
from klr.modes import json_event


class RawMode:
    streams = True

    def __init__(self, settings: Settings):
        """Raw mode needs no settings; every mode is built the same way."""

    def to_event(self, request: Request) -> bytes:
        return json_event(request.body)

    def to_response(self, outcome: Outcome) -> Response:
        if outcome.stream is not None:
            content_type = outcome.content_type or "application/octet-stream"
            return Response(
                outcome.status,
                headers=[("Content-Type", content_type)],
                stream=outcome.stream,
                trailers=outcome.stream.trailers,
            )
        content_type = (
            "application/json"
            if outcome.failed or _is_json(outcome)
            else "application/octet-stream"
        )
        return Response(outcome.status, outcome.body, [("Content-Type", content_type)])


def _is_json(outcome: Outcome) -> bool:
    # Runtimes label JSON results; a shell bootstrap's curl says form-urlencoded, so look.
    if outcome.content_type.startswith("application/json"):
        return True
    try:
        json.loads(outcome.body)
        return True
    except (ValueError, RecursionError):
        return False
