"""ALB mode (EVENT_TYPE=ALB): an Application Load Balancer's Lambda target group.

The request becomes a target-group event: `httpMethod`, `path` and the query string as sent
(ALB decodes neither), lower-case headers, the body as text or base64. By default each header
and query parameter has one value, the last sent; with KLR_ALB_MULTI_VALUE_HEADERS=true the
event has `multiValueHeaders` and `multiValueQueryStringParameters` instead, and the result's
`multiValueHeaders` are read in place of its `headers`.

The result is `{statusCode, statusDescription, headers|multiValueHeaders, body,
isBase64Encoded}`. The status line carries the standard reason phrase of `statusCode`: the HTTP
layer writes no other, and clients ignore it (RFC 9112 §4; HTTP/2 has none), so a
`statusDescription` is checked to be text and otherwise not sent. Like ALB, a malformed result,
a function error or a result over 1 MB is a 502, a timeout a 504, and a request body over
1 MB a 413.
"""

from __future__ import annotations

import hashlib
import json
import re

from klr.config import Settings
from klr.errors import ApiError
from klr.http import Request, Response
from klr.invokers import Outcome
from klr.modes import body_text, forwarded_headers, forwarding, group
from klr.modes.results import (
    MalformedResult,
    body_of,
    header_map,
    multi_value_pairs,
    parsed,
    refused,
    response_headers,
    status_of,
)

# ALB's limit on the request body it sends a function and the response JSON it takes back.
MAX_ALB_BYTES = 1024 * 1024


class AlbMode:
    streams = False

    def __init__(self, settings: Settings):
        self.port = settings.port
        self.multi_value = settings.alb_multi_value_headers
        self.target_group_arn = target_group_arn(settings)

    def to_event(self, request: Request) -> bytes:
        if len(request.body) > MAX_ALB_BYTES:
            raise ApiError(
                413,
                "RequestEntityTooLarge",
                f"A load balancer sends a function at most {MAX_ALB_BYTES} bytes of body "
                f"(got {len(request.body)})",
            )
        origin = forwarding(request, self.port)
        pairs = request.headers + forwarded_headers(request, origin)
        headers = group([(name.lower(), value) for name, value in pairs])
        raw_path, _, raw_query = request.target.partition("?")
        query = group([_raw_pair(part) for part in raw_query.split("&") if part])
        body, is_base64 = body_text(request.body)
        event: dict = {
            "requestContext": {"elb": {"targetGroupArn": self.target_group_arn}},
            "httpMethod": request.method,
            "path": raw_path,
        }
        if self.multi_value:
            event["multiValueQueryStringParameters"] = query
            event["multiValueHeaders"] = headers
        else:
            event["queryStringParameters"] = {k: v[-1] for k, v in query.items()}
            event["headers"] = {k: v[-1] for k, v in headers.items()}
        event["body"] = body or ""
        event["isBase64Encoded"] = is_base64
        return json.dumps(event).encode()

    def to_response(self, outcome: Outcome) -> Response:
        if outcome.error_type == "Sandbox.Timedout":
            return alb_error(504)
        if outcome.failed:
            return alb_error(502)
        try:
            if len(outcome.body) > MAX_ALB_BYTES:
                raise MalformedResult(
                    f"the response is {len(outcome.body)} bytes, over ALB's {MAX_ALB_BYTES}"
                )
            return self._target_response(parsed(outcome.body))
        except MalformedResult as error:
            return refused("ALB", error, alb_error(502))

    def _target_response(self, result: object) -> Response:
        if not isinstance(result, dict):
            raise MalformedResult(
                f"expected an object with statusCode, got {type(result).__name__}"
            )
        status = status_of(result)
        description = result.get("statusDescription")
        if description is not None and not isinstance(description, str):
            raise MalformedResult(f"statusDescription must be a string, got {description!r}")
        if self.multi_value:
            pairs = multi_value_pairs(header_map(result, "multiValueHeaders"), "multiValueHeaders")
        else:
            pairs = list(header_map(result, "headers").items())
        return Response(status, body_of(result), response_headers(pairs))


def alb_error(status: int) -> Response:
    """The page a load balancer answers with when its target fails."""
    title = {502: "502 Bad Gateway", 504: "504 Gateway Time-out"}[status]
    page = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n"
    )
    return Response(status, page.encode(), [("Content-Type", "text/html")])


def target_group_arn(settings: Settings) -> str:
    """The ARN of a target group named after the function (letters, digits and hyphens, at
    most 32), its id the same for the same function."""
    name = re.sub(r"[^A-Za-z0-9-]", "-", settings.function_name)[:32].strip("-") or "klr"
    key = f"{settings.account_id}:{settings.region}:{settings.function_name}".encode()
    return (
        f"arn:aws:elasticloadbalancing:{settings.region}:{settings.account_id}:"
        f"targetgroup/{name}/{hashlib.sha256(key).hexdigest()[:16]}"
    )


def _raw_pair(part: str) -> tuple[str, str]:
    name, _, value = part.partition("=")
    return name, value
