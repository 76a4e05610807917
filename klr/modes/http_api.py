"""HTTP API mode (EVENT_TYPE=HTTP_API): API Gateway HTTP APIs' Lambda integration, payload 2.0.

The request becomes a 2.0 event: lower-case headers with repeated values comma-joined, the
Cookie header as `cookies`, the path and query string as sent in `rawPath`/`rawQueryString`.
The result follows 2.0's rules: an object with `statusCode` is `{statusCode, headers, cookies,
body, isBase64Encoded}`, each cookie one Set-Cookie; any other JSON is the body of a 200
`application/json` answer, exactly as returned (a string keeps its quotes, as Function URLs
show it on the wire). A function error, or a result that cannot be sent, is the service's 500
`{"message":"Internal Server Error"}` (its reason logged), a timeout its 503.

A streamed result of type `application/vnd.awslambda.http-integration-response` is Lambda's
HTTP integration stream: a JSON prelude (statusCode, headers, cookies), eight NUL bytes, then
the body, which is relayed as it arrives. Any other streamed result is the body as it is.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from urllib.parse import parse_qsl

from klr.config import Settings
from klr.http import Request, Response, discard
from klr.invokers import Outcome
from klr.modes import (
    Forwarding,
    body_text,
    forwarded_headers,
    forwarding,
    group,
    json_response,
)
from klr.modes.results import (
    MalformedResult,
    body_of,
    header_map,
    parsed,
    refused,
    response_headers,
    status_of,
    with_content_type,
)

PRELUDE_TYPE = "application/vnd.awslambda.http-integration-response"
PRELUDE_END = b"\0" * 8
# A prelude is a status and a few headers: one that has not ended by this size never will.
MAX_PRELUDE_BYTES = 64 * 1024


class HttpApiMode:
    streams = True
    service = "HTTP API"

    def __init__(self, settings: Settings):
        self.account_id = settings.account_id
        self.port = settings.port

    # The request

    def to_event(self, request: Request) -> bytes:
        origin = forwarding(request, self.port)
        raw_path, _, raw_query = request.target.partition("?")
        headers, cookies = {}, []
        pairs = request.headers + forwarded_headers(request, origin)
        for name, values in group([(k.lower(), v) for k, v in pairs]).items():
            if name == "cookie":
                cookies = [c.strip() for v in values for c in v.split(";") if c.strip()]
            else:
                headers[name] = ",".join(values)
        query = group(parse_qsl(raw_query, keep_blank_values=True))
        body, is_base64 = body_text(request.body)
        now = time.time()
        event: dict = {"version": "2.0", "routeKey": "$default", "rawPath": raw_path}
        event["rawQueryString"] = raw_query
        if cookies:
            event["cookies"] = cookies
        event["headers"] = headers
        if query:
            event["queryStringParameters"] = {k: ",".join(v) for k, v in query.items()}
        event["requestContext"] = {
            "accountId": self.account_id,
            **self.api_fields(origin),
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": request.version,
                "sourceIp": origin.source_ip,
                "userAgent": request.header("user-agent"),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        }
        if body is not None:
            event["body"] = body
        event["isBase64Encoded"] = is_base64
        return json.dumps(event).encode()

    def api_fields(self, origin: Forwarding) -> dict:
        """apiId, domainName, domainPrefix: an HTTP API's are its host's."""
        return {
            "apiId": "klr",
            "domainName": origin.host,
            "domainPrefix": origin.host.split(".")[0],
        }

    # The answer

    def failure(self, timed_out: bool = False) -> Response:
        """The service's answer to a function error or a result it cannot send."""
        if timed_out:
            return json_response(503, {"message": "Service Unavailable"})
        return json_response(500, {"message": "Internal Server Error"})

    def to_response(self, outcome: Outcome) -> Response | Awaitable[Response]:
        if outcome.stream is not None:
            if outcome.content_type.split(";")[0].strip().lower() == PRELUDE_TYPE:
                return self._integration_stream(outcome)
            return Response(
                outcome.status,
                headers=[("Content-Type", outcome.content_type or "application/octet-stream")],
                stream=outcome.stream,
                trailers=outcome.stream.trailers,
            )
        if outcome.failed:
            return self.failure(outcome.error_type == "Sandbox.Timedout")
        try:
            return v2_response(outcome.body)
        except MalformedResult as error:
            return refused(self.service, error, self.failure())

    async def _integration_stream(self, outcome: Outcome) -> Response:
        """Read the prelude, then answer with its status and headers and relay the rest."""
        stream = outcome.stream
        try:
            prelude, rest = await _prelude(stream)
            head = parsed(prelude)
            if not isinstance(head, dict):
                raise MalformedResult(f"the prelude must be a JSON object, got {prelude[:100]!r}")
            status = status_of(head) if "statusCode" in head else 200
            headers = head_headers(head)
        except MalformedResult as error:
            asyncio.ensure_future(discard(stream))  # the runtime finishes its response
            return refused(self.service, error, self.failure())
        except Exception as error:  # the stream broke off: its runtime died or was killed
            return refused(self.service, error, self.failure())
        return Response(
            status,
            headers=with_content_type(headers, "application/octet-stream"),
            stream=_relayed(rest, stream),
            trailers=stream.trailers,
        )


def v2_response(body: bytes) -> Response:
    """A function's result by payload 2.0's rules."""
    result = parsed(body)
    if not isinstance(result, dict) or "statusCode" not in result:
        return Response(200, body, [("Content-Type", "application/json")])
    status = status_of(result)
    headers = with_content_type(head_headers(result), "application/json")
    return Response(status, body_of(result), headers)


def head_headers(result: dict) -> list[tuple[str, str]]:
    """`headers`, then one Set-Cookie for each of `cookies`."""
    cookies = result.get("cookies") or []
    if not isinstance(cookies, list) or not all(isinstance(c, str) for c in cookies):
        raise MalformedResult("cookies must be a list of strings")
    pairs = list(header_map(result, "headers").items())
    return response_headers(pairs + [("Set-Cookie", cookie) for cookie in cookies])


async def _prelude(stream) -> tuple[bytes, bytes]:
    """The prelude and what came after its eight NUL bytes in the same chunks, from a
    runtime's stream (klr/runtime_api.py's _Relay, whose trailers() are the runtime's)."""
    buffered = b""
    async for chunk in stream:
        buffered += chunk
        end = buffered.find(PRELUDE_END)
        if end >= 0:
            return buffered[:end], buffered[end + len(PRELUDE_END) :]
        if len(buffered) > MAX_PRELUDE_BYTES:
            raise MalformedResult(
                f"the response stream's prelude did not end within {MAX_PRELUDE_BYTES} bytes"
            )
    failed = "; ".join(f"{name}: {value}" for name, value in stream.trailers())
    raise MalformedResult(
        "the response stream ended before its prelude's eight NUL bytes"
        + (f" (the function failed: {failed})" if failed else "")
    )


async def _relayed(first: bytes, stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in stream:
        yield chunk
