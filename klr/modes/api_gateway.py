"""API Gateway mode (EVENT_TYPE=API_GATEWAY): REST API proxy integration, payload format 1.0.

The request becomes a proxy event; the function's `{statusCode, headers, multiValueHeaders,
body, isBase64Encoded}` becomes the response. Like API Gateway, anything else, and any function
failure, is a 502 `{"message": "Internal server error"}`; the reason goes to the log.
"""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import parse_qsl

from klr.config import Settings
from klr.http import Request, Response
from klr.invokers import Outcome
from klr.log import log
from klr.modes import (
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
    multi_value_pairs,
    parsed,
    response_headers,
    status_of,
    with_content_type,
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
        headers = group(request.headers + forwarded_headers(request, origin))
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
            return _proxy_response(parsed(outcome.body))
        except MalformedResult as error:
            log(
                f"Execution failed due to configuration error: Malformed Lambda proxy response: {error}"
            )
            return json_response(502, INTERNAL_ERROR)


def _proxy_response(result: object) -> Response:
    if not isinstance(result, dict):
        raise MalformedResult(f"expected an object with statusCode, got {type(result).__name__}")
    status = status_of(result)
    body = body_of(result)
    single = header_map(result, "headers")
    multi = header_map(result, "multiValueHeaders")
    overridden = {name.lower() for name in multi}
    pairs = [(name, value) for name, value in single.items() if name.lower() not in overridden]
    pairs += multi_value_pairs(multi, "multiValueHeaders")
    return Response(status, body, with_content_type(response_headers(pairs), "application/json"))
