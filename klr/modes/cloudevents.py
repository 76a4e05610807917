"""CloudEvents mode (EVENT_TYPE=CLOUDEVENTS): the server as a Knative Eventing sink.

In: a CloudEvent 1.0 over HTTP (the CloudEvents HTTP binding), in binary mode (`ce-*` headers,
Content-Type as datacontenttype, the body as data) or structured mode (a JSON event as
`application/cloudevents+json`). The function gets the event's data, or with
KLR_CLOUDEVENTS_EVENT=envelope the whole event in its structured JSON form.

Data as the function gets it: JSON data (a JSON datacontenttype, or none and a body that parses)
as its JSON value; other data that is UTF-8 as a JSON string of the text; anything else as a
JSON string of its base64. No data is `null`.

Out, as Knative's data plane asks of a sink: a result is answered 200 as a CloudEvent in binary
mode (new id, type and source from the settings); no result (`null`) is 202 with no body; a
function error or timeout is 5xx, so that the broker retries; an event the server cannot read
is 400, which is not retried. With K_SINK set the result is POSTed there as a CloudEvent
instead, and the caller gets 202 once the sink took it, or 502 (logged) when it did not.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import uuid
from collections.abc import Coroutine
from datetime import datetime, timezone
from urllib.parse import unquote_to_bytes

from klr import sink
from klr.config import ATTRIBUTE_NAME, Settings
from klr.errors import ApiError
from klr.http import Request, Response, error_response
from klr.invokers import Outcome
from klr.log import log
from klr.modes import Answered

SPECVERSION = "1.0"
REQUIRED = ("id", "source", "specversion", "type")
STRUCTURED = "application/cloudevents+json"
ALLOW = "POST, OPTIONS"
# Attribute values may hold no control characters (CloudEvents 1.0, type system).
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
USAGE = (
    "Send a CloudEvent 1.0: in binary mode the headers ce-id, ce-source, ce-specversion: 1.0 "
    "and ce-type with the data as the body, or in structured mode a JSON event with "
    f"Content-Type: {STRUCTURED}"
)

# A CloudEvent in its structured JSON form: attributes, and data or data_base64.
Event = dict


class CloudEventsMode:
    streams = False

    def __init__(self, settings: Settings):
        self.envelope = settings.cloudevents_event == "envelope"
        self.attributes = {
            "type": settings.cloudevents_type,
            "source": settings.cloudevents_source,
            **dict(settings.cloudevents_extensions),  # K_CE_OVERRIDES may replace the two
        }
        self.sink, self.sink_timeout = settings.sink, settings.sink_timeout

    def to_event(self, request: Request) -> bytes:
        if request.method == "OPTIONS":
            raise Answered(_options(request))
        if request.method != "POST":
            refused = error_response(
                405,
                "MethodNotAllowed",
                f"{request.method} is not allowed: CloudEvents are delivered with POST",
            )
            refused.headers.append(("Allow", ALLOW))
            raise Answered(refused)
        media = _media_type(request.header("content-type"))
        if media.startswith("application/cloudevents-batch"):
            raise _bad("Batched mode is not supported: send each event on its own. " + USAGE)
        if media.startswith("application/cloudevents"):
            if media != STRUCTURED:
                raise _bad(f"The event format {media} is not supported. " + USAGE)
            event = structured_event(request.body)
        else:
            event = binary_event(request)
        return json.dumps(event if self.envelope else event_data(event)).encode()

    def to_response(self, outcome: Outcome) -> Response | Coroutine[None, None, Response]:
        if outcome.failed:
            # 5xx, whatever the failure: Knative's brokers retry those and no other error.
            status = outcome.status if 500 <= outcome.status <= 599 else 500
            return Response(status, outcome.body, [("Content-Type", "application/json")])
        body = outcome.body
        if body.strip() in (b"", b"null"):
            return Response(202)
        headers = self._headers("application/json" if _parses(body) else "application/octet-stream")
        if self.sink:
            return self._deliver(headers, body)  # awaited by the front door
        return Response(200, body, headers)

    def _headers(self, content_type: str) -> list[tuple[str, str]]:
        """A new CloudEvent's attributes as binary-mode headers."""
        now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        attributes = {
            "specversion": SPECVERSION,
            "id": str(uuid.uuid4()),
            "time": now.replace("+00:00", "Z"),
            **self.attributes,
        }
        headers = [("ce-" + name, encode_value(value)) for name, value in attributes.items()]
        return [*headers, ("Content-Type", content_type)]

    async def _deliver(self, headers: list[tuple[str, str]], body: bytes) -> Response:
        """The result to K_SINK: 202 once it is taken (2xx), else logged and 502."""
        try:
            status = await asyncio.wait_for(sink.post(self.sink, headers, body), self.sink_timeout)
            problem = "" if 200 <= status <= 299 else f"it answered {status}"
        except asyncio.TimeoutError:
            problem = f"no answer within {self.sink_timeout:g} s (KLR_CLOUDEVENTS_SINK_TIMEOUT)"
        except (OSError, ValueError) as error:
            problem = str(error) or type(error).__name__
        if not problem:
            return Response(202)
        event_id = dict(headers)["ce-id"]
        log(f"CloudEvent {event_id} was not delivered to K_SINK {self.sink}: {problem}")
        return error_response(
            502,
            "SinkDeliveryFailed",
            f"The function's result (CloudEvent {event_id}) was not delivered to K_SINK "
            f"{self.sink}: {problem}",
        )


def binary_event(request: Request) -> Event:
    """A binary-mode CloudEvent: attributes from the ce-* headers, the body as its data."""
    event: Event = {}
    for name, value in request.headers:
        name = name.lower()
        if not name.startswith("ce-"):
            continue
        attribute = name[3:]
        if not ATTRIBUTE_NAME.fullmatch(attribute):
            raise _bad(
                f"{name} is no CloudEvents attribute: names are lower-case letters and digits"
            )
        if attribute == "datacontenttype":
            raise _bad("ce-datacontenttype must not be sent in binary mode: use Content-Type")
        if attribute in event:
            raise _bad(f"{name} is sent twice: a CloudEvent has one value per attribute")
        event[attribute] = decode_value(name, value)
    _check_attributes(event, "ce-")
    content_type = request.header("content-type")
    if content_type:
        event["datacontenttype"] = content_type
    if request.body:
        event.update(_data_field(request.body, content_type))
    return event


def structured_event(body: bytes) -> Event:
    """A structured-mode CloudEvent: the JSON event format."""
    try:
        event = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise _bad(f"The body is not a JSON CloudEvent: {error}. {USAGE}") from None
    if not isinstance(event, dict):
        raise _bad(f"A structured CloudEvent is a JSON object. {USAGE}")
    for name in event:
        if name not in ("data", "data_base64") and not ATTRIBUTE_NAME.fullmatch(name):
            raise _bad(
                f"{name!r} is no CloudEvents attribute: names are lower-case letters and digits"
            )
    _check_attributes(event, "")
    if "datacontenttype" in event and not isinstance(event["datacontenttype"], str):
        raise _bad("datacontenttype must be a string such as application/json")
    if "data_base64" in event:
        if "data" in event:
            raise _bad("A CloudEvent has data or data_base64, not both")
        _decode_base64(event["data_base64"])
    return event


def event_data(event: Event) -> object:
    """What the function gets by default: the event's data (see the module's docstring)."""
    if "data_base64" in event:
        raw = _decode_base64(event["data_base64"])
        if not raw:
            return None
        field = _data_field(raw, event.get("datacontenttype", ""))
        return field.get("data", event["data_base64"])
    return event.get("data")


def _data_field(raw: bytes, content_type: str) -> dict[str, object]:
    """Data bytes as the JSON format holds them: `data` (a JSON value or text) or
    `data_base64`."""
    media = _media_type(content_type)
    if _is_json_media(media) or (not media and _parses(raw)):
        try:
            return {"data": json.loads(raw)}
        except (ValueError, RecursionError) as error:
            raise _bad(f"The data is not JSON, as its content type {media} says: {error}") from None
    try:
        return {"data": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {"data_base64": base64.b64encode(raw).decode()}


def _check_attributes(event: Event, prefix: str) -> None:
    missing = [name for name in REQUIRED if not event.get(name)]
    if missing:
        names = ", ".join(prefix + name for name in missing)
        plural = "s" if len(missing) > 1 else ""
        raise _bad(f"The CloudEvent is missing the required attribute{plural} {names}. {USAGE}")
    for name in REQUIRED:
        if not isinstance(event[name], str):
            raise _bad(f"{prefix}{name} must be a string")
    if event["specversion"] != SPECVERSION:
        raise _bad(
            f"CloudEvents specversion {event['specversion'][:50]!r} is not supported: "
            f"send {prefix}specversion {SPECVERSION}"
        )


def decode_value(name: str, value: str) -> str:
    """A binary-mode header value as its attribute: quoted-string unescaped, then one round
    of percent-decoding, to UTF-8 text (the CloudEvents HTTP binding, 3.1.3.2)."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = re.sub(r"\\(.)", r"\1", value[1:-1])
    try:
        text = unquote_to_bytes(value.encode("latin-1")).decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(f"{name} is not UTF-8 once percent-decoded") from None
    if CONTROL.search(text):
        raise _bad(f"{name} holds a control character, which no attribute may")
    return text


def encode_value(value: str) -> str:
    """An attribute as a header value: space, '"', '%' and all but printable ASCII
    percent-encoded as UTF-8 bytes."""
    return "".join(
        char
        if "\x21" <= char <= "\x7e" and char not in '"%'
        else "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))
        for char in value
    )


def _options(request: Request) -> Response:
    """OPTIONS: POST is what this sink takes. A CloudEvents webhook validation request
    (WebHook-Request-Origin) is granted to any origin."""
    headers = [("Allow", ALLOW)]
    if request.header("webhook-request-origin"):
        headers.append(("WebHook-Allowed-Origin", "*"))
    return Response(200, b"", headers)


def _decode_base64(value: object) -> bytes:
    if not isinstance(value, str):
        raise _bad("data_base64 must be a string of base64")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise _bad("data_base64 is not valid base64") from None


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _is_json_media(media: str) -> bool:
    return media in ("application/json", "text/json") or media.endswith("+json")


def _parses(raw: bytes) -> bool:
    try:
        json.loads(raw)
        return True
    except (ValueError, RecursionError):
        return False


def _bad(message: str) -> ApiError:
    return ApiError(400, "InvalidCloudEvent", message)
