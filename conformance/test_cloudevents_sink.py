"""EVENT_TYPE=CLOUDEVENTS in every image: the server as a Knative Eventing sink in front of the
language's runtime, with the CloudEvents Python SDK as the client (checklist 85-87)."""

from __future__ import annotations

import requests
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.v1.event import CloudEvent


def post(function, message: ce_http.HTTPMessage) -> requests.Response:
    return requests.post(function.url + "/", headers=message.headers, data=message.body, timeout=60)


def test_cloudevent_in_cloudevent_out(start, language):
    """Checklists 85-87: a binary and a structured CloudEvent reach the function as their data
    and its result comes back 200 as a new binary-mode CloudEvent; a missing attribute is 400,
    OPTIONS answers Allow: POST, and a function error is 5xx so that a broker retries."""
    function = start("echo", EVENT_TYPE="CLOUDEVENTS", KLR_CLOUDEVENTS_SOURCE="/conformance")
    sent = CloudEvent({"type": "com.example.order", "source": "/shop"}, {"order": 7, "é": "ü"})
    for message in (ce_http.to_binary_event(sent), ce_http.to_structured_event(sent)):
        response = post(function, message)
        assert response.status_code == 200, response.text
        answer = ce_http.from_binary_event(
            ce_http.HTTPMessage(dict(response.headers), response.content)
        )
        assert answer.get_data() == {"order": 7, "é": "ü"}
        assert (answer.get_type(), answer.get_source()) == ("dev.klr.response", "/conformance")
        assert answer.get_id() != sent.get_id()
    missing = requests.post(function.url, headers={"ce-id": "1", "ce-type": "t"}, timeout=30)
    assert missing.status_code == 400 and "ce-source" in missing.json()["errorMessage"]
    options = requests.options(function.url, timeout=30)
    assert options.status_code == 200 and "POST" in options.headers["Allow"]

    failing = start("fail", EVENT_TYPE="CLOUDEVENTS")
    error = post(failing, ce_http.to_binary_event(sent))
    assert error.status_code == 500
    assert error.json()["errorType"] == language.function_error
