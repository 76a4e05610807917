"""What the HTTP modes share in reading a function's result: its status, headers and body, each
checked, and the service's own answer when a result is not one it can send.

A result is the function's data: a value that does not fit raises MalformedResult, which each
mode answers the way its service does, logging the reason.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable

from klr.http import Response, check_field
from klr.log import log
from klr.modes import SERVER_HEADERS


class MalformedResult(ValueError):
    """A function result the service cannot turn into a response."""


def status_of(result: dict) -> int:
    status = result.get("statusCode")
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise MalformedResult(f"statusCode must be an integer HTTP status, got {status!r}")
    return status


def body_of(result: dict) -> bytes:
    """The body, a string, decoded when `isBase64Encoded` says it is base64."""
    body = result.get("body")
    if body is not None and not isinstance(body, str):
        raise MalformedResult(f"body must be a string, got {type(body).__name__}")
    raw = (body or "").encode()
    if result.get("isBase64Encoded"):
        try:
            return base64.b64decode(raw, validate=True)
        except binascii.Error as error:
            raise MalformedResult(
                f"body is marked isBase64Encoded but is not base64: {error}"
            ) from None
    return raw


def header_map(result: dict, field: str) -> dict:
    value = result.get(field) or {}
    if not isinstance(value, dict):
        raise MalformedResult(f"{field} must be an object, got {type(value).__name__}")
    return value


def multi_value_pairs(headers: dict, field: str) -> list[tuple[str, object]]:
    if not all(isinstance(values, list) for values in headers.values()):
        raise MalformedResult(f"each {field} entry must be a list")
    return [(name, value) for name, values in headers.items() for value in values]


def response_headers(pairs: Iterable[tuple[str, object]]) -> list[tuple[str, str]]:
    """Headers as a response may carry them: values as text, the server's own framing headers
    dropped, and none that could split the response or forge another (checked here, so that
    the reason is logged and the service's error answered)."""
    headers = []
    for name, value in pairs:
        if not isinstance(name, str):
            raise MalformedResult(f"header name {name!r} is not a string")
        if name.lower() in SERVER_HEADERS:
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        try:
            check_field(name, text)
        except ValueError as error:
            raise MalformedResult(str(error)) from None
        headers.append((name, text))
    return headers


def with_content_type(headers: list[tuple[str, str]], default: str) -> list[tuple[str, str]]:
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", default))
    return headers


def parsed(body: bytes) -> object:
    """A result's JSON; MalformedResult when it is not JSON."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:
        raise MalformedResult(f"the result is not JSON: {error}") from None


def refused(service: str, error: Exception, answer: Response) -> Response:
    """The service's answer to a result it cannot send, and the reason in the log."""
    log(f"{service}: the function's result cannot be sent: {error}")
    return answer
