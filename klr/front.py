"""The front door on $PORT: health endpoints, the Lambda Invoke API, and the event mode."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import secrets
import time

from klr.config import MAX_REQUEST_BYTES, Settings
from klr.http import Request, Response
from klr.invokers import Invocation, InvokerPool, QueueFull, log
from klr.modes import BadInput, Mode, json_event, json_response

# Requests under this prefix never reach the function.
RESERVED_PREFIX = "/_klr/"
INVOKE_ROUTE = re.compile(r"/2015-03-31/functions/([^/]+)/invocations")
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")


class FrontDoor:
    def __init__(self, settings: Settings, pool: InvokerPool, mode: Mode):
        self.settings = settings
        self.pool = pool
        self.mode = mode

    async def handle(self, request: Request) -> Response:
        if request.path.startswith(RESERVED_PREFIX):
            return self._health(request.path)
        route = INVOKE_ROUTE.fullmatch(request.path)
        try:
            if request.body_too_large:
                raise BadInput(
                    413,
                    "RequestTooLargeException",
                    f"Request must be smaller than {MAX_REQUEST_BYTES} bytes "
                    f"for the InvokeFunction operation (got {request.body_size})",
                )
            if route:
                return await self._invoke_api(request, route.group(1))
            invocation = self._invocation(request, self.mode.to_event(request))
            outcome = await self._submit(invocation)
        except BadInput as error:
            return error_response(error)
        response = self.mode.to_response(outcome)
        response.headers.append(("X-Amzn-RequestId", invocation.id))
        return response

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

    async def _invoke_api(self, request: Request, name: str) -> Response:
        """Lambda's Invoke API, as the AWS SDKs, the CLI and the emulator call it."""
        if request.method != "POST":
            raise BadInput(405, "MethodNotAllowed", "The Invoke API takes POST")
        if name not in (self.settings.function_name, "function", self.settings.function_arn):
            raise BadInput(
                404,
                "ResourceNotFoundException",
                f"Function not found: {name}. This server runs "
                f"{self.settings.function_name!r}; 'function' works too",
            )
        invocation_type = request.header("x-amz-invocation-type", "RequestResponse")
        if invocation_type not in INVOCATION_TYPES:
            raise BadInput(
                400,
                "InvalidParameterValueException",
                f"X-Amz-Invocation-Type must be one of {', '.join(INVOCATION_TYPES)}",
            )
        invocation = self._invocation(request, json_event(request.body))
        invocation.client_context = _client_context(request.header("x-amz-client-context"))
        headers = [
            ("X-Amzn-RequestId", invocation.id),
            ("X-Amz-Executed-Version", self.settings.function_version),
        ]
        if invocation_type == "DryRun":
            return Response(204, b"", headers)
        if invocation_type == "Event":
            self._submit(invocation).add_done_callback(_log_async_failure)
            return Response(202, b"", headers)
        outcome = await self._submit(invocation)
        headers.append(("Content-Type", "application/json"))
        if outcome.failed:
            headers.append(("X-Amz-Function-Error", "Unhandled"))
        return Response(200, outcome.body, headers)

    def _invocation(self, request: Request, event: bytes) -> Invocation:
        return Invocation(
            event,
            trace_id=request.header("x-amzn-trace-id") or _new_trace_id(),
            tenant_id=request.header("x-amz-tenant-id"),
        )

    def _submit(self, invocation: Invocation) -> asyncio.Future:
        try:
            return self.pool.submit(invocation)
        except QueueFull:
            raise BadInput(
                429,
                "TooManyRequestsException",
                f"All {self.settings.invoker_count} invokers are busy and "
                f"{self.settings.queue_size} requests are queued: retry later, or raise "
                "INVOKER_COUNT or KLR_QUEUE_SIZE",
            ) from None


def error_response(error: BadInput) -> Response:
    response = json_response(
        error.status, {"errorType": error.error_type, "errorMessage": error.message}
    )
    response.headers.append(("X-Amzn-ErrorType", error.error_type))
    return response


def _client_context(encoded: str) -> str:
    """X-Amz-Client-Context is base64 JSON; the runtime gets the JSON."""
    if not encoded:
        return ""
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
        json.loads(decoded)
        return decoded
    except (binascii.Error, ValueError):
        raise BadInput(
            400,
            "InvalidRequestContentException",
            "X-Amz-Client-Context must be a base64-encoded JSON object",
        ) from None


def _new_trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"


def _log_async_failure(future: asyncio.Future) -> None:
    outcome = future.result()
    if outcome.failed:
        log(f"Asynchronous invocation failed: {outcome.body.decode(errors='replace')[:1000]}")
