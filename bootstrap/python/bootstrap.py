#!/usr/bin/env python
"""KLR bootstrap shim: a small Lambda runtime client for Python functions.

Installed as /var/runtime/bootstrap. It imports the function named by _HANDLER,
then loops over the Lambda Runtime API (2018-06-01) at $AWS_LAMBDA_RUNTIME_API:
get an event, call handler(event, context), post the result or error. What the
function observes (error types and messages, context object, log format) follows
the official Python runtime. Its sections and rules are those of every shim
(bootstrap/README.md). Standard library only; Python 2.7 and 3.7+.
"""

# Python 2.7 needs u"" literals, (object) bases, socket.error and %-formatting
# (str.format does not promote to unicode). Catch-all excepts are deliberate.
# ruff: noqa: UP003, UP004, UP024, UP025, UP031, BLE001

import decimal
import importlib
import json
import logging
import os
import socket
import sys
import time
import traceback

try:
    from http.client import HTTPConnection, HTTPException
except ImportError:  # Python 2
    from httplib import HTTPConnection, HTTPException

TEXT = type(u"")  # unicode on Python 2, str on Python 3
NBSP = u"\u00a0"

_request_id = ""  # the current invocation, for the log line prefix


# ---- 1. Settings -------------------------------------------------------------

MISSING_SETTING = ("bootstrap: %s is not set; the runtime server (/opt/aws-custom-runtime) "
                   "sets it to %s for each bootstrap it starts: run that, or set it yourself")


def required_setting(name, meaning):
    """A setting the runtime server always gives: without it, say so and exit 1."""
    value = os.environ.get(name, "")
    if not value:
        sys.exit(MISSING_SETTING % (name, meaning))
    return value


# Lambda's Python runtimes write the logging module's records as JSON from Python 3.8 on
# (AWS_LAMBDA_LOG_FORMAT=JSON); print() stays text. Older ones have text logs only.
JSON_LOGS = os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON" and sys.version_info >= (3, 8)


# ---- 2. Runtime API client ---------------------------------------------------

API_PREFIX = "/2018-06-01/runtime"
ERROR_CONTENT_TYPE = "application/vnd.aws.lambda.error+json"


class Invocation(object):
    """What next_invocation returns: the request id, the event bytes, the headers."""

    def __init__(self, headers, event):
        self.headers = dict((name.lower(), value) for name, value in headers)
        self.event = event
        self.request_id = self.header("Lambda-Runtime-Aws-Request-Id")

    def header(self, name):
        return self.headers.get(name.lower())


class NoDelayConnection(HTTPConnection):
    """Python 3's http.client writes a request's head and body separately: with Nagle's
    algorithm on, the body would wait for the head's acknowledgement, delayed by the server."""

    def connect(self):
        HTTPConnection.connect(self)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class RuntimeApiClient(object):
    """The Runtime API over one keep-alive HTTP/1.1 connection, with the rules of
    bootstrap/README.md: one retry, an unexpected status ends the process."""

    def __init__(self, address):
        self.address = address
        self.conn = NoDelayConnection(address)  # no timeout: next blocks until an event

    def next_invocation(self):
        path = API_PREFIX + "/invocation/next"
        response, body = self._request("GET", path)
        if response.status != 200:
            self._unexpected("GET", path, response.status)
        return Invocation(response.getheaders(), body)

    def post_response(self, request_id, body, content_type):
        self._post("/invocation/%s/response" % request_id, body, {"Content-Type": content_type})

    def post_error(self, request_id, body, error_type):
        self._post("/invocation/%s/error" % request_id, body, self._error_headers(error_type))

    def post_init_error(self, body, error_type):
        self._post("/init/error", body, self._error_headers(error_type))

    @staticmethod
    def _error_headers(error_type):
        # A header holds printable ASCII; a class name may not be.
        printable = "".join(c if u" " <= c <= u"~" else "?" for c in error_type)
        return {"Content-Type": ERROR_CONTENT_TYPE, "Lambda-Runtime-Function-Error-Type": printable}

    def _post(self, route, body, headers):
        path = API_PREFIX + route
        response, _ = self._request("POST", path, body, headers)
        if 400 <= response.status < 500:
            # The server refused this result (too large, stale id) and settled the
            # invocation itself: carry on.
            sys.stderr.write("bootstrap: the Runtime API refused POST %s with HTTP %d\n"
                             % (path, response.status))
        elif response.status != 202:
            self._unexpected("POST", path, response.status)

    def _request(self, method, path, body=None, headers=None):
        for _ in range(2):  # a dropped keep-alive connection is retried once
            try:
                self.conn.request(method, path, body, headers or {})
                response = self.conn.getresponse()
                return response, response.read()
            except (HTTPException, socket.error) as e:
                self.conn.close()
                failure = "%s: %s" % (type(e).__name__, _text(e))
        # The server is gone; it reports the lost bootstrap itself.
        sys.exit("bootstrap: lost the Runtime API at %s: %s" % (self.address, failure))

    @staticmethod
    def _unexpected(method, path, status):
        sys.exit("bootstrap: the Runtime API answered %s %s with HTTP %d" % (method, path, status))


# ---- 3. Errors ---------------------------------------------------------------

class Fault(Exception):
    """An error reported as (Runtime.* type, message, stack trace)."""


def _text(value):
    """str(value) as text. Python 2 needs care with non-ASCII messages."""
    try:
        value = value if isinstance(value, TEXT) else str(value)
    except UnicodeError:  # Python 2: str() of an exception with a unicode message
        value = TEXT(value)
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _json_default(value):
    # The official client serialises Decimal (boto3's DynamoDB number type).
    if isinstance(value, decimal.Decimal):
        if value.is_finite() and value == value.to_integral_value():
            return int(value)
        return float(value)
    raise TypeError("Object of type %s is not JSON serializable" % type(value).__name__)


def to_json(value):
    text = json.dumps(value, default=_json_default)
    return text if isinstance(text, bytes) else text.encode("utf-8")


def make_error(error_type, message, trace, request_id=""):
    return {"errorMessage": message, "errorType": error_type,
            "requestId": request_id, "stackTrace": trace}


def describe_exception():
    """(type, message, trace) for the exception being handled."""
    etype, value, tb = sys.exc_info()
    if isinstance(value, Fault):
        return value.args
    # Like the official client, the trace starts at the first frame outside this file.
    frames = traceback.extract_tb(tb)
    while frames and frames[0][0] == describe_exception.__code__.co_filename:
        frames.pop(0)
    return etype.__name__, _text(value), [_text(line) for line in traceback.format_list(frames)]


def log_error(error):
    """Log an error as the official runtime does: CR-joined, NBSP-indented lines
    that line-based log collectors keep as one record; in the JSON log format, one
    record of the error with its time (seconds) and level."""
    if JSON_LOGS:
        record = {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), "level": "ERROR"}
        record.update(error)
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + u"\n")
        return
    head = "[ERROR]"
    if error["errorType"]:
        head += " " + error["errorType"] + (":" if error["errorMessage"] else "")
    if error["errorMessage"]:
        head += " " + error["errorMessage"]
    lines = [head, "Traceback (most recent call last):"]
    for entry in error["stackTrace"]:
        for line in entry.splitlines() or [""]:
            stripped = line.lstrip(" ")
            lines.append(NBSP * (len(line) - len(stripped)) + stripped)
    sys.stdout.write(u"\r".join(lines) + u"\n")


class Py2LineBuffered(object):
    """Python 2 stand-in for a line-buffered stream: its files cannot change
    buffering in place, and reopening them would lose PYTHONIOENCODING."""

    def __init__(self, stream):
        self.stream = stream

    def __getattr__(self, name):
        return getattr(self.stream, name)

    def write(self, text):
        if isinstance(text, TEXT):  # a pipe has no encoding: default to UTF-8
            text = text.encode(self.stream.encoding or "utf-8")
        self.stream.write(text)
        if b"\n" in text:
            self.stream.flush()


class RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = _request_id
        return True


# What a JSON record takes from a LogRecord by name; the rest of its attributes (the
# logging call's `extra`) become fields of their own, as on Lambda.
RECORD_ATTRIBUTES = frozenset((
    "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module",
    "exc_info", "exc_text", "stack_info", "lineno", "funcName", "created", "msecs",
    "relativeCreated", "thread", "threadName", "processName", "process", "aws_request_id",
))


class JsonFormatter(logging.Formatter):
    """A logging record as Lambda's JSON log format writes it: one line, the fields the
    official runtime gives, those without a value left out."""

    def format(self, record):
        level = min(50, max(0, record.levelno)) // 10 * 10  # custom levels round down
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        etype, value, tb = record.exc_info or (None, None, None)
        fields = {  # in the official runtime's order
            "timestamp": "%s.%03dZ" % (stamp, record.msecs),
            "level": logging.getLevelName(level),
            "message": record.getMessage(),
            "logger": record.name,
            "stackTrace": traceback.format_tb(tb) if tb else None,
            "errorType": etype.__name__ if etype else None,
            "errorMessage": _text(value) if etype else None,
            "requestId": record.aws_request_id,
            "location": "%s:%s:%d" % (record.pathname, record.funcName, record.lineno)
            if etype else None,
        }
        for key, extra in record.__dict__.items():
            if key not in RECORD_ATTRIBUTES and key not in fields:
                fields[key] = extra
        kept = {key: value for key, value in fields.items() if value is not None}
        return json.dumps(kept, ensure_ascii=False)


def setup_output():
    # Line buffering makes the function's output reach the server before the
    # result is posted (we also flush then), so it precedes the END line.
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True)
        else:
            setattr(sys, name, Py2LineBuffered(stream))
    handler = logging.StreamHandler(sys.stdout)
    if JSON_LOGS:
        formatter = JsonFormatter()
    else:
        formatter = logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
            "%Y-%m-%dT%H:%M:%S")
        formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    # Without AWS_LAMBDA_LOG_LEVEL the official runtime leaves the root
    # logger at Python's default, WARNING.
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "")
    level = logging.getLevelName("DEBUG" if level == "TRACE" else level.upper())
    if isinstance(level, int):
        root.setLevel(level)


def flush_output():
    # What the function wrote reaches the server before its result, so before END.
    sys.stdout.flush()
    sys.stderr.flush()


# ---- 4. Context --------------------------------------------------------------

CLIENT_FIELDS = ("installation_id", "app_title", "app_version_name",
                 "app_version_code", "app_package_name")


class Attributes(object):
    """Plain attribute holder for context.identity and context.client_context."""

    def __init__(self, **values):
        self.__dict__.update(values)


def parse_json_header(value, what):
    if not value:
        return None
    try:
        return json.loads(value)
    except Exception as e:
        raise Fault("Runtime.LambdaContextUnmarshalError",
                    "Unable to parse %s JSON: %s" % (what, _text(e)), [])


class LambdaContext(object):
    def __init__(self, request_id, header):
        env = os.environ.get
        self.aws_request_id = request_id
        self.function_name = env("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = env("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = env("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env("AWS_LAMBDA_LOG_STREAM_NAME")
        self.invoked_function_arn = header("Lambda-Runtime-Invoked-Function-Arn")
        self.tenant_id = header("Lambda-Runtime-Aws-Tenant-Id")
        self._deadline_ms = int(header("Lambda-Runtime-Deadline-Ms") or 0)
        cognito = parse_json_header(header("Lambda-Runtime-Cognito-Identity"), "Cognito Identity") or {}
        self.identity = Attributes(cognito_identity_id=cognito.get("cognitoIdentityId"),
                                   cognito_identity_pool_id=cognito.get("cognitoIdentityPoolId"))
        client_context = parse_json_header(header("Lambda-Runtime-Client-Context"), "Client Context")
        self.client_context = None
        if client_context is not None:
            client = client_context.get("client")
            if client is not None:
                client = Attributes(**{f: client.get(f) for f in CLIENT_FIELDS})
            self.client_context = Attributes(client=client, custom=client_context.get("custom"),
                                             env=client_context.get("env"))

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def log(self, msg):
        sys.stdout.write(_text(msg))  # no newline added, as in the official client


# ---- 5. Handler loading ------------------------------------------------------

def load_handler(task_root, name):
    # Lambda's order: function code, then layers.
    sys.path[0:0] = [task_root, "/opt/python/lib/python%d.%d/site-packages" % sys.version_info[:2],
                     "/opt/python"]
    try:
        module_name, function_name = name.rsplit(".", 1)
    except ValueError:
        # Python 3's unpacking message, which the official client reports.
        raise Fault("Runtime.MalformedHandlerName", "Bad handler '%s': not enough "
                    "values to unpack (expected 2, got 1)" % name, [])
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise Fault("Runtime.BuiltInModuleConflict",
                    "Cannot use built-in module %s as a handler module" % module_name, [])
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as e:
        raise Fault("Runtime.ImportModuleError",
                    "Unable to import module '%s': %s" % (module_name, _text(e)), [])
    except SyntaxError as e:
        where = u'  File "%s" Line %s\n    %s' % (e.filename, e.lineno, _text(e.text))
        raise Fault("Runtime.UserCodeSyntaxError",
                    "Syntax error in module '%s': %s" % (module_name, _text(e)), [where])
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise Fault("Runtime.HandlerNotFound",
                    "Handler '%s' missing on module '%s'" % (function_name, module_name), [])


# ---- 6. The loop -------------------------------------------------------------

def unmarshal(body, content_type):
    # Events that are not JSON reach the handler as raw bytes.
    if content_type and content_type.split(";")[0].strip().lower() != "application/json":
        return body
    try:
        return json.loads(body)
    except Exception as e:
        raise Fault("Runtime.UnmarshalError", "Unable to unmarshal input: %s" % _text(e), [])


def marshal(result):
    # Python 3 bytes go out unchanged, as the official client sends them.
    if isinstance(result, bytes) and bytes is not str:
        return result, "application/unknown"
    try:
        return to_json(result), "application/json"
    except Exception as e:
        raise Fault("Runtime.MarshalError", "Unable to marshal response: %s" % _text(e), [])


def serve_one(api, handler):
    global _request_id
    invocation = api.next_invocation()
    request_id = _request_id = invocation.request_id
    trace_id = invocation.header("Lambda-Runtime-Trace-Id")
    if trace_id:
        os.environ["_X_AMZN_TRACE_ID"] = trace_id
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)
    error = None
    try:
        context = LambdaContext(request_id, invocation.header)
        event = unmarshal(invocation.event, invocation.header("Content-Type"))
        payload, content_type = marshal(handler(event, context))
    except Exception:
        error = make_error(*describe_exception(), request_id=request_id)
        log_error(error)
    flush_output()
    if error is None:
        api.post_response(request_id, payload, content_type)
    else:
        api.post_error(request_id, to_json(error), error["errorType"])


def main():
    runtime_api = required_setting("AWS_LAMBDA_RUNTIME_API", "host:port of the Runtime API")
    task_root = required_setting("LAMBDA_TASK_ROOT", "the folder of the function's code")
    setup_output()
    api = RuntimeApiClient(runtime_api)
    try:
        handler = load_handler(task_root, os.environ.get("_HANDLER", ""))
    except Exception:
        error = make_error(*describe_exception())
        log_error(error)
        api.post_init_error(to_json(error), error["errorType"])
        sys.exit(1)
    while True:
        serve_one(api, handler)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
