"""The function's own logs as Lambda writes them (issue 8, item 5): AWS_LAMBDA_LOG_FORMAT=JSON
turns each record of the language's usual logger into one JSON line, AWS_LAMBDA_LOG_LEVEL drops
the records below it, and the text format (the default) keeps each runtime's text lines.

Lambda writes JSON application logs only on some runtimes ("Supported runtimes and logging
methods", Lambda developer guide): Python 3.8 and later (the logging module), Node.js 16 and later
(console.*), every Java runtime but java8 on Amazon Linux 1 (LambdaLogger). Ruby's are those of
Lambda's Ruby runtime client from aws-lambda-ruby-runtime-interface-client PR #58 ("Add structured
JSON logging support", for OCI images and Lambda's managed runtimes, which run that client from
Ruby 3.2): a `Logger` on $stdout gets AWS_LAMBDA_LOG_LEVEL's level and, in JSON, writes
{timestamp, level, message, requestId} records; `puts` and the function's error report stay text;
the older Ruby images (Lambda's ruby2.5 and ruby2.7 ran the text-only client; Lambda never had a
ruby3.1) stay text and filter nothing. On the runtimes without JSON logs the JSON format leaves the
function's lines as they are in text, and these tests check exactly that. One `levels` handler per
language logs one record at each level, then prints one plain line (conformance/README.md).
"""

from __future__ import annotations

import json
import re
import uuid

LANGUAGE = ("python", "node", "ruby", "java")

TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"

# With AWS_LAMBDA_LOG_LEVEL=INFO, what the `levels` handler's records are: (level, message start),
# in order. Python's logger, Node's console.log, Java's LambdaLogger.log(String) (level
# UNDEFINED, never dropped) and Ruby's Logger#unknown (ANY) have levels of their own.
KEPT = {
    "python": [
        ("INFO", "info"),
        ("WARNING", "warning"),
        ("ERROR", "error"),
        ("CRITICAL", "critical"),
    ],
    "node": [("INFO", "info"), ("INFO", "log"), ("WARN", "warn"), ("ERROR", "error")],
    "java": [
        ("INFO", "info"),
        ("WARN", "warn"),
        ("ERROR", "error"),
        ("FATAL", "fatal"),
        ("UNDEFINED", "unleveled"),
    ],
    "ruby": [
        ("INFO", "info"),
        ("WARN", "warn"),
        ("ERROR", "error"),
        ("FATAL", "fatal"),
        ("ANY", "unknown"),
    ],
}
DROPPED = {
    "python": ["debug"],
    "node": ["trace", "debug"],
    "java": ["trace", "debug"],
    "ruby": ["debug"],
}
# The request id's field: Java's runtime names it as its Gson class does.
REQUEST_ID_FIELD = {
    "python": "requestId",
    "node": "requestId",
    "java": "AWSRequestId",
    "ruby": "requestId",
}


def json_logs(runtime) -> bool:
    """Whether Lambda's runtime for this image writes JSON application logs."""
    version = tuple(int(part) for part in runtime.version.split("."))
    return {
        "python": version >= (3, 8),
        "node": version >= (16,),
        "java": version != (8,),  # Lambda's java8 is the Amazon Linux 1 runtime
        "ruby": version >= (3, 2),
    }[runtime.language]


def applies_log_level(runtime) -> bool:
    """Whether the image's runtime drops records below AWS_LAMBDA_LOG_LEVEL: Lambda's java8 and
    its Ruby runtimes before the logging controls (Ruby 3.2) have no levels to apply."""
    if runtime.language == "ruby":
        return json_logs(runtime)
    return not (runtime.language == "java" and runtime.version == "8")


def function_lines(logs: str, marker: str) -> list[str]:
    return [line for line in logs.split("\n") if marker in line]


def invoke_levels(function, marker: str, **extra) -> tuple[str, str]:
    """Invokes `levels`; its request id and the log once the invocation's output is in it."""
    response = function.invoke({"marker": marker, **extra})
    assert (response.status_code == 200) != bool(extra.get("fail")), response.text
    wait_for = f"levels failed: {marker}" if extra.get("fail") else f"plain print: {marker}"
    return response.headers["X-Amzn-RequestId"], function.wait_for_log(wait_for)


def assert_text(runtime, logs: str, marker: str, request_id: str) -> None:
    """The runtime's text lines, as they were before JSON logs existed, and no JSON record."""
    for line in function_lines(logs, marker):
        assert not line.startswith("{"), f"a JSON line in the text format: {line}"
    assert re.search(rf"plain print: {marker}$", logs, re.M), logs  # Java's may follow a message
    language = runtime.language
    if language == "python":
        for level, start in KEPT["python"]:
            assert re.search(
                rf"^\[{level}\]\t{TIMESTAMP}\t{request_id}\t{start} record: {marker}$", logs, re.M
            ), f"no [{level}] line in\n{logs}"
    elif language == "node":
        for level, start in KEPT["node"]:
            assert re.search(
                rf"^{TIMESTAMP}\t{request_id}\t{level}\t{start} record: {marker}$", logs, re.M
            ), f"no {level} line in\n{logs}"
    elif language == "java" and runtime.version != "8":
        # LambdaLogger adds no newline: the messages run on in one line.
        for level, start in KEPT["java"]:
            prefix = "" if level == "UNDEFINED" else f"[{level}] "
            assert f"{prefix}{start} record: {marker}" in logs
    elif language == "java":
        # java8's LambdaLogger has no levels: every message, as it is.
        for start in ("trace", "debug", "info", "warn", "error", "fatal", "unleveled"):
            assert f"{start} record: {marker}" in logs
        assert f"[INFO] info record: {marker}" not in logs
    else:
        # Ruby's Logger, in its own format; before Ruby 3.2 Lambda's runtime filters no level.
        kept = KEPT["ruby"] if applies_log_level(runtime) else [("DEBUG", "debug"), *KEPT["ruby"]]
        for level, start in kept:
            assert re.search(
                rf"^{level[0]}, \[[^\]]+\] +{level} -- : {start} record: {marker}$", logs, re.M
            ), f"no {level} line in\n{logs}"
    if applies_log_level(runtime):
        for start in DROPPED[language]:
            assert f"{start} record: {marker}" not in logs


def test_json_log_format(start, runtime):
    """Issue 8 item 5: with AWS_LAMBDA_LOG_FORMAT=JSON, each record of the language's logger is
    one JSON line {timestamp, level, requestId (the invocation's), message}, the records below
    AWS_LAMBDA_LOG_LEVEL are dropped, and plain output stays text. On images whose Lambda
    runtime has text logs only, the lines stay text."""
    function = start("levels", AWS_LAMBDA_LOG_FORMAT="JSON", AWS_LAMBDA_LOG_LEVEL="INFO")
    marker = f"m-{uuid.uuid4().hex[:12]}"
    request_id, logs = invoke_levels(function, marker)
    if not json_logs(runtime):
        assert_text(runtime, logs, marker, request_id)
        return
    language = runtime.language
    lines = function_lines(logs, marker)
    assert f"plain print: {marker}" in lines, "print() must stay a plain text line"
    records = [json.loads(line) for line in lines if line != f"plain print: {marker}"]
    assert [(r["level"], r["message"]) for r in records] == [
        (level, f"{start} record: {marker}") for level, start in KEPT[language]
    ], logs
    for record in records:
        assert re.fullmatch(TIMESTAMP, record["timestamp"]), record
        assert record[REQUEST_ID_FIELD[language]] == request_id, record
        if language == "python":
            assert record["logger"] == "levels"
        elif language == "ruby":
            assert "logger" not in record  # a Logger without a progname


def test_json_error_record(start, runtime):
    """Issue 8 item 5: in the JSON log format a function error is logged as one JSON record of
    level ERROR naming the error (Python: the error's own fields; Node.js: the error as the
    message; Java: the stack trace as the message); text-only runtimes keep their text, and so
    does Ruby's report of the error (its runtime client writes it with puts, PR #58 changes
    only the Logger)."""
    function = start("levels", AWS_LAMBDA_LOG_FORMAT="JSON", AWS_LAMBDA_LOG_LEVEL="INFO")
    marker = f"m-{uuid.uuid4().hex[:12]}"
    request_id, logs = invoke_levels(function, marker, fail=True)
    failure = f"levels failed: {marker}"
    lines = function_lines(logs, failure)
    assert lines, logs
    if not json_logs(runtime) or runtime.language == "ruby":
        assert not any(line.startswith("{") for line in lines), lines
        return
    records = [json.loads(line) for line in lines]
    assert len(records) == 1, lines
    record = records[0]
    assert record["level"] == "ERROR"
    assert record[REQUEST_ID_FIELD[runtime.language]] == request_id
    if runtime.language == "python":
        assert (record["errorType"], record["errorMessage"]) == ("ValueError", failure)
        assert record["stackTrace"]
    elif runtime.language == "node":
        assert record["message"]["errorType"] == "Error"
        assert record["message"]["errorMessage"] == failure
    else:
        # The official runtime's error text: message, class, then the stack trace.
        assert record["message"].startswith(f"{failure}: java.lang.IllegalStateException\n")


def test_text_log_format(start, runtime):
    """Issue 8 item 5: the text format, Lambda's default, keeps each runtime's text lines (with
    AWS_LAMBDA_LOG_LEVEL applied where the runtime applies it)."""
    function = start("levels", AWS_LAMBDA_LOG_LEVEL="INFO")
    marker = f"m-{uuid.uuid4().hex[:12]}"
    request_id, logs = invoke_levels(function, marker)
    assert_text(runtime, logs, marker, request_id)
