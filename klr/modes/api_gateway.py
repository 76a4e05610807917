"""API Gateway mode (EVENT_TYPE=API_GATEWAY): REST API proxy integration, payload format 1.0.

The request becomes a proxy event; the function's `{statusCode, headers, multiValueHeaders,
body, isBase64Encoded}` becomes the response. Like API Gateway, anything else, and any function
failure, is a 502 `{"message": "Internal server error"}`; the reason goes to the log.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from urllib.parse import parse_qsl

from klr.config import Settings
from klr.http import Request, Response, check_field
from klr.invokers import Outcome
from klr.log import log
from klr.modes import (
    SERVER_HEADERS,
    Forwarding,
    body_text,
    forwarding,
    group,
    json_response,
)

INTERNAL_ERROR = {"message": "Internal server error"}
# What an open route's caller identity holds: only the address and the user agent are known.
IDENTITY_FIELDS = (
    "accessKey",
    "accountId",
    "apiKey",
    "apiKeyId",
    "caller",
    "cognitoAuthenticationProvider",
    "cognitoAuthenticationType",
    "cognitoIdentityId",
    "cognitoIdentityPoolId",
    "principalOrgId",
    "user",
    "userArn",
)


class ApiGatewayMode:
    streams = False

    def __init__(self, settings: Settings):
        self.account_id = settings.account_id
        self.port = settings.port

    def to_event(self, request: Request) -> bytes:
        path = request.path
        origin = forwarding(request, self.port)
        headers = group(request.headers + _forwarded_headers(request, origin))
        query = group(parse_qsl(request.query, keep_blank_values=True))
        domain = origin.host
        now = time.time()
        body, is_base64 = body_text(request.body)
        resource = "/{proxy+}" if path != "/" else "/"
        event = {
            "resource": resource,
            "path": path,
            "httpMethod": request.method,
            "headers": {k: v[-1] for k, v in headers.items()} or None,
            "multiValueHeaders": headers or None,
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": {"proxy": path.lstrip("/")} if path != "/" else None,
            "stageVariables": None,
            "requestContext": {
                "accountId": self.account_id,
                "apiId": "klr",
                "domainName": domain,
                "domainPrefix": domain.split(".")[0],
                "extendedRequestId": str(uuid.uuid4()),
                "httpMethod": request.method,
                "identity": {
                    **dict.fromkeys(IDENTITY_FIELDS),
                    "sourceIp": origin.source_ip,
                    "userAgent": request.header("user-agent") or None,
                },
                "path": path,
                "protocol": request.version,
                "requestId": str(uuid.uuid4()),
                "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "requestTimeEpoch": int(now * 1000),
                "resourceId": "klr",
                "resourcePath": resource,
                "stage": "$default",
            },
            "body": body,
            "isBase64Encoded": is_base64,
        }
        return json.dumps(event).encode()

    def to_response(self, outcome: Outcome) -> Response:
        if outcome.error_type == "Sandbox.Timedout":
            return json_response(504, {"message": "Endpoint request timed out"})
        if outcome.failed:
            return json_response(502, INTERNAL_ERROR)
        try:
            return _proxy_response(json.loads(outcome.body))
        except (ValueError, TypeError, RecursionError, binascii.Error) as error:
            log(
                f"Execution failed due to configuration error: Malformed Lambda proxy response: {error}"
            )
            return json_response(502, INTERNAL_ERROR)


def _proxy_response(result: object) -> Response:
    if not isinstance(result, dict):
        raise TypeError(f"expected an object with statusCode, got {type(result).__name__}")
    status = result.get("statusCode")
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise TypeError(f"statusCode must be an integer HTTP status, got {status!r}")
    body = result.get("body")
    if body is not None and not isinstance(body, str):
        raise TypeError(f"body must be a string, got {type(body).__name__}")
    raw = (body or "").encode()
    if result.get("isBase64Encoded"):
        raw = base64.b64decode(raw, validate=True)
    single = result.get("headers") or {}
    multi = result.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        raise TypeError("headers and multiValueHeaders must be objects")
    overridden = {name.lower() for name in multi}
    headers = [
        (name, _text(value)) for name, value in single.items() if name.lower() not in overridden
    ]
    if not all(isinstance(values, list) for values in multi.values()):
        raise TypeError("each multiValueHeaders entry must be a list")
    headers += [(name, _text(value)) for name, values in multi.items() for value in values]
    headers = [(name, value) for name, value in headers if name.lower() not in SERVER_HEADERS]
    for name, value in headers:
        check_field(name, value)  # no header can split the response or forge another
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return Response(status, raw, headers)


def _forwarded_headers(request: Request, origin: Forwarding) -> list[tuple[str, str]]:
    """The X-Forwarded-For/Proto/Port headers API Gateway adds, where the request has none."""
    present = {name.lower() for name, _ in request.headers}
    added = [
        ("X-Forwarded-For", origin.source_ip),
        ("X-Forwarded-Proto", origin.proto),
        ("X-Forwarded-Port", origin.port),
    ]
    return [(name, value) for name, value in added if name.lower() not in present and value]


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)
