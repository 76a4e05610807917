"""The Invoke API through the official AWS client, against each image's container: boto3's
invoke_with_response_stream parses the event stream the server writes (on the image's own
Python) and checks every CRC. One container per image."""

from __future__ import annotations

import base64
import json

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

from conformance.harness import Function


def lambda_client(function: Function):
    """boto3's Lambda client for the container's published port, with dummy credentials."""
    return boto3.client(
        "lambda",
        endpoint_url=function.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=botocore.config.Config(
            connect_timeout=5, read_timeout=60, retries={"total_max_attempts": 1}
        ),
    )


def test_invoke_with_response_stream_and_the_client_context_limit(start):
    """checklist 71, 69, 65: InvokeWithResponseStream answers the function's result as a
    PayloadChunk and an InvokeComplete, with Lambda's headers; DryRun is 204; a client
    context of 3,584 bytes is refused with 400, on both Invoke routes."""
    function = start("context")
    client = lambda_client(function)
    context = base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode()
    answer = client.invoke_with_response_stream(
        FunctionName="function", Payload=b'{"a": 1}', ClientContext=context
    )
    events = list(answer["EventStream"])
    assert answer["StatusCode"] == 200 and answer["ExecutedVersion"] == "$LATEST"
    assert answer["ResponseStreamContentType"] == "application/vnd.amazon.eventstream"
    chunks = [e["PayloadChunk"]["Payload"] for e in events[:-1]]
    assert len(chunks) == 1 and events[-1] == {"InvokeComplete": {}}
    result = json.loads(chunks[0])
    assert result["requestId"] == answer["ResponseMetadata"]["RequestId"]
    assert result["functionName"] == "function"

    dry = client.invoke_with_response_stream(FunctionName="function", InvocationType="DryRun")
    assert dry["StatusCode"] == 204

    oversized = base64.b64encode(b'{"custom":{"pad":"' + b"x" * 2667 + b'"}}').decode()
    assert len(oversized) == 3584
    for call in (client.invoke, client.invoke_with_response_stream):
        with pytest.raises(ClientError) as refused:
            call(FunctionName="function", Payload=b"{}", ClientContext=oversized)
        assert refused.value.response["Error"]["Code"] == "InvalidParameterValueException"
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
