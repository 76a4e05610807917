"""The server's exception types, and the one shape of every error it answers with: a status
and `{errorType, errorMessage}`.

The HTTP layer, the Runtime API, the front door and the event modes all raise ApiError; the
message says what went wrong and, where the caller can do something, what to do.
"""

from __future__ import annotations

import json
from http import HTTPStatus


class ApiError(Exception):
    """A request the server refuses, answered with `status` and a JSON error body."""

    def __init__(self, status: int, error_type: str, message: str):
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message

    def body(self) -> bytes:
        return error_body(self.error_type, self.message)


def error_body(error_type: str, message: str) -> bytes:
    """Lambda's error document, as the Runtime API, the Invoke API and the runtimes write it."""
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


class HttpError(ApiError):
    """Bytes that are not acceptable HTTP/1.1: answered with `status`, then the connection
    closes. The error type is the status's name (BadRequest, RequestHeaderFieldsTooLarge...)."""

    def __init__(self, status: int, message: str):
        name = HTTPStatus(status).phrase.replace(" ", "").replace("-", "")
        super().__init__(status, name, message)


class SettingsError(ValueError):
    """A setting has a value the server cannot use; the message says which and what to do."""


class QueueFull(Exception):
    """Every invoker is busy and the queue holds KLR_QUEUE_SIZE requests already."""
