"""What only Java images show: RequestHandler and RequestStreamHandler classes, POJO, Map and
String events, the aws-lambda-java-events classes fed Lambda's sample events (events/), the
official overload choice for Class::method, jars in lib/, the official error shapes (load faults
reported on each invocation), the trace id as a system property, the shim's classes from the
image's class-data-sharing archive, and the seed's java8 example (the serverless framework's
Java template)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import requests

from conformance.harness import seed_function
from images.functions import TEST_LABELS

LANGUAGE = "java"
EVENTS = Path(__file__).parent / "events"
SERIALIZER_CLASS = "com.amazonaws.services.lambda.runtime.serialization.factories.JacksonFactory"


def sample_event(name: str) -> dict:
    return json.loads((EVENTS / f"{name}.json").read_text())


def test_request_handler_with_pojo_event_and_result(start):
    person = {
        "name": "Ann",
        "age": 30,
        "tags": ["a", "b"],
        "address": {"city": "Oslo", "zip": "0150"},
        "unknown": "ignored",
    }
    result = start(handler="example.Greeter").invoke(person)
    assert result.status_code == 200
    # Bean names as Jackson's standard naming gives them (isAdult is "adult", getURL is "URL");
    # getNothing() returns null, so it is left out.
    assert result.json() == {
        "message": "Hello, Ann",
        "adult": True,
        "tagCount": 2,
        "city": "Oslo",
        "URL": "https://example.com/10",
    }


def test_request_handler_with_map_event_and_result(start):
    result = start(handler="example.KeyCounter").invoke({"b": 1, "a": {"nested": [1, None]}})
    # Lambda's Jackson writes no null values (NON_NULL inclusion), map entries included.
    assert result.json() == {"keys": ["a", "b"], "count": 2}


def test_request_handler_with_string_event(start):
    function = start(handler="example.Hello")
    assert function.invoke("Bob").json() == "Hello, Bob!"
    error = function.invoke({"name": "Bob"})  # an object is no String
    assert error.status_code == 500
    assert error.json() == {
        "errorMessage": "An error occurred during JSON parsing",
        "errorType": "java.lang.RuntimeException",
        "stackTrace": [],
    }


def test_request_stream_handler_gets_and_gives_bytes(start):
    result = start(handler="example.Upper").invoke(data='"héllo wörld"'.encode())
    assert result.status_code == 200
    assert result.content == '"HÉLLO WÖRLD"'.encode()


# What each example.Events handler read through the event class's getters from Lambda's sample
# event: Lambda's names (eventSourceARN, Sns, NewImage, detail-type) reach the right properties,
# and dates become the classes' Joda and java.util dates. Null values are left out of results.
EVENT_CLASS_CASES = {
    "s3": {
        "eventName": "ObjectCreated:Put",
        "eventTimeMillis": 1567539447192,  # 2019-09-03T19:37:27.192Z
        "region": "us-east-2",
        "bucket": "amzn-s3-demo-bucket",
        "key": "b21b84d653bb07b05b1e6b33684dc11b",
        "size": 1305107,
        "sourceIp": "205.255.255.255",
        "requestId": "D82B88E5F771F645",
    },
    "sqs": {
        "messageIds": [
            "059f36b4-87a3-44ab-83d2-661975830a7d",
            "2e1424d4-f796-459a-8184-9c92662be6da",
        ],
        "body": "Test message.",
        "receiveCount": "1",
        "myAttribute": "myValue",
        "dataType": "String",
        "eventSourceArn": "arn:aws:sqs:us-east-2:123456789012:my-queue",
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
    },
    "sns": {
        "eventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:sns-lambda:21be56ed-a058-49f5-8c98-aedd2564c486",
        "message": "Hello from SNS!",
        "subject": "TestInvoke",
        "topicArn": "arn:aws:sns:us-east-1:123456789012:sns-lambda",
        "timestampMillis": 1546433107000,  # 2019-01-02T12:45:07.000Z
        "testAttribute": "TestString",
        "signingCertUrl": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-ac565b8b1a6c5d002d285f9598aa1d9b.pem",
    },
    "dynamodb": {
        "eventName": "INSERT",
        "eventSourceArn": "arn:aws:dynamodb:us-east-1:123456789012:table/ExampleTableWithStream/stream/2015-06-27T00:48:05.899",
        "id": "101",
        "message": "New item!",
        "createdMillis": 1428537600000,  # ApproximateCreationDateTime is in seconds
        "sequenceNumber": "4421584500000000017450439091",
        "sizeBytes": 26,
        "streamViewType": "NEW_AND_OLD_IMAGES",
    },
    "scheduled": {
        "detailType": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "timeMillis": 1551403425000,  # 2019-03-01T01:23:45Z
        "resources": ["arn:aws:events:us-east-2:123456789012:rule/my-schedule"],
        "detail": {},
        "id": "cdc73f9d-aea9-11e3-9d5a-835b769c0d9c",
    },
    "api-gateway-rest": {
        "httpMethod": "GET",
        "path": "/",
        "host": "70ixmpl4fl.execute-api.us-east-2.amazonaws.com",
        "multiValueHost": ["70ixmpl4fl.execute-api.ca-central-1.amazonaws.com"],
        "stage": "Prod",
        "requestId": "77375676-xmpl-4b79-853a-f982474efe18",
        "sourceIp": "52.255.255.12",
        "requestTimeEpoch": 1583798639428,
        "isBase64Encoded": False,
    },
    "api-gateway-http": {
        "routeKey": "$default",
        "rawPath": "/my/path",
        "rawQueryString": "parameter1=value1&parameter1=value2&parameter2=value",
        "cookies": ["cookie1", "cookie2"],
        "header2": "value1,value2",
        "method": "POST",
        "sourceIp": "192.0.2.1",
        "claims": {"claim1": "value1", "claim2": "value2"},
        "timeEpoch": 1583348638390,
        "body": "Hello from Lambda",
        "pathParameters": {"parameter1": "value1"},
        "isBase64Encoded": False,
    },
}
EVENT_HANDLERS = {"api-gateway-rest": "apiGateway", "api-gateway-http": "httpApi"}


@pytest.mark.parametrize("event", list(EVENT_CLASS_CASES))
def test_event_classes_from_lambda_sample_events(start, event):
    function = start(handler=f"example.Events::{EVENT_HANDLERS.get(event, event)}")
    result = function.invoke(sample_event(event))
    assert result.status_code == 200, result.text
    assert result.json() == EVENT_CLASS_CASES[event]


def test_event_class_result_is_written_with_lambda_names(start):
    """An event class returned is written as Lambda's serializer writes it: the event's own
    names (Records, Sns, MessageAttributes), not Java's bean names (records, sns)."""
    event = sample_event("sns")
    result = start(handler="example.Events::snsEcho").invoke(event)
    assert result.status_code == 200, result.text
    record, sent = result.json()["Records"][0], event["Records"][0]
    assert record["EventSubscriptionArn"] == sent["EventSubscriptionArn"]
    for name in ("Message", "MessageId", "Subject", "TopicArn", "Type", "MessageAttributes"):
        assert record["Sns"][name] == sent["Sns"][name], name


@pytest.mark.parametrize(
    ("handler", "event", "expected"),
    [
        # (Map, Context) weighs 3: more than (InputStream, OutputStream) and (String).
        ("example.Overloads::pick", {"a": 5}, "map+context:5"),
        # (InputStream, OutputStream, Context) weighs 4; static methods need no instance.
        ("example.Overloads::streams", {}, "streams+context"),
        # (Context, String) is no handler signature: the (String) overload is used.
        ("example.Overloads::invalid", "x", "string:x"),
        # A RequestHandler's generic method wins over its bridge method, so the event is a Map.
        (
            "example.KeyCounter::handleRequest",
            {"k": 1},
            {"keys": ["k"], "count": 1},
        ),
    ],
)
def test_class_method_overload_choice(start, handler, event, expected):
    assert start(handler=handler).invoke(event).json() == expected


def test_dependency_jars_load_from_lib(start):
    location = start("dependency").invoke({}).json()
    assert location.startswith("file:/var/task/lib/jackson-databind-") and location.endswith(".jar")


def test_function_error_shape(start):
    function = start("fail")
    result = function.invoke({"id": 7})
    assert result.status_code == 500
    error = result.json()
    assert list(error) == ["errorMessage", "errorType", "stackTrace"]
    assert error["errorType"] == "java.lang.IllegalArgumentException"
    assert error["errorMessage"] == 'something went wrong: {"id":7}'
    # The function's frames first, and none of the runtime's own.
    assert error["stackTrace"][0].startswith("example.Handler.fail(Handler.java:")
    assert not any(frame.startswith("klr.") for frame in error["stackTrace"])
    logs = function.wait_for_log("\tat example.Handler.fail(Handler.java:")
    assert "java.lang.IllegalArgumentException: something went wrong" in logs
    assert "\tat example.Handler.fail(Handler.java:" in logs


@pytest.mark.parametrize(
    ("handler", "error"),
    [
        (
            "example.Missing::handler",
            {
                "errorMessage": "Class not found: example.Missing",
                "errorType": "java.lang.ClassNotFoundException",
            },
        ),
        (
            "example.Handler::missing",
            {
                "errorMessage": "No public method named missing with appropriate method signature found on class example.Handler"
            },
        ),
        (
            "example.Overloads::none",
            {
                "errorMessage": "No public method named none with appropriate method signature found on class example.Overloads"
            },
        ),
        ("example.Handler::", {"errorMessage": "Invalid handler: `example.Handler::'"}),
        (
            "example.Handler",
            {
                "errorMessage": "Class does not implement an appropriate handler interface: example.Handler"
            },
        ),
    ],
)
def test_unusable_handler_fails_each_invocation(start, handler, error):
    """As in the official runtime, these are no init failures: the runtime asks for work (ready)
    and answers each invocation with the error, the official body without a stack trace."""
    function = start(handler=handler)
    for _ in range(2):
        result = function.invoke({})
        assert result.status_code == 500
        assert result.json() == error


def test_constructor_that_throws_ends_init(start):
    function = start(handler="example.ConstructorError::handler", ready=False)
    for _ in range(2):
        result = function.invoke({})
        assert result.status_code == 502
        assert result.json() == {
            "errorMessage": "failed in the constructor",
            "errorType": "java.lang.IllegalStateException",
        }


def test_trace_id_client_context_and_logger(start):
    function = start("context")
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    client_context = {"custom": {"k": "v"}, "env": {"locale": "en"}}
    result = function.invoke(
        {},
        headers={
            "X-Amzn-Trace-Id": trace,
            "X-Amz-Client-Context": base64.b64encode(json.dumps(client_context).encode()).decode(),
        },
        path="/2015-03-31/functions/function/invocations",
    )
    context = result.json()
    assert context["env"]["_X_AMZN_TRACE_ID"] == trace  # com.amazonaws.xray.traceHeader
    assert context["clientContext"] == {"k": "v"}
    logged = start("logger")
    assert logged.invoke({"marker": "m-3"}).json() == "logged"
    logged.wait_for_log("lambda logger: m-3")


def test_shim_and_serializer_classes_come_from_the_cds_archive(
    docker_client, fixture_image, runtime
):
    """The image's class-data-sharing archive holds the shim's and the serializer's classes
    (bootstrap/java/cds/train.py), and the bootstrap script's JVM maps it: the classes load
    from the "shared objects file" (-verbose:class, on Java 8 and later alike)."""
    container = docker_client.containers.run(
        fixture_image,
        entrypoint=["/var/runtime/bootstrap"],
        environment={
            "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9",  # refused: the shim exits after loading
            "_HANDLER": "example.Handler::echo",
            "JAVA_TOOL_OPTIONS": "-verbose:class",
        },
        network_mode="none",
        labels=TEST_LABELS,
        detach=True,
    )
    try:
        try:
            container.wait(timeout=runtime.startup_seconds)
        except requests.exceptions.RequestException:
            pytest.fail(f"the bootstrap did not exit within {runtime.startup_seconds} s")
        output = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    for name in ("klr.Bootstrap", "klr.HandlerLoader", SERIALIZER_CLASS):
        loaded = [line for line in output.splitlines() if f"{name} " in line]
        assert loaded and "shared objects file" in loaded[0], loaded or output[-2000:]


def test_seed_example(docker_client, runtime):
    """The seed's java8 example (serverless's aws-java-maven template) from its own Dockerfile,
    behind the API Gateway mapping: the ApiGatewayResponse bean becomes the HTTP response."""
    function = seed_function(docker_client, runtime, "java8", EVENT_TYPE="API_GATEWAY")
    try:
        result = requests.post(function.url + "/hello?x=1", json={"name": "Foo"}, timeout=60)
        assert result.status_code == 200
        assert result.headers["X-Powered-By"] == "AWS Lambda & serverless"
        body = result.json()
        assert body["message"] == "Go Serverless v1.x! Your function executed successfully!"
        assert body["input"]["httpMethod"] == "POST" and body["input"]["path"] == "/hello"
        assert json.loads(body["input"]["body"]) == {"name": "Foo"}
    finally:
        function.remove()
