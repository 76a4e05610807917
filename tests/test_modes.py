"""Event modes as functions: a request parsed by the server's own reader becomes an event, and
a function's result becomes a response, with no process in between."""

from __future__ import annotations

import base64
import json
import re
import time

import pytest

from klr.config import Settings
from klr.errors import ApiError, SettingsError
from klr.http import Response, parse_request
from klr.invokers import Outcome
from klr.modes import forwarding, mode_for
from klr.modes.api_gateway import ApiGatewayMode


def request(head: str, body: bytes = b"", peer: str = "198.51.100.7"):
    data = head.replace("\n", "\r\n").encode() + b"\r\n" + body
    parsed = parse_request(data)
    assert parsed is not None
    parsed.peer = peer
    return parsed


def gateway_event(head: str, body: bytes = b"") -> dict:
    mode = ApiGatewayMode(Settings(port=8080))
    return json.loads(mode.to_event(request(head, body)))


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ("", ("198.51.100.7", "http", "8080", "fn.example")),
        (
            "X-Forwarded-For: 203.0.113.9, 10.0.0.1\nX-Forwarded-Proto: https\n",
            ("203.0.113.9", "https", "443", "fn.example"),
        ),
        (
            'Forwarded: for="[2001:db8::17]:4711";proto=https;host=api.example:8443, for=10.1.1.1\n',
            ("2001:db8::17", "https", "8443", "api.example:8443"),
        ),
        ("Forwarded: for=192.0.2.60;proto=http\n", ("192.0.2.60", "http", "80", "fn.example")),
        # What a client writes is data: a value that is no address is not taken as one.
        ("X-Forwarded-For: <script>, 1.2.3.4\n", ("198.51.100.7", "http", "8080", "fn.example")),
        (
            "Forwarded: for=unknown\nX-Forwarded-Port: 9443\n",
            ("198.51.100.7", "http", "9443", "fn.example"),
        ),
    ],
)
def test_forwarding_reads_x_forwarded_then_forwarded_then_the_connection(headers, expected):
    """Checklist 84: Forwarded and X-Forwarded-* give sourceIp, protocol and domain name."""
    origin = forwarding(request(f"GET / HTTP/1.1\nHost: fn.example\n{headers}"), 8080)
    assert (origin.source_ip, origin.proto, origin.port, origin.host) == expected


def test_api_gateway_event_has_the_request_context_of_an_open_route():
    """Checklist 72: every v1 field; identity as API Gateway sends it, no authorizer."""
    event = gateway_event(
        "POST /orders/a%20b?x=1&x=2&flag HTTP/1.1\nHost: api.example\nUser-Agent: curl/8\n"
        "Cookie: a=1\nContent-Length: 2\n",
        b"hi",
    )
    context = event["requestContext"]
    assert "authorizer" not in context
    identity = context["identity"]
    assert identity["sourceIp"] == "198.51.100.7"
    assert identity["userAgent"] == "curl/8"
    assert identity["cognitoIdentityId"] is None and identity["userArn"] is None
    assert event["path"] == "/orders/a b" and context["path"] == "/orders/a b"
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "flag": [""]}
    assert event["queryStringParameters"] == {"x": "2", "flag": ""}
    assert (event["body"], event["isBase64Encoded"]) == ("hi", False)
    assert context["httpMethod"] == "POST" and context["domainName"] == "api.example"


def test_api_gateway_event_adds_the_x_forwarded_headers_api_gateway_adds():
    """The X-Forwarded-For/Proto/Port headers, from the Forwarded header where the request has
    no X-Forwarded-* of its own; a client's own X-Forwarded-* are kept as sent."""
    event = gateway_event(
        "GET / HTTP/1.1\nHost: api.example\nForwarded: for=203.0.113.5;proto=https\n"
    )
    assert event["headers"]["X-Forwarded-For"] == "203.0.113.5"
    assert event["headers"]["X-Forwarded-Proto"] == "https"
    assert event["headers"]["X-Forwarded-Port"] == "443"
    assert event["requestContext"]["identity"]["sourceIp"] == "203.0.113.5"
    kept = gateway_event("GET / HTTP/1.1\nHost: h\nX-Forwarded-For: 192.0.2.1, 10.0.0.2\n")
    assert kept["multiValueHeaders"]["X-Forwarded-For"] == ["192.0.2.1, 10.0.0.2"]
    assert kept["headers"]["X-Forwarded-Port"] == "8080"


def test_api_gateway_event_carries_a_binary_body_as_base64():
    event = gateway_event("PUT / HTTP/1.1\nHost: h\nContent-Length: 3\n", b"\xff\x00\xfe")
    assert (event["body"], event["isBase64Encoded"]) == ("/wD+", True)


# The same requests in every HTTP mode: methods, escaped paths, repeated query keys, cookies,
# binary bodies and large headers.
SAME_REQUESTS = {
    "escaped path, repeated keys, cookies": (
        "DELETE /a%20b/c%2Fd?x=1&x=2&e=%20%26&flag HTTP/1.1\nHost: api.example\n"
        "User-Agent: curl/8\nCookie: s=1; t=2\nCookie: u=3\nX-Twice: one\nx-twice: two\n",
        b"",
    ),
    "binary body": ("PUT /up HTTP/1.1\nHost: h\nContent-Length: 3\n", b"\xff\x00\xfe"),
    "text body": ("POST / HTTP/1.1\nHost: h\nContent-Length: 6\n", "héllo".encode()),
    # Four 8,000-byte lines: under the server's 8 KB per line, 32 KB in all.
    "large header": (
        "GET / HTTP/1.1\nHost: h\n" + "".join(f"X-Big: {n}{'b' * 7990}\n" for n in range(4)),
        b"",
    ),
}


def v2_event(head: str, body: bytes = b"", mode: str = "HTTP_API", **settings) -> dict:
    chosen = mode_for(Settings(event_type=mode, port=8080, **settings))
    return json.loads(chosen.to_event(request(head, body)))


@pytest.mark.parametrize("mode", ["HTTP_API", "FUNCTION_URL"])
def test_payload_2_event_from_an_escaped_path_repeated_keys_and_cookies(mode):
    """Checklist 74: lower-case headers, repeated values comma-joined, Cookie moved to
    `cookies`, rawPath and rawQueryString as sent; pathParameters and stageVariables absent."""
    event = v2_event(*SAME_REQUESTS["escaped path, repeated keys, cookies"], mode=mode)
    assert (event["version"], event["routeKey"]) == ("2.0", "$default")
    assert event["rawPath"] == "/a%20b/c%2Fd"
    assert event["rawQueryString"] == "x=1&x=2&e=%20%26&flag"
    assert event["cookies"] == ["s=1", "t=2", "u=3"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["x-twice"] == "one,two"
    assert event["headers"]["user-agent"] == "curl/8"
    assert all(name == name.lower() for name in event["headers"])
    assert event["queryStringParameters"] == {"x": "1,2", "e": " &", "flag": ""}
    assert "pathParameters" not in event and "stageVariables" not in event
    assert "body" not in event and event["isBase64Encoded"] is False
    http = event["requestContext"]["http"]
    assert http == {
        "method": "DELETE",
        "path": "/a b/c/d",
        "protocol": "HTTP/1.1",
        "sourceIp": "198.51.100.7",
        "userAgent": "curl/8",
    }


@pytest.mark.parametrize("mode", ["HTTP_API", "FUNCTION_URL"])
def test_payload_2_event_bodies_and_large_headers(mode):
    """Checklist 74: a body that is not text is base64 with isBase64Encoded; text is as sent;
    32 KB of one repeated header arrives whole; no query string means no queryStringParameters or cookies."""
    binary = v2_event(*SAME_REQUESTS["binary body"], mode=mode)
    assert (binary["body"], binary["isBase64Encoded"]) == ("/wD+", True)
    text = v2_event(*SAME_REQUESTS["text body"], mode=mode)
    assert (text["body"], text["isBase64Encoded"]) == ("héllo", False)
    large = v2_event(*SAME_REQUESTS["large header"], mode=mode)
    assert large["headers"]["x-big"] == ",".join(f"{n}{'b' * 7990}" for n in range(4))
    assert "queryStringParameters" not in large and "cookies" not in large
    assert large["rawQueryString"] == ""


def test_http_api_request_context_comes_from_the_forwarded_headers():
    """Checklist 84: sourceIp and domainName through Forwarded / X-Forwarded-*; the time in
    API Gateway's format; the X-Forwarded-* headers HTTP APIs add."""
    event = v2_event(
        "GET / HTTP/1.1\nHost: inner:8080\nForwarded: for=203.0.113.5;proto=https;host=api.example\n"
    )
    context = event["requestContext"]
    assert context["http"]["sourceIp"] == "203.0.113.5"
    assert (context["domainName"], context["domainPrefix"]) == ("api.example", "api")
    assert (context["stage"], context["routeKey"]) == ("$default", "$default")
    assert context["accountId"] == "012345678912"
    assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000", context["time"])
    assert abs(context["timeEpoch"] / 1000 - time.time()) < 60
    assert "authorizer" not in context and "authentication" not in context
    assert event["headers"]["x-forwarded-for"] == "203.0.113.5"
    assert event["headers"]["x-forwarded-proto"] == "https"
    assert event["headers"]["x-forwarded-port"] == "443"


def test_function_url_request_context_names_the_url():
    """Checklist 77: apiId is the URL id, domainName <url-id>.lambda-url.<region>.on.aws,
    routeKey and stage $default, no authorizer (auth type NONE), no pathParameters."""
    event = v2_event(
        "GET /x HTTP/1.1\nHost: h\n", mode="FUNCTION_URL", region="eu-west-1", function_name="f"
    )
    context = event["requestContext"]
    url_id = context["apiId"]
    assert re.fullmatch(r"[a-z0-9]{32}", url_id)
    assert context["domainName"] == f"{url_id}.lambda-url.eu-west-1.on.aws"
    assert context["domainPrefix"] == url_id
    assert (context["routeKey"], context["stage"]) == ("$default", "$default")
    assert "authorizer" not in context and context["authentication"] is None
    assert "pathParameters" not in event
    again = v2_event(
        "GET / HTTP/1.1\nHost: h\n", mode="FUNCTION_URL", region="eu-west-1", function_name="f"
    )
    other = v2_event("GET / HTTP/1.1\nHost: h\n", mode="FUNCTION_URL", function_name="g")
    assert again["requestContext"]["apiId"] == url_id != other["requestContext"]["apiId"]


def answer(mode: str, body: bytes, **outcome) -> Response:
    response = mode_for(Settings(event_type=mode)).to_response(Outcome(body, **outcome))
    assert isinstance(response, Response)
    return response


@pytest.mark.parametrize("mode", ["HTTP_API", "FUNCTION_URL"])
def test_payload_2_response_with_status_headers_cookies_and_base64(mode):
    """Checklist 75: each cookie its own Set-Cookie; a base64 body decoded; the server's
    framing headers dropped."""
    result = {
        "statusCode": 201,
        "headers": {"X-One": "1", "X-Num": 7, "Content-Length": "99", "Connection": "close"},
        "cookies": ["a=1; Path=/", "b=2; HttpOnly"],
        "body": base64.b64encode(b"\x00\xff").decode(),
        "isBase64Encoded": True,
    }
    response = answer(mode, json.dumps(result).encode())
    assert (response.status, response.body) == (201, b"\x00\xff")
    assert response.headers == [
        ("X-One", "1"),
        ("X-Num", "7"),
        ("Set-Cookie", "a=1; Path=/"),
        ("Set-Cookie", "b=2; HttpOnly"),
        ("Content-Type", "application/json"),
    ]


@pytest.mark.parametrize("mode", ["HTTP_API", "FUNCTION_URL"])
@pytest.mark.parametrize(
    "result", [b'"Hello, world!"', b"42", b"[1, 2]", b'{"message": "hi"}', b"null"]
)
def test_payload_2_result_without_status_code_is_a_200_json_body(mode, result):
    """Checklist 75: valid JSON that is not an object with statusCode is the body of a 200
    application/json answer, as returned: a string keeps its quotes (what a Function URL
    sends on the wire: 15 bytes for "Hello, world!")."""
    response = answer(mode, result)
    assert (response.status, response.body) == (200, result)
    assert response.headers == [("Content-Type", "application/json")]


@pytest.mark.parametrize(
    ("mode", "failed", "timed_out", "malformed"),
    [
        ("HTTP_API", (500, "Internal Server Error"), (503, "Service Unavailable"), 500),
        ("FUNCTION_URL", (502, "Internal Server Error"), (502, "Internal Server Error"), 502),
    ],
)
def test_payload_2_errors_are_the_services_answers(mode, failed, timed_out, malformed, capsys):
    """Checklist 76: a function error is HTTP API's 500, a Function URL's 502; a timeout HTTP
    API's 503; a result that cannot be sent the same error, its reason logged."""
    error = answer(mode, b'{"errorMessage": "x"}', status=500, error_type="Unhandled")
    assert (error.status, json.loads(error.body)) == (failed[0], {"message": failed[1]})
    late = answer(mode, b"{}", status=504, error_type="Sandbox.Timedout")
    assert (late.status, json.loads(late.body)) == (timed_out[0], {"message": timed_out[1]})
    for result, reason in [
        ({"statusCode": "200"}, "statusCode must be an integer"),
        ({"statusCode": 200, "body": {"a": 1}}, "body must be a string"),
        ({"statusCode": 200, "body": "%%%", "isBase64Encoded": True}, "not base64"),
        ({"statusCode": 200, "headers": {"X-Evil": "a\r\nSet-Cookie: b"}}, "control"),
        ({"statusCode": 200, "headers": {"Bad Name": "a"}}, "not an HTTP token"),
        ({"statusCode": 200, "cookies": ["a=1\nX: y"]}, "control"),
        ({"statusCode": 200, "cookies": "a=1"}, "cookies must be a list"),
    ]:
        response = answer(mode, json.dumps(result).encode())
        assert response.status == malformed, result
        assert json.loads(response.body) == {"message": "Internal Server Error"}
        assert reason in capsys.readouterr().out
    assert answer(mode, b"not json").status == malformed


def alb_event(head: str, body: bytes = b"", multi: bool = False) -> dict:
    mode = mode_for(Settings(event_type="ALB", alb_multi_value_headers=multi, function_name="fn"))
    return json.loads(mode.to_event(request(head, body)))


def test_alb_event_keeps_the_query_encoded_and_takes_the_last_of_repeated_values():
    """Checklist 78: the target group's ARN, the path and query as sent (ALB decodes
    neither), lower-case headers, single values by default (the last sent), no multiValue*."""
    event = alb_event(*SAME_REQUESTS["escaped path, repeated keys, cookies"])
    assert re.fullmatch(
        r"arn:aws:elasticloadbalancing:us-east-1:012345678912:targetgroup/fn/[0-9a-f]{16}",
        event["requestContext"]["elb"]["targetGroupArn"],
    )
    assert (event["httpMethod"], event["path"]) == ("DELETE", "/a%20b/c%2Fd")
    assert event["queryStringParameters"] == {"x": "2", "e": "%20%26", "flag": ""}
    assert event["headers"]["x-twice"] == "two"
    assert event["headers"]["cookie"] == "u=3"
    assert event["headers"]["x-forwarded-for"] == "198.51.100.7"
    assert all(name == name.lower() for name in event["headers"])
    assert "multiValueHeaders" not in event and "multiValueQueryStringParameters" not in event
    assert (event["body"], event["isBase64Encoded"]) == ("", False)


def test_alb_event_with_multi_value_headers_enabled():
    """Checklist 78: with KLR_ALB_MULTI_VALUE_HEADERS=true, multiValueHeaders and
    multiValueQueryStringParameters in place of the single-value fields."""
    event = alb_event(*SAME_REQUESTS["escaped path, repeated keys, cookies"], multi=True)
    assert event["multiValueQueryStringParameters"] == {
        "x": ["1", "2"],
        "e": ["%20%26"],
        "flag": [""],
    }
    assert event["multiValueHeaders"]["x-twice"] == ["one", "two"]
    assert event["multiValueHeaders"]["cookie"] == ["s=1; t=2", "u=3"]
    assert "headers" not in event and "queryStringParameters" not in event
    binary = alb_event(*SAME_REQUESTS["binary body"], multi=True)
    assert (binary["body"], binary["isBase64Encoded"]) == ("/wD+", True)
    large = alb_event(*SAME_REQUESTS["large header"])
    assert large["headers"]["x-big"] == "3" + "b" * 7990
    assert alb_event(*SAME_REQUESTS["text body"])["body"] == "héllo"


def test_alb_refuses_a_request_body_over_1_mb():
    """Checklist 78: ALB sends a function at most 1 MB of body."""
    mode = mode_for(Settings(event_type="ALB"))
    size = 1024 * 1024 + 1
    with pytest.raises(ApiError) as refused:
        mode.to_event(request(f"POST / HTTP/1.1\nHost: h\nContent-Length: {size}\n", b"x" * size))
    assert refused.value.status == 413
    assert json.loads(mode.to_event(request("POST / HTTP/1.1\nHost: h\nContent-Length: 1\n", b"x")))


def alb_answer(result: object, multi: bool = False, **outcome) -> Response:
    mode = mode_for(Settings(event_type="ALB", alb_multi_value_headers=multi))
    body = result if isinstance(result, bytes) else json.dumps(result).encode()
    return mode.to_response(Outcome(body, **outcome))


def test_alb_response_single_and_multi_value_headers():
    """Checklist 78: headers, or multiValueHeaders when enabled; a base64 body decoded;
    statusDescription taken as text (the status line keeps the standard phrase)."""
    result = {
        "statusCode": 404,
        "statusDescription": "404 Not Found",
        "headers": {"X-One": "1", "Content-Type": "text/plain"},
        "multiValueHeaders": {"X-Many": ["a", "b"]},
        "body": base64.b64encode(b"\x00gone").decode(),
        "isBase64Encoded": True,
    }
    single = alb_answer(result)
    assert (single.status, single.body) == (404, b"\x00gone")
    assert single.headers == [("X-One", "1"), ("Content-Type", "text/plain")]
    multi = alb_answer(result, multi=True)
    assert multi.headers == [("X-Many", "a"), ("X-Many", "b")]


def test_alb_answers_502_for_a_malformed_result_an_error_or_over_1_mb(capsys):
    """Checklist 78: a malformed result is ALB's 502 page, its reason logged; a function error
    502, a timeout 504; a response over 1 MB 502."""
    for result, reason in [
        ({"body": "no status"}, "statusCode must be an integer"),
        ({"statusCode": 200, "statusDescription": 200}, "statusDescription must be a string"),
        ({"statusCode": 200, "body": 5}, "body must be a string"),
        ({"statusCode": 200, "headers": {"X": "a\nb"}}, "control"),
        ({"statusCode": 200, "multiValueHeaders": {"X": "a"}}, "must be a list"),
        ("just a string", "expected an object"),
        ({"statusCode": 200, "body": "x" * (1024 * 1024)}, "over ALB's 1048576"),
    ]:
        response = alb_answer(result, multi="multiValueHeaders" in result)
        assert response.status == 502, result
        assert b"<title>502 Bad Gateway</title>" in response.body
        assert reason in capsys.readouterr().out
    assert alb_answer(b"{}", status=500, error_type="Unhandled").status == 502
    assert alb_answer(b"{}", status=504, error_type="Sandbox.Timedout").status == 504


@pytest.mark.parametrize("value", ["true", "TRUE", "false", "", "yes"])
def test_alb_multi_value_headers_setting_is_true_or_false(value):
    """KLR_ALB_MULTI_VALUE_HEADERS takes true or false and says so for anything else."""
    env = {"KLR_ALB_MULTI_VALUE_HEADERS": value}
    if value == "yes":
        with pytest.raises(SettingsError, match="KLR_ALB_MULTI_VALUE_HEADERS must be true or"):
            Settings.from_env(env)
    else:
        assert Settings.from_env(env).alb_multi_value_headers is (value.lower() == "true")


@pytest.mark.parametrize("mode", ["API_GATEWAY", "HTTP_API", "FUNCTION_URL", "ALB"])
@pytest.mark.parametrize("name", list(SAME_REQUESTS))
def test_every_http_mode_makes_an_event_of_the_same_requests(mode, name):
    """Checklists 72, 74, 77, 78: each of the same requests becomes an event in every HTTP mode,
    carrying its method, its body (base64 when not text) and its large headers."""
    head, body = SAME_REQUESTS[name]
    event = json.loads(mode_for(Settings(event_type=mode)).to_event(request(head, body)))
    method = event.get("httpMethod") or event["requestContext"]["http"]["method"]
    assert method == head.split()[0]
    text = event.get("body") or ""
    sent = base64.b64decode(text) if event["isBase64Encoded"] else text
    assert sent == (body if event["isBase64Encoded"] else body.decode())
    headers = event.get("headers") or event.get("multiValueHeaders")
    big = [value for key, value in headers.items() if key.lower() == "x-big"]
    assert bool(big) == (name == "large header")
