"""The Lambda Runtime API (2018-06-01) that one bootstrap process talks to.

Status codes, headers and error bodies follow Lambda's (see spec/lambda-fidelity.md §1, §7 A-B).
The state itself lives on the Invoker; this module is the HTTP side of it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import re
from collections.abc import Awaitable

from klr.config import MAX_RESPONSE_BYTES, MAX_STREAMED_RESPONSE_BYTES
from klr.errors import ApiError
from klr.http import Deferred, Request, Response, discard, error_response
from klr.invokers import Invocation, Invoker, Outcome
from klr.log import log

PREFIX = "/2018-06-01/runtime/"
INVOCATION_ROUTE = re.compile(r"invocation/([^/]+)/(response|error)")
# Lambda keeps an error type only in this shape; anything else becomes *.Unknown.
ERROR_TYPE_SHAPE = re.compile(r"(Runtime|Function)\.[A-Z][a-zA-Z]+")
ERROR_TRAILERS = ("lambda-runtime-function-error-type", "lambda-runtime-function-error-body")
ACCEPTED_BODY = b'{"status":"OK"}'
# How long a dropped result waits for its runtime's exit to be noticed.
EXIT_GRACE_SECONDS = 0.5
JSON = ("Content-Type", "application/json")
STREAM_TOO_LARGE = (
    f"Response payload size exceeded maximum allowed payload size "
    f"({MAX_STREAMED_RESPONSE_BYTES} bytes) for a streamed response."
)


def normalized_error_type(raw: str) -> str:
    if not raw or ERROR_TYPE_SHAPE.fullmatch(raw):
        return raw or "Unhandled"
    return "Function.Unknown" if raw.startswith("Function.") else "Runtime.Unknown"


def _accepted() -> Response:
    return Response(202, ACCEPTED_BODY, [JSON])


class RuntimeApi:
    """Routes one invoker's Runtime API requests to it."""

    def __init__(self, invoker: Invoker):
        self.invoker = invoker

    def handle(self, request: Request) -> Response | Deferred | Awaitable[Response]:
        target = request.target
        route = target[len(PREFIX) :] if target.startswith(PREFIX) else ""
        try:
            if route == "invocation/next" and request.method == "GET":
                deferred = Deferred()
                deferred.on_gone = self.invoker.next_invocation(
                    lambda invocation: deferred.send(self._next_answer(invocation))
                )
                return deferred
            if route == "init/error" and request.method == "POST":
                self.invoker.fail_init(error_outcome(request, status=502))
                return _accepted()
            match = INVOCATION_ROUTE.fullmatch(route)
            if match and request.method == "POST":
                if request.stream is not None:
                    return self._streamed_result(request, match.group(1))
                return self._result(request, match.group(1), match.group(2))
        except ApiError as error:
            return error_response(error.status, error.error_type, error.message)
        return error_response(
            404, "NotFound", f"No Runtime API route {request.method} {request.target}"
        )

    def streams(self, request: Request) -> bool:
        """A streamed response is relayed as it arrives (Lambda's response streaming)."""
        return (
            request.method == "POST"
            and request.header("lambda-runtime-function-response-mode").lower() == "streaming"
            and request.target.endswith("/response")
        )

    def on_broken(self, request: Request, error: Exception) -> None:
        """A result whose body never arrived whole fails its invocation now, not at the timeout.
        A dropped connection may be its runtime dying: the exit, seen a moment later, is then
        the truer error (Runtime.ExitError), so it gets that moment to win."""
        match = INVOCATION_ROUTE.fullmatch(request.target[len(PREFIX) :])
        if not match or request.stream is not None:  # a stream's reader hears of it itself
            return
        request_id, kind = match.groups()
        message = f"The runtime's {kind} could not be read: {error}"
        if isinstance(error, ConnectionError):
            asyncio.get_running_loop().call_later(
                EXIT_GRACE_SECONDS, self._fail_unread, request_id, message
            )
        else:
            self._fail_unread(request_id, message)

    def _fail_unread(self, request_id: str, message: str) -> None:
        current = self.invoker.current
        if current is None or current.id != request_id:
            return  # settled meanwhile, by the runtime's exit for one
        log(f"RequestId: {request_id} Error: {message}")
        self.invoker.finish(request_id, Outcome.error(502, "Runtime.MalformedResponse", message))

    def _next_answer(self, invocation: Invocation) -> Response:
        invoker = self.invoker
        headers = [
            JSON,
            ("Lambda-Runtime-Aws-Request-Id", invocation.id),
            ("Lambda-Runtime-Deadline-Ms", str(invoker.deadline_ms)),
            ("Lambda-Runtime-Invoked-Function-Arn", invoker.settings.function_arn),
        ]
        if invocation.trace_id:
            headers.append(("Lambda-Runtime-Trace-Id", invocation.trace_id))
        if invocation.client_context:
            headers.append(("Lambda-Runtime-Client-Context", invocation.client_context))
        if invocation.cognito_identity:
            headers.append(("Lambda-Runtime-Cognito-Identity", invocation.cognito_identity))
        if invocation.tenant_id:
            headers.append(("Lambda-Runtime-Aws-Tenant-Id", invocation.tenant_id))
        return Response(
            200, invocation.event, headers, undelivered=lambda: invoker.give_back(invocation)
        )

    def _result(self, request: Request, request_id: str, kind: str) -> Response:
        mode = request.header("lambda-runtime-function-response-mode")
        if mode and mode.lower() != "streaming":
            return error_response(
                400, "InvalidFunctionResponseMode", f"Unknown response mode {mode!r}"
            )
        if request.body_too_large:
            self.invoker.finish(
                request_id,
                Outcome.error(
                    502,
                    "Function.ResponseSizeTooLarge",
                    f"Response payload size ({request.body_size} bytes) exceeded maximum "
                    f"allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
                ),
            )
            return error_response(
                413,
                "RequestEntityTooLarge",
                f"Payload exceeds the maximum of {MAX_RESPONSE_BYTES} bytes",
            )
        if kind == "error" or _reports_error(request.trailers):
            outcome = error_outcome(request)
        else:
            outcome = Outcome(request.body, 200, None, request.header("content-type"))
        self.invoker.finish(request_id, outcome)
        return _accepted()

    async def _streamed_result(self, request: Request, request_id: str) -> Response:
        """Hand the body to the invocation's caller as it arrives; answer once all of it has
        been relayed. Error trailers reach the caller after the body, as its trailers. A stream
        that breaks off fails its invocation, after a moment for the runtime's exit to be seen."""
        relay = _Relay(request)
        content_type = request.header("content-type")
        outcome = Outcome(b"", 200, None, content_type, stream=relay)
        try:
            invocation = self.invoker.begin_stream(request_id, outcome)
        except ApiError as error:  # a stale id: the connection closes, the body unread
            return error_response(error.status, error.error_type, error.message)
        try:
            if invocation is None:  # its caller has gone: nobody will read the stream
                await discard(relay)
            await relay.relayed
        except ConnectionError as error:
            # As for a result that never arrived whole: a dying runtime's exit is the truer error.
            asyncio.get_running_loop().call_later(
                EXIT_GRACE_SECONDS,
                self._fail_unread,
                request_id,
                f"The streamed response broke off: {error}",
            )
            return error_response(400, "InvalidResponse", f"The streamed response broke: {error}")
        self.invoker.end_stream(request_id)
        if relay.too_large:
            log(f"RequestId: {request_id} Error: {STREAM_TOO_LARGE}")
            return error_response(413, "RequestEntityTooLarge", STREAM_TOO_LARGE)
        return _accepted()


def _reports_error(trailers: dict[str, str]) -> bool:
    return any(trailers.get(name) for name in ERROR_TRAILERS)


def error_outcome(request: Request, status: int = 500) -> Outcome:
    """An error the runtime reported, body passed through: each client's shape survives."""
    error_type = request.trailers.get(ERROR_TRAILERS[0]) or request.header(
        "lambda-runtime-function-error-type"
    )
    body = request.body
    trailer_body = request.trailers.get(ERROR_TRAILERS[1])
    if trailer_body:
        with contextlib.suppress(binascii.Error):
            body = base64.b64decode(trailer_body)
    return Outcome(body, status, normalized_error_type(error_type))


class _Relay:
    """A streamed response body on its way from the runtime to the caller: `relayed` settles
    once the caller has read all of it (ConnectionError if it broke off)."""

    def __init__(self, request: Request):
        self._request = request
        self._chunks = request.stream
        self.relayed = asyncio.get_running_loop().create_future()
        self.size = 0
        self.too_large = False  # cut off at Lambda's streaming limit, the caller told so

    def __aiter__(self) -> _Relay:
        return self

    async def __anext__(self) -> bytes:
        if self.too_large:
            raise StopAsyncIteration
        try:
            chunk = await self._chunks.__anext__()
        except StopAsyncIteration:
            self._settle(None)
            raise
        except Exception as error:
            self._settle(ConnectionError(str(error)))
            raise
        self.size += len(chunk)
        if self.size > MAX_STREAMED_RESPONSE_BYTES:
            self.too_large = True
            self._settle(None)
            raise StopAsyncIteration
        return chunk

    def _settle(self, error: Exception | None) -> None:
        if not self.relayed.done():
            if error is None:
                self.relayed.set_result(None)
            else:
                self.relayed.set_exception(error)

    def trailers(self) -> list[tuple[str, str]]:
        """The runtime's error trailers, passed on to the caller, or the server's own for a
        stream cut off at the limit."""
        if self.too_large:
            error = {"errorType": "Function.ResponseSizeTooLarge", "errorMessage": STREAM_TOO_LARGE}
            return [
                ("Lambda-Runtime-Function-Error-Type", "Function.ResponseSizeTooLarge"),
                (
                    "Lambda-Runtime-Function-Error-Body",
                    base64.b64encode(json.dumps(error).encode()).decode(),
                ),
            ]
        sent = self._request.trailers
        return [(name.title(), sent[name]) for name in ERROR_TRAILERS if sent.get(name)]

    def error(self) -> Outcome | None:
        """Once the stream has ended: the error its trailers report, or the cut at the limit."""
        if self.too_large:
            return Outcome.error(502, "Function.ResponseSizeTooLarge", STREAM_TOO_LARGE)
        return error_outcome(self._request) if _reports_error(self._request.trailers) else None
