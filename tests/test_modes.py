"""Event modes as functions: a request parsed by the server's own reader becomes an event, and
a function's result becomes a response, with no process in between."""

from __future__ import annotations

import json

import pytest

from klr.config import Settings
from klr.http import parse_request
from klr.modes import forwarding
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
