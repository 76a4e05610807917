"""Every error the server answers with has one shape: a status and `{errorType, errorMessage}`.

The HTTP layer, the Runtime API, the front door and the event modes all raise ApiError; the
message says what went wrong and, where the caller can do something, what to do.
"""

from __future__ import annotations

import json


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
