"""The Lambda Runtime API (2018-06-01) that one bootstrap process talks to.

Status codes, headers and error bodies follow Lambda's (see spec/lambda-fidelity.md §1, §7 A-B).
The state itself lives on the Invoker; this module is the HTTP side of it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re

from klr.config import MAX_RESPONSE_BYTES
from klr.http import Request, Response
from klr.invokers import Invoker, Outcome, RuntimeApiError

PREFIX = "/2018-06-01/runtime/"
INVOCATION_ROUTE = re.compile(r"invocation/([^/]+)/(response|error)")
# Lambda keeps an error type only in this shape; anything else becomes *.Unknown.
ERROR_TYPE_SHAPE = re.compile(r"(Runtime|Function)\.[A-Z][a-zA-Z]+")


def api_error(status: int, error_type: str, message: str) -> Response:
    body = json.dumps({"errorType": error_type, "errorMessage": message}).encode()
    return Response(status, body, [("Content-Type", "application/json")])


ACCEPTED = Response(202, b'{"status":"OK"}', [("Content-Type", "application/json")])


def normalized_error_type(raw: str) -> str:
    if not raw or ERROR_TYPE_SHAPE.fullmatch(raw):
        return raw or "Unhandled"
    return "Function.Unknown" if raw.startswith("Function.") else "Runtime.Unknown"


class RuntimeApi:
    """Routes one invoker's Runtime API requests to it."""

    def __init__(self, invoker: Invoker):
        self.invoker = invoker

    async def handle(self, request: Request) -> Response:
        route = request.path[len(PREFIX) :] if request.path.startswith(PREFIX) else None
        try:
            if route == "invocation/next" and request.method == "GET":
                return await self._next(request)
            if route == "init/error" and request.method == "POST":
                self.invoker.fail_init(self._error_outcome(request, status=502))
                return ACCEPTED
            match = INVOCATION_ROUTE.fullmatch(route or "")
            if match and request.method == "POST":
                return self._result(request, match.group(1), match.group(2))
        except RuntimeApiError as error:
            return api_error(error.status, error.error_type, error.message)
        return api_error(404, "NotFound", f"No Runtime API route {request.method} {request.path}")

    async def _next(self, request: Request) -> Response:
        invoker = self.invoker
        invocation = await invoker.next_invocation()
        headers = [
            ("Content-Type", "application/json"),
            ("Lambda-Runtime-Aws-Request-Id", invocation.id),
            ("Lambda-Runtime-Deadline-Ms", str(invoker.deadline_ms)),
            ("Lambda-Runtime-Invoked-Function-Arn", invoker.settings.function_arn),
        ]
        optional = [
            ("Lambda-Runtime-Trace-Id", invocation.trace_id),
            ("Lambda-Runtime-Client-Context", invocation.client_context),
            ("Lambda-Runtime-Cognito-Identity", invocation.cognito_identity),
            ("Lambda-Runtime-Aws-Tenant-Id", invocation.tenant_id),
        ]
        headers += [(name, value) for name, value in optional if value]
        return Response(200, invocation.event, headers)

    def _result(self, request: Request, request_id: str, kind: str) -> Response:
        mode = request.header("lambda-runtime-function-response-mode")
        if mode and mode.lower() != "streaming":
            return api_error(400, "InvalidFunctionResponseMode", f"Unknown response mode {mode!r}")
        if request.body_too_large:
            self.invoker.finish(
                request_id,
                Outcome.error(
                    502,
                    "Function.ResponseSizeTooLarge",
                    f"Response payload size ({request.body_size} bytes) exceeded maximum allowed "
                    f"payload size ({MAX_RESPONSE_BYTES} bytes).",
                ),
            )
            return api_error(
                413,
                "RequestEntityTooLarge",
                f"Payload exceeds the maximum of {MAX_RESPONSE_BYTES} bytes",
            )
        if kind == "error" or request.trailers.get("lambda-runtime-function-error-type"):
            outcome = self._error_outcome(request)
        else:
            outcome = Outcome(request.body, 200, None, request.header("content-type"))
        self.invoker.finish(request_id, outcome)
        return ACCEPTED

    @staticmethod
    def _error_outcome(request: Request, status: int = 500) -> Outcome:
        """An error the runtime reported, body passed through: each client's shape survives."""
        error_type = request.trailers.get("lambda-runtime-function-error-type") or request.header(
            "lambda-runtime-function-error-type"
        )
        body = request.body
        trailer_body = request.trailers.get("lambda-runtime-function-error-body")
        if trailer_body:
            with contextlib.suppress(binascii.Error):
                body = base64.b64decode(trailer_body)
        return Outcome(body, status, normalized_error_type(error_type))
