"""EVENT_TYPE=CLOUDEVENTS, the server as a Knative Eventing sink (checklist 85-87).

First the mode as functions (a request parsed by the server's own reader becomes an event, an
outcome becomes a response), then end to end: the server with the real Python shim, the
CloudEvents Python SDK as the client that makes the events and reads the answers, and a real
HTTP server on 127.0.0.1 as K_SINK.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.v1.event import CloudEvent

from klr.config import Settings
from klr.errors import ApiError, SettingsError
from klr.http import parse_request
from klr.invokers import Outcome
from klr.modes import Answered
from klr.modes.cloudevents import CloudEventsMode, decode_value, encode_value
from tests.local_server import free_port

BINARY = "ce-specversion: 1.0\nce-id: 42\nce-source: /orders\nce-type: com.example.order\n"


def request(head: str, body: bytes = b""):
    if body and "content-length" not in head.lower():
        head += f"Content-Length: {len(body)}\n"
    data = head.replace("\n", "\r\n").encode() + b"\r\n" + body
    parsed = parse_request(data)
    assert parsed is not None
    return parsed


def sdk_request(message: ce_http.HTTPMessage, method: str = "POST"):
    """The SDK's HTTP message as the server reads it off the wire."""
    head = f"{method} / HTTP/1.1\nHost: sink\n"
    head += "".join(f"{name}: {value}\n" for name, value in message.headers.items())
    return request(head, message.body)


def mode(**settings) -> CloudEventsMode:
    return CloudEventsMode(Settings(**settings))


def event_of(head: str, body: bytes = b"", **settings) -> object:
    return json.loads(mode(**settings).to_event(request(head, body)))


def refusal(head: str, body: bytes = b"", **settings) -> str:
    with pytest.raises(ApiError) as refused:
        mode(**settings).to_event(request(head, body))
    assert refused.value.status == 400
    assert refused.value.error_type == "InvalidCloudEvent"
    return refused.value.message


def test_binary_mode_gives_the_function_the_data():
    """Checklist 85: binary content mode, the body being the event's data."""
    event = event_of(
        f"POST /any/path HTTP/1.1\nHost: h\n{BINARY}Content-Type: application/json\n",
        b'{"order": 7}',
    )
    assert event == {"order": 7}


def test_binary_mode_envelope_has_the_decoded_attributes():
    """The binding's header values: percent-decoded once, quoted strings unquoted; Content-Type
    is datacontenttype; extensions are attributes like the others."""
    event = event_of(
        "POST / HTTP/1.1\nHost: h\nce-specversion: 1.0\nce-id: a%20b\n"
        "ce-source: Euro%20%E2%82%AC%20%f0%9f%98%80\nce-type: com.example\n"
        'ce-subject: "quoted \\"value\\""\nCE-Partitionkey: 100%25\n'
        "Content-Type: application/json; charset=utf-8\n",
        b"[1, 2]",
        cloudevents_event="envelope",
    )
    assert event == {
        "specversion": "1.0",
        "id": "a b",
        "source": "Euro \u20ac \U0001f600",
        "type": "com.example",
        "subject": 'quoted "value"',
        "partitionkey": "100%",
        "datacontenttype": "application/json; charset=utf-8",
        "data": [1, 2],
    }


@pytest.mark.parametrize(
    ("content_type", "body", "data", "envelope_field"),
    [
        ("text/plain", "héllo".encode(), "héllo", {"data": "héllo"}),
        ("application/xml", b"<a/>", "<a/>", {"data": "<a/>"}),
        ("application/octet-stream", b"\xff\x00\xfe", "/wD+", {"data_base64": "/wD+"}),
        ("", b"not json", "not json", {"data": "not json"}),
        ("", b'{"a": 1}', {"a": 1}, {"data": {"a": 1}}),
        ("application/json", b"", None, {}),
    ],
)
def test_data_that_is_not_json_is_text_or_base64(content_type, body, data, envelope_field):
    """What the function gets for each kind of data: JSON as JSON, UTF-8 text as a string,
    other bytes as a base64 string (data_base64 in the envelope); no data is null."""
    head = f"POST / HTTP/1.1\nHost: h\n{BINARY}"
    if content_type:
        head += f"Content-Type: {content_type}\n"
    assert event_of(head, body) == data
    envelope = event_of(head, body, cloudevents_event="envelope")
    assert {k: v for k, v in envelope.items() if k.startswith("data_") or k == "data"} == (
        envelope_field
    )


def test_the_http_modes_requests_are_events_on_any_path():
    """The requests every mode is tested with: a path with escapes and repeated query keys
    (a sink takes events on any path), a large header, a binary body."""
    large = "%E2%82%AC" * 800  # 7,200 bytes of header value, 800 characters of attribute
    event = event_of(
        f"POST /orders/a%20b?size=2&size=3 HTTP/1.1\nHost: h\nCookie: a=1\n{BINARY}"
        f"ce-subject: {large}\nContent-Type: application/octet-stream\n",
        bytes(range(256)),
        cloudevents_event="envelope",
    )
    assert event["subject"] == "\u20ac" * 800
    assert base64.b64decode(event["data_base64"]) == bytes(range(256))


@pytest.mark.parametrize("missing", ["id", "source", "specversion", "type"])
def test_binary_event_without_a_required_attribute_is_400_naming_it(missing):
    """Checklist 85: a binary-mode CloudEvent missing ce-id, ce-source, ce-specversion or
    ce-type gets 400, and the message says which and how to send one."""
    head = "".join(
        line + "\n" for line in BINARY.splitlines() if not line.startswith(f"ce-{missing}:")
    )
    message = refusal(f"POST / HTTP/1.1\nHost: h\n{head}", b"{}")
    assert f"missing the required attribute ce-{missing}." in message
    assert "application/cloudevents+json" in message  # what to send instead


def test_a_plain_post_is_told_what_a_cloudevent_is():
    message = refusal("POST / HTTP/1.1\nHost: h\nContent-Type: application/json\n", b"{}")
    assert "ce-id, ce-source, ce-specversion, ce-type" in message


@pytest.mark.parametrize(
    ("head", "body", "said"),
    [
        (BINARY.replace("1.0", "0.3"), b"{}", "specversion '0.3' is not supported"),
        (BINARY + "Content-Type: application/json\n", b"{nope", "not JSON"),
        (BINARY + "ce-datacontenttype: text/plain\n", b"x", "use Content-Type"),
        (BINARY + "ce-id: 43\n", b"", "ce-id is sent twice"),
        (BINARY + "ce-bad_name: x\n", b"", "no CloudEvents attribute"),
        # The binding's decoding: invalid UTF-8 (an overlong space) and control characters.
        (BINARY + "ce-subject: %C0%A0\n", b"", "not UTF-8"),
        (BINARY + "ce-subject: a%00b\n", b"", "control character"),
        (BINARY + "ce-subject: a%0D%0AX-Injected: 1\n", b"", "control character"),
        ("Content-Type: application/cloudevents-batch+json\n", b"[]", "Batched mode"),
        ("Content-Type: application/cloudevents+avro\n", b"", "not supported"),
    ],
)
def test_events_the_server_cannot_take_are_400_with_the_reason(head, body, said):
    """Checklist 86: bad input is 400 (which Knative does not retry)."""
    assert said in refusal(f"POST / HTTP/1.1\nHost: h\n{head}", body)


STRUCTURED = "POST / HTTP/1.1\nHost: h\nContent-Type: application/cloudevents+json; charset=utf-8\n"
ATTRIBUTES = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}


@pytest.mark.parametrize(
    ("fields", "data"),
    [
        ({"data": {"x": 1}}, {"x": 1}),
        ({"datacontenttype": "text/plain", "data": "hi"}, "hi"),
        ({"data_base64": base64.b64encode(b'{"x": 2}').decode()}, {"x": 2}),
        ({"datacontenttype": "text/plain", "data_base64": "aGk="}, "hi"),
        ({"datacontenttype": "image/png", "data_base64": "/wD+"}, "/wD+"),
        ({}, None),
    ],
)
def test_structured_mode_gives_the_function_the_data(fields, data):
    """Checklist 85: structured application/cloudevents+json is accepted, with data or
    data_base64; the envelope is the event as sent."""
    sent = {**ATTRIBUTES, "comexampleext": 5, **fields}
    body = json.dumps(sent).encode()
    assert event_of(STRUCTURED, body) == data
    assert event_of(STRUCTURED, body, cloudevents_event="envelope") == sent


@pytest.mark.parametrize(
    ("event", "said"),
    [
        ([ATTRIBUTES], "is a JSON object"),
        ({**ATTRIBUTES, "id": ""}, "required attribute id"),
        ({**ATTRIBUTES, "type": 5}, "type must be a string"),
        ({k: v for k, v in ATTRIBUTES.items() if k != "source"}, "required attribute source"),
        ({**ATTRIBUTES, "specversion": "0.3"}, "not supported"),
        ({**ATTRIBUTES, "data": 1, "data_base64": "AA=="}, "not both"),
        ({**ATTRIBUTES, "data_base64": "not base64!"}, "not valid base64"),
        ({**ATTRIBUTES, "Bad-Name": 1}, "no CloudEvents attribute"),
    ],
)
def test_structured_events_the_server_cannot_take_are_400(event, said):
    assert said in refusal(STRUCTURED, json.dumps(event).encode())
    assert "not a JSON CloudEvent" in refusal(STRUCTURED, b"{")


def test_the_sdks_events_in_both_modes_are_read_as_it_wrote_them():
    """The CloudEvents Python SDK as the sender: its binary and structured messages, with an
    attribute that needs percent-encoding, give the same envelope."""
    sent = CloudEvent(
        {"type": "com.example.sdk", "source": "/a b/é", "subject": '"x" 100%'}, {"n": [1, "é"]}
    )
    binary = mode(cloudevents_event="envelope").to_event(sdk_request(ce_http.to_binary_event(sent)))
    structured = mode(cloudevents_event="envelope").to_event(
        sdk_request(ce_http.to_structured_event(sent))
    )
    from_binary, from_structured = json.loads(binary), json.loads(structured)
    for event in (from_binary, from_structured):
        assert event["source"] == "/a b/é" and event["subject"] == '"x" 100%'
        assert event["id"] == sent.get_id() and event["data"] == {"n": [1, "é"]}
    assert from_binary["time"] == from_structured["time"]


def test_options_advertises_post_and_grants_webhook_validation():
    """Checklist 87: OPTIONS answers Allow: POST; the CloudEvents webhook abuse protection
    handshake (WebHook-Request-Origin) is answered with WebHook-Allowed-Origin."""
    with pytest.raises(Answered) as answered:
        mode().to_event(request("OPTIONS / HTTP/1.1\nHost: h\n"))
    response = answered.value.response
    assert response.status == 200 and "POST" in dict(response.headers)["Allow"]
    assert "WebHook-Allowed-Origin" not in dict(response.headers)
    with pytest.raises(Answered) as answered:
        mode().to_event(
            request("OPTIONS / HTTP/1.1\nHost: h\nWebHook-Request-Origin: eventemitter.example\n")
        )
    assert dict(answered.value.response.headers)["WebHook-Allowed-Origin"] == "*"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_are_405_with_allow(method):
    """Knative's data plane: events come by POST; other methods get 405."""
    with pytest.raises(Answered) as answered:
        mode().to_event(request(f"{method} / HTTP/1.1\nHost: h\n{BINARY}"))
    response = answered.value.response
    assert response.status == 405 and "POST" in dict(response.headers)["Allow"]
    assert method in json.loads(response.body)["errorMessage"]


def test_a_result_is_answered_200_as_a_new_binary_cloudevent():
    """Checklist 86: a result is 200 with a CloudEvent: specversion 1.0, a new id each time,
    type and source from the settings (percent-encoded as the binding says), a time."""
    answer_mode = mode(cloudevents_type="com.example.done", cloudevents_source="klr/my fn")
    first = answer_mode.to_response(Outcome(b'{"ok": true}'))
    second = answer_mode.to_response(Outcome(b'{"ok": true}'))
    headers = dict(first.headers)
    assert first.status == 200 and first.body == b'{"ok": true}'
    assert headers["ce-specversion"] == "1.0" and headers["ce-type"] == "com.example.done"
    assert headers["ce-source"] == "klr/my%20fn"
    assert headers["Content-Type"] == "application/json"
    assert uuid.UUID(headers["ce-id"]) and headers["ce-id"] != dict(second.headers)["ce-id"]
    assert headers["ce-time"].endswith("Z")
    parsed = ce_http.from_binary_event(ce_http.HTTPMessage(headers, first.body))
    assert parsed.get_source() == "klr/my fn" and parsed.get_data() == {"ok": True}


def test_no_result_is_202_and_failures_are_5xx():
    """Checklist 86: no result (null) is 202 with no body; a function error is 500, a timeout
    504, a crashed runtime 502: all 5xx, which brokers retry."""
    answer_mode = mode()
    for body in (b"null", b"", b" null\n"):
        response = answer_mode.to_response(Outcome(body))
        assert (response.status, response.body) == (202, b"")
        assert not any(name.startswith("ce-") for name, _ in response.headers)
    cases = [
        (Outcome.error(500, "ValueError", "bad"), 500),
        (Outcome.error(504, "Sandbox.Timedout", "Task timed out"), 504),
        (Outcome.error(502, "Runtime.ExitError", "exit status 3"), 502),
        (Outcome.error(499, "Client.Gone", "gone"), 500),
    ]
    for outcome, status in cases:
        response = answer_mode.to_response(outcome)
        assert response.status == status
        assert json.loads(response.body)["errorType"] == outcome.error_type


def test_a_result_that_is_not_json_is_octet_stream():
    response = mode().to_response(Outcome(b"plain words", content_type="text/plain"))
    assert dict(response.headers)["Content-Type"] == "application/octet-stream"


def test_k_ce_overrides_extensions_go_on_every_event():
    """Knative's SinkBinding sets K_CE_OVERRIDES: its extensions are added to the events."""
    settings = Settings.from_env(
        {"EVENT_TYPE": "CLOUDEVENTS", "K_CE_OVERRIDES": '{"extensions": {"team": "a b"}}'}
    )
    headers = dict(CloudEventsMode(settings).to_response(Outcome(b"1")).headers)
    assert headers["ce-team"] == "a%20b"


def test_header_values_round_trip_through_the_bindings_encoding():
    for text in ["plain", "a b", '"q"', "100%", "Euro \u20ac \U0001f600", "\u00e9\t"]:
        encoded = encode_value(text)
        assert all("\x21" <= c <= "\x7e" for c in encoded) and " " not in encoded
        if "\t" not in text:
            assert decode_value("ce-x", encoded) == text
    assert encode_value("Euro \u20ac \U0001f600") == "Euro%20%E2%82%AC%20%F0%9F%98%80"


def test_settings_are_checked_at_start():
    settings = Settings.from_env({"EVENT_TYPE": "cloudevents", "K_SERVICE": "orders"})
    assert settings.event_type == "CLOUDEVENTS"
    assert (settings.cloudevents_event, settings.cloudevents_type) == ("data", "dev.klr.response")
    assert settings.cloudevents_source == "klr/orders"
    assert Settings.from_env({"KLR_CLOUDEVENTS_EVENT": "ENVELOPE"}).cloudevents_event == "envelope"
    bad = [
        ({"KLR_CLOUDEVENTS_EVENT": "everything"}, "KLR_CLOUDEVENTS_EVENT must be one of"),
        ({"KLR_CLOUDEVENTS_TYPE": "a\x01b"}, "control characters"),
        ({"K_SINK": "ftp://sink.example/"}, "K_SINK must be an http"),
        ({"K_SINK": "http://user:pw@sink.example/"}, "no user info"),
        ({"K_SINK": "http://sink.example:99999/"}, "K_SINK"),
        ({"K_SINK": "http:///path"}, "with a host"),
        ({"K_SINK": "http://sink.example/a b"}, "K_SINK"),
        ({"K_CE_OVERRIDES": "[1]"}, "K_CE_OVERRIDES must be a JSON object"),
        ({"K_CE_OVERRIDES": '{"extensions": {"id": "x"}}'}, "'id' cannot be set"),
        ({"KLR_CLOUDEVENTS_SINK_TIMEOUT": "0"}, "KLR_CLOUDEVENTS_SINK_TIMEOUT"),
    ]
    for env, said in bad:
        with pytest.raises(SettingsError, match=said):
            Settings.from_env(env)
    sink = Settings.from_env({"K_SINK": "https://broker.example:8443/ns/default?x=1"})
    assert sink.sink == "https://broker.example:8443/ns/default?x=1"


def test_an_awaitable_answer_is_sent_when_done():
    """The front door's part: a mode's to_response may return an awaitable (K_SINK)."""
    from klr.front import _send
    from klr.http import Deferred, Response

    async def later():
        await asyncio.sleep(0)
        return Response(202)

    class Sent(Deferred):
        def send(self, response):
            self.response = response

    async def run():
        deferred = Sent()
        _send(deferred, lambda outcome, invocation: later(), Outcome(b"1"), None)
        assert not hasattr(deferred, "response")  # not yet: it awaits
        for _ in range(5):
            await asyncio.sleep(0)
        return deferred.response

    assert asyncio.run(run()).status == 202


# End to end: the server, the real Python shim, the SDK as the client.


def ce_server(start_server, handler: str = "handler.echo", **env):
    return start_server(handler, EVENT_TYPE="CLOUDEVENTS", **env)


def post(server, message: ce_http.HTTPMessage, **kwargs) -> requests.Response:
    return requests.post(
        server.url + "/", headers=message.headers, data=message.body, timeout=60, **kwargs
    )


def answer_event(response: requests.Response):
    return ce_http.from_http_event(ce_http.HTTPMessage(dict(response.headers), response.content))


def test_end_to_end_binary_and_structured_events_are_answered_as_cloudevents(start_server):
    """Checklists 85 and 86 through the real shim: the SDK's binary event reaches the function
    as its data; the echoed result comes back 200 as a CloudEvent the SDK reads."""
    server = ce_server(start_server, AWS_LAMBDA_FUNCTION_NAME="orders")
    sent = CloudEvent({"type": "com.example.order", "source": "/shop"}, {"order": 7})
    for message in (ce_http.to_binary_event(sent), ce_http.to_structured_event(sent)):
        response = post(server, message)
        assert response.status_code == 200, response.text
        answer = answer_event(response)
        assert answer.get_data() == {"order": 7}
        assert answer.get_type() == "dev.klr.response" and answer.get_source() == "klr/orders"
        assert answer.get_id() != sent.get_id() and answer.get_specversion() == "1.0"
        assert response.headers["X-Amzn-RequestId"]


def test_end_to_end_envelope_mode_gives_the_function_the_whole_event(start_server):
    server = ce_server(start_server, KLR_CLOUDEVENTS_EVENT="envelope")
    sent = CloudEvent(
        {"type": "com.example.file", "source": "/files", "datacontenttype": "image/png"},
        b"\x89PNG\xff",
    )
    answer = answer_event(post(server, ce_http.to_binary_event(sent)))
    envelope = answer.get_data()
    assert envelope["id"] == sent.get_id() and envelope["type"] == "com.example.file"
    assert base64.b64decode(envelope["data_base64"]) == b"\x89PNG\xff"


def test_end_to_end_null_is_202_errors_are_5xx_bad_events_400(start_server):
    """Checklist 86: no result 202; a function error 500, a timeout 504 (retried by the
    broker); a bad event 400, and the function never runs for it."""
    server = ce_server(start_server, "handler.fail")
    empty = CloudEvent({"type": "t", "source": "/s"})
    failed = post(server, ce_http.to_binary_event(CloudEvent({"type": "t", "source": "/s"}, {})))
    assert failed.status_code == 500 and failed.json()["errorType"] == "ValueError"
    starts = server.logs().count("START RequestId")
    bad = requests.post(server.url, headers={"ce-id": "1", "ce-specversion": "1.0"}, timeout=30)
    assert bad.status_code == 400 and "ce-source, ce-type" in bad.json()["errorMessage"]
    assert server.logs().count("START RequestId") == starts

    echo = ce_server(start_server)
    nothing = post(echo, ce_http.to_binary_event(empty))
    assert (nothing.status_code, nothing.content) == (202, b"")

    slow = ce_server(start_server, "handler.sleep", AWS_LAMBDA_FUNCTION_TIMEOUT="1")
    timed_out = post(
        slow, ce_http.to_binary_event(CloudEvent({"type": "t", "source": "/s"}, {"seconds": 10}))
    )
    assert timed_out.status_code == 504


def test_end_to_end_options_and_other_methods(start_server):
    """Checklist 87: OPTIONS answers Allow: POST with no invocation; GET is 405."""
    server = ce_server(start_server)
    options = requests.options(server.url + "/", timeout=30)
    assert options.status_code == 200 and "POST" in options.headers["Allow"]
    got = requests.get(server.url + "/", timeout=30)
    assert got.status_code == 405 and "POST" in got.headers["Allow"]
    assert "START RequestId" not in server.logs()


class Sink:
    """A real HTTP server on 127.0.0.1 as K_SINK: it records what it is sent and answers
    `status`, after `delay` seconds."""

    def __init__(self, status: int = 202, delay: float = 0.0, tls: ssl.SSLContext | None = None):
        self.received: list[ce_http.HTTPMessage] = []
        self.released = threading.Event()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                sink.received.append(ce_http.HTTPMessage(dict(self.headers), body))
                if delay:
                    sink.released.wait(delay)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}/events?from=klr"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink():
    sinks: list[Sink] = []

    def start(**kwargs) -> Sink:
        sinks.append(Sink(**kwargs))
        return sinks[-1]

    yield start
    for each in sinks:
        each.close()


def test_k_sink_gets_the_result_as_a_cloudevent_and_the_caller_202(start_server, sink):
    """With K_SINK, the result is POSTed to the sink as a binary CloudEvent; the caller gets
    202 once the sink took it. No result is not sent at all."""
    target = sink(status=200)
    server = ce_server(start_server, K_SINK=target.url, KLR_CLOUDEVENTS_TYPE="com.example.out")
    response = post(server, ce_http.to_binary_event(CloudEvent({"type": "t", "source": "/s"}, [1])))
    assert (response.status_code, response.content) == (202, b"")
    assert len(target.received) == 1
    delivered = ce_http.from_binary_event(target.received[0])
    assert delivered.get_data() == [1] and delivered.get_type() == "com.example.out"
    assert target.received[0].headers["Content-Type"] == "application/json"
    nothing = post(server, ce_http.to_binary_event(CloudEvent({"type": "t", "source": "/s"})))
    assert nothing.status_code == 202 and len(target.received) == 1


@pytest.mark.parametrize("failure", ["refused", "unreachable", "slow"])
def test_a_failed_delivery_to_k_sink_is_logged_and_502(start_server, sink, failure):
    """A sink that answers 500, a port nobody listens on, a sink slower than
    KLR_CLOUDEVENTS_SINK_TIMEOUT: the caller gets 502 (so a broker retries) within the
    deadline, and the log says which event was not delivered and why."""
    if failure == "unreachable":
        url = f"http://127.0.0.1:{free_port()}/"
    else:
        url = sink(
            status=500 if failure == "refused" else 202, delay=30 if failure == "slow" else 0
        ).url
    server = ce_server(start_server, K_SINK=url, KLR_CLOUDEVENTS_SINK_TIMEOUT="1")
    started = time.monotonic()
    response = post(
        server, ce_http.to_binary_event(CloudEvent({"type": "t", "source": "/s"}, {"a": 1}))
    )
    assert time.monotonic() - started < 10
    assert response.status_code == 502
    error = response.json()
    assert error["errorType"] == "SinkDeliveryFailed" and url in error["errorMessage"]
    reason = {"refused": "it answered 500", "unreachable": "", "slow": "no answer within 1 s"}
    assert reason[failure] in error["errorMessage"]
    logged = server.wait_for_log("was not delivered to K_SINK")
    assert error["errorMessage"].split("CloudEvent ")[1].split(")")[0] in logged


def test_k_sink_over_https_is_verified_against_the_trusted_cas(start_server, sink, tmp_path):
    """An https:// K_SINK: TLS with the system's CAs (here SSL_CERT_FILE, a CA made for the
    test); a sink whose certificate is not trusted is a failed delivery, not a silent one."""
    cert, key = tmp_path / "sink.pem", tmp_path / "sink.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    target = sink(status=201, tls=tls)
    event = ce_http.to_binary_event(CloudEvent({"type": "t", "source": "/s"}, {"tls": 1}))
    trusted = ce_server(start_server, K_SINK=target.url, SSL_CERT_FILE=str(cert))
    assert post(trusted, event).status_code == 202
    assert ce_http.from_binary_event(target.received[0]).get_data() == {"tls": 1}
    untrusted = ce_server(start_server, K_SINK=target.url, KLR_CLOUDEVENTS_SINK_TIMEOUT="5")
    refused = post(untrusted, event)
    assert refused.status_code == 502 and "CERTIFICATE_VERIFY_FAILED" in refused.text


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", 204),
        (b"HTTP/1.0 409 Conflict\r\nContent-Length: 0\r\n\r\n", 409),
        (b"SSH-2.0-OpenSSH_9.6\r\n", ValueError),
        (b"HTTP/1.1 2000 Nope\r\n\r\n", ValueError),
        (b"", ConnectionError),
        (b"HTTP/1.1 200 " + b"x" * 70_000 + b"\r\n", ValueError),
    ],
)
def test_the_sink_client_reads_only_a_real_http_status(answer, outcome):
    """klr/sink.py: interim 1xx answers skipped, the final status returned; whatever is not
    an HTTP/1.x status line is an error, never a success."""
    from klr import sink

    seen: list[bytes] = []

    async def serve(reader, writer):
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(answer)
        await writer.drain()
        writer.close()

    async def run():
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await asyncio.wait_for(
                sink.post(f"http://127.0.0.1:{port}/in?a=1", [("ce-id", "1")], b"{}"), 10
            )
        finally:
            server.close()

    if isinstance(outcome, int):
        assert asyncio.run(run()) == outcome
    else:
        with pytest.raises(outcome):
            asyncio.run(run())
    head = seen[0].decode()
    assert head.startswith("POST /in?a=1 HTTP/1.1\r\n") and "ce-id: 1\r\n" in head
    assert "Host: 127.0.0.1:" in head and "Content-Length: 2\r\n" in head
