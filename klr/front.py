"""The front door on $PORT: health endpoints, the Lambda Invoke API, and the event mode.

Whatever a client sends that reaches a runtime's /next headers (trace id, tenant id, client
context) is checked here, so a bad value is the client's 400 and never an invoker's problem.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Union

from klr import eventstream
from klr.config import MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, Settings
from klr.errors import ApiError, QueueFull
from klr.http import (
    Deferred,
    Request,
    Response,
    discard,
    error_response,
    internal_error,
    read_all,
)
from klr.invokers import Invocation, InvokerPool, Outcome
from klr.log import TAIL_BYTES, log
from klr.modes import Answered, Mode, json_event, json_response

# Requests under this prefix never reach the function.
RESERVED_PREFIX = "/_klr/"
INVOKE_ROUTE = re.compile(r"/2015-03-31/functions/([^/]+)/invocations")
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
STREAM_ROUTE = re.compile(r"/2021-11-15/functions/([^/]+)/response-streaming-invocations")
STREAM_INVOCATION_TYPES = ("RequestResponse", "DryRun")  # Lambda's: a stream needs its caller
# How long a broken stream's answer waits to learn why (the runtime's exit, a timeout).
CUT_SHORT_WAIT_SECONDS = 5.0
LOG_TYPES = ("None", "Tail")
MAX_CLIENT_CONTEXT = 3583  # bytes of base64, as Lambda's Invoke API allows
# Values passed on as Runtime API headers: printable ASCII, as Lambda's own are.
PRINTABLE = re.compile(r"[\x20-\x7e]*")
MAX_TRACE_ID, MAX_TENANT_ID = 2048, 256
# What makes an answer: a Response, or (a mode reading a streamed result's head) one to come.
Answer = Union[Response, Awaitable[Response]]


class FrontDoor:
    def __init__(self, settings: Settings, pool: InvokerPool, mode: Mode):
        self.settings = settings
        self.pool = pool
        self.mode = mode

    def handle(self, request: Request) -> Response | Deferred:
        path = request.path
        if path.startswith(RESERVED_PREFIX):
            return self._health(path)
        try:
            if request.body_too_large:
                raise ApiError(
                    413,
                    "RequestTooLargeException",
                    f"Request must be smaller than {MAX_REQUEST_BYTES} bytes "
                    f"for the InvokeFunction operation (got {request.body_size})",
                )
            route = INVOKE_ROUTE.fullmatch(path)
            if route:
                return self._invoke_api(request, route.group(1))
            route = STREAM_ROUTE.fullmatch(path)
            if route:
                return self._invoke_with_response_stream(request, route.group(1))
            invocation = self._invocation(request, self.mode.to_event(request))
            return self._answer(invocation, self._mode_answer, self.mode.streams)
        except ApiError as error:
            return api_error_response(error)
        except Answered as answered:
            return answered.response

    def _mode_answer(self, outcome: Outcome, invocation: Invocation) -> Answer:
        answer = self.mode.to_response(outcome)
        if isinstance(answer, Response):
            answer.headers.append(("X-Amzn-RequestId", invocation.id))
            return answer

        async def later() -> Response:  # a mode that reads a streamed result's head first
            response = await answer
            response.headers.append(("X-Amzn-RequestId", invocation.id))
            return response

        return later()

    def _health(self, path: str) -> Response:
        if path == RESERVED_PREFIX + "health":
            return json_response(200, {"status": "ok"})
        if path == RESERVED_PREFIX + "ready":
            ready = self.pool.ready
            return json_response(
                200 if ready else 503,
                {
                    "ready": ready,
                    "readyInvokers": self.pool.ready_count,
                    "invokers": len(self.pool.invokers),
                    # Running or queued: what a proxy in front (Knative's queue-proxy) let in.
                    "inFlight": self.pool.in_flight,
                },
            )
        return json_response(
            404,
            {
                "errorType": "NotFound",
                "errorMessage": f"{RESERVED_PREFIX} is reserved: use {RESERVED_PREFIX}health "
                f"or {RESERVED_PREFIX}ready",
            },
        )

    def _invoke_api(self, request: Request, name: str) -> Response | Deferred:
        """Lambda's Invoke API, as the AWS SDKs, the CLI and the emulator call it."""
        invocation, invocation_type = self._api_invocation(request, name, INVOCATION_TYPES)
        headers = [
            ("X-Amzn-RequestId", invocation.id),
            ("X-Amz-Executed-Version", self.settings.function_version),
        ]
        if invocation_type == "DryRun":
            return Response(204, b"", headers)
        if invocation_type == "Event":
            invocation.listen(_log_async_failure)
            self._submit(invocation)
            return Response(202, b"", headers)

        def invoke_answer(outcome: Outcome, _: Invocation) -> Response:
            headers.append(("Content-Type", "application/json"))
            if outcome.failed:
                headers.append(("X-Amz-Function-Error", "Unhandled"))
            if invocation.tail is not None:
                headers.append(("X-Amz-Log-Result", _log_result(invocation)))
            return Response(200, outcome.body, headers)

        return self._answer(invocation, invoke_answer, streams=False)

    def _invoke_with_response_stream(self, request: Request, name: str) -> Response | Deferred:
        """Lambda's InvokeWithResponseStream: the result in event-stream messages, PayloadChunk
        events as the function's bytes arrive, then InvokeComplete, which reports any error."""
        invocation, invocation_type = self._api_invocation(request, name, STREAM_INVOCATION_TYPES)
        headers = [
            ("X-Amzn-RequestId", invocation.id),
            ("X-Amz-Executed-Version", self.settings.function_version),
        ]
        if invocation_type == "DryRun":
            return Response(204, b"", headers)
        headers.append(("Content-Type", eventstream.CONTENT_TYPE))

        def stream_answer(outcome: Outcome, invocation: Invocation) -> Response:
            return Response(200, headers=headers, stream=_events(outcome, invocation))

        return self._answer(invocation, stream_answer, streams=True)

    def _api_invocation(
        self, request: Request, name: str, invocation_types: tuple[str, ...]
    ) -> tuple[Invocation, str]:
        """What both Invoke routes check, and the invocation they ask for with its type."""
        if request.method != "POST":
            raise ApiError(405, "MethodNotAllowed", "The Invoke API takes POST")
        if name not in (self.settings.function_name, "function", self.settings.function_arn):
            raise ApiError(
                404,
                "ResourceNotFoundException",
                f"Function not found: {name}. This server runs "
                f"{self.settings.function_name!r}; 'function' works too",
            )
        invocation_type = request.header("x-amz-invocation-type", "RequestResponse")
        if invocation_type not in invocation_types:
            raise ApiError(
                400,
                "InvalidParameterValueException",
                f"X-Amz-Invocation-Type must be one of {', '.join(invocation_types)}",
            )
        invocation = self._invocation(request, json_event(request.body))
        invocation.client_context = _client_context(request.header("x-amz-client-context"))
        if _log_type(request) == "Tail" and invocation_type == "RequestResponse":
            invocation.tail = bytearray()  # its own log lines, kept for the answer
        return invocation, invocation_type

    def _invocation(self, request: Request, event: bytes) -> Invocation:
        return Invocation(
            event,
            trace_id=_checked("X-Amzn-Trace-Id", request.header("x-amzn-trace-id"), MAX_TRACE_ID)
            or _new_trace_id(),
            tenant_id=_checked("X-Amz-Tenant-Id", request.header("x-amz-tenant-id"), MAX_TENANT_ID),
        )

    def _answer(
        self,
        invocation: Invocation,
        answer_for: Callable[[Outcome, Invocation], Answer],
        streams: bool,
    ) -> Deferred:
        """The answer to an invocation, made by `answer_for` from its outcome the moment it is
        settled. A caller that goes first abandons the invocation: queued, it is dropped; a
        streamed result that comes anyway is read and dropped, so its runtime is not left
        waiting. A streamed result is read whole first unless the answer `streams`."""
        deferred = Deferred()
        deferred.on_gone = invocation.abandon

        def settled(outcome: Outcome) -> None:
            if outcome.stream is not None and not streams:
                whole = asyncio.ensure_future(_whole(outcome))
                whole.add_done_callback(
                    lambda read: _send(deferred, answer_for, read.result(), invocation)
                )
            else:
                _send(deferred, answer_for, outcome, invocation)

        invocation.listen(settled)
        self._submit(invocation)
        return deferred

    def _submit(self, invocation: Invocation) -> None:
        try:
            self.pool.submit(invocation)
        except QueueFull:
            raise ApiError(
                429,
                "TooManyRequestsException",
                f"All {self.settings.invoker_count} invokers are busy and "
                f"{self.settings.queue_size} requests are queued: retry later, or raise "
                "INVOKER_COUNT or KLR_QUEUE_SIZE",
            ) from None


def api_error_response(error: ApiError) -> Response:
    response = error_response(error.status, error.error_type, error.message)
    response.headers.append(("X-Amzn-ErrorType", error.error_type))
    return response


def _send(
    deferred: Deferred,
    answer_for: Callable[[Outcome, Invocation], Answer],
    outcome: Outcome,
    invocation: Invocation,
) -> None:
    try:
        response = answer_for(outcome, invocation)
    except Exception as error:
        response = internal_error(error)
    if isinstance(response, Response):
        deferred.send(response)
        return

    def done(task: asyncio.Future) -> None:
        if task.cancelled():
            deferred.send(internal_error(asyncio.CancelledError()))
        elif task.exception() is not None:
            deferred.send(internal_error(task.exception()))
        else:
            deferred.send(task.result())

    asyncio.ensure_future(response).add_done_callback(done)


async def _whole(outcome: Outcome) -> Outcome:
    """A streamed result read whole, for the modes that answer in one piece."""
    try:
        body = await read_all(outcome.stream, MAX_RESPONSE_BYTES)
    except ValueError:
        return Outcome.error(
            502,
            "Function.ResponseSizeTooLarge",
            f"Response payload size exceeded maximum allowed payload size "
            f"({MAX_RESPONSE_BYTES} bytes).",
        )
    except ConnectionError as error:
        return Outcome.error(502, "Runtime.MalformedResponse", str(error))
    # A stream that ended with error trailers failed, whatever it had sent before.
    return outcome.stream.error() or Outcome(
        body, outcome.status, outcome.error_type, outcome.content_type
    )


async def _events(outcome: Outcome, invocation: Invocation) -> AsyncIterator[bytes]:
    """InvokeWithResponseStream's messages for an outcome: a whole result is one PayloadChunk,
    a streamed one a PayloadChunk per piece as it arrives; InvokeComplete ends the stream, with
    the error that failed the invocation or cut its stream short, if any."""
    if outcome.stream is None:
        if not outcome.failed:
            yield _payload_chunk(outcome.body)
        yield _invoke_complete(invocation, outcome if outcome.failed else None)
        return
    try:
        async for chunk in outcome.stream:
            if chunk:
                yield _payload_chunk(chunk)
    except ConnectionError as error:
        cut_short = await invocation.why_cut_short(CUT_SHORT_WAIT_SECONDS)
        yield _invoke_complete(
            invocation, cut_short or Outcome.error(502, "Runtime.MalformedResponse", str(error))
        )
        return
    yield _invoke_complete(invocation, outcome.stream.error())


def _payload_chunk(payload: bytes) -> bytes:
    return eventstream.event("PayloadChunk", "application/octet-stream", payload)


def _invoke_complete(invocation: Invocation, error: Outcome | None) -> bytes:
    """InvokeComplete: ErrorCode is the error's type, ErrorDetails its message; LogResult the
    log's tail when it was asked for (a streamed result's END and REPORT come after it)."""
    fields = {}
    if error is not None:
        error_type, message = error.error_type, error.body.decode(errors="replace")
        try:
            document = json.loads(error.body)
        except (ValueError, RecursionError):
            document = None
        if isinstance(document, dict):
            error_type = _text(document.get("errorType")) or error_type
            message = _text(document.get("errorMessage")) or message
        fields = {"ErrorCode": error_type, "ErrorDetails": message}
    if invocation.tail is not None:
        fields["LogResult"] = _log_result(invocation)
    return eventstream.event("InvokeComplete", "application/json", json.dumps(fields).encode())


def _log_result(invocation: Invocation) -> str:
    """The last TAIL_BYTES of the invocation's log, base64, as X-Amz-Log-Result carries it."""
    return base64.b64encode(invocation.tail[-TAIL_BYTES:]).decode()


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _log_type(request: Request) -> str:
    log_type = request.header("x-amz-log-type", "None")
    if log_type not in LOG_TYPES:
        raise ApiError(
            400,
            "InvalidParameterValueException",
            f"X-Amz-Log-Type must be None or Tail (Tail answers the last {TAIL_BYTES} bytes "
            "of the invocation's log in X-Amz-Log-Result)",
        )
    return log_type


def _checked(name: str, value: str, limit: int) -> str:
    if len(value) > limit or not PRINTABLE.fullmatch(value):
        raise ApiError(
            400,
            "InvalidParameterValueException",
            f"{name} must be printable ASCII of at most {limit} characters",
        )
    return value


def _client_context(encoded: str) -> str:
    """X-Amz-Client-Context is base64 JSON; the runtime gets the JSON, re-encoded compactly
    in ASCII so that nothing in it can end the runtime's header early."""
    if not encoded:
        return ""
    if len(encoded) > MAX_CLIENT_CONTEXT:
        raise ApiError(
            400,
            "InvalidParameterValueException",
            f"X-Amz-Client-Context must be at most {MAX_CLIENT_CONTEXT} bytes (got {len(encoded)})",
        )
    try:
        value = json.loads(base64.b64decode(encoded, validate=True))
        if not isinstance(value, dict):
            raise ValueError("not an object")
        return json.dumps(value, separators=(",", ":"))
    except (binascii.Error, ValueError, RecursionError):
        raise ApiError(
            400,
            "InvalidRequestContentException",
            "X-Amz-Client-Context must be a base64-encoded JSON object",
        ) from None


def _new_trace_id() -> str:
    random = secrets.token_hex(20)  # one system call for both parts
    return f"Root=1-{int(time.time()):08x}-{random[:24]};Parent={random[24:]};Sampled=0"


def _log_async_failure(outcome: Outcome) -> None:
    if outcome.stream is not None:
        asyncio.ensure_future(discard(outcome.stream))
    elif outcome.failed:
        log(f"Asynchronous invocation failed: {outcome.body.decode(errors='replace')[:1000]}")
