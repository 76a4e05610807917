"""A scripted Runtime API that checks a shim's connection rules (bootstrap/README.md, section 2).

Run as `python3 shim_probe.py SCENARIO DEADLINE COMMAND...`, it serves 127.0.0.1 on a free
port, starts COMMAND with AWS_LAMBDA_RUNTIME_API pointing there (the rest of the environment
passes through: _HANDLER, LAMBDA_TASK_ROOT), answers each request as the scenario says, and
prints a JSON report: every connection with the requests it carried, the shim's exit status,
its stdout and stderr. The tests assert on the report. It runs on the host (tests/) and inside
an image with the image's python3 (conformance/), so: standard library only, Python 3.7+.
"""

import json
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import time

EVENT = b'{"probe": 1}'
REQUEST_ID = "probe-request-1"
# What the server does with the n-th request, whichever connection carries it; requests past
# the script are dropped. "drop" reads the request, then closes the connection unanswered.
SCENARIOS = {
    # A result whose connection drops is sent again, on a new connection; a `next` that drops
    # twice in a row means the server is gone.
    "dropped": ["event", "drop", "accepted", "drop", "drop"],
    # A refused result is not fatal; a status the API never gives ends the shim.
    "refused": ["event", "too large", "server error"],
    # An event that does not decode is the function's error, posted as one.
    "bad event": ["bad event", "accepted", "server error"],
}


NEXT = "GET /2018-06-01/runtime/invocation/next"
RESPONSE = f"POST /2018-06-01/runtime/invocation/{REQUEST_ID}/response"
ERROR = f"POST /2018-06-01/runtime/invocation/{REQUEST_ID}/error"
ERROR_CONTENT_TYPE = "application/vnd.aws.lambda.error+json"
UNEXPECTED_500 = f"bootstrap: the Runtime API answered {NEXT} with HTTP 500"
# What each scenario must see: the requests of each connection, and the shim's last words.
EXPECTED = {
    "dropped": (
        [[NEXT, RESPONSE], [RESPONSE, NEXT], [NEXT]],
        "bootstrap: lost the Runtime API at ",
    ),
    "refused": ([[NEXT, RESPONSE, NEXT]], UNEXPECTED_500),
    "bad event": ([[NEXT, ERROR, NEXT]], UNEXPECTED_500),
}
MISSING_SETTING = (
    "bootstrap: {} is not set; the runtime server (/opt/aws-custom-runtime) sets it to {} for "
    "each bootstrap it starts: run that, or set it yourself"
)
MISSING_RUNTIME_API = MISSING_SETTING.format(
    "AWS_LAMBDA_RUNTIME_API", "host:port of the Runtime API"
)
MISSING_TASK_ROOT = MISSING_SETTING.format("LAMBDA_TASK_ROOT", "the folder of the function's code")


def problems(scenario, report):
    """How the shim's report breaks the rules of bootstrap/README.md (none: an empty list)."""
    connections, last_words = EXPECTED[scenario]
    seen = [[f"{r['method']} {r['path']}" for r in c] for c in report["connections"]]
    found = []
    if seen != connections:
        found.append(f"requests by connection: {seen}, expected {connections}")
    for request in posted(report, "/response"):
        if json.loads(request["body"] or "null") != json.loads(EVENT):
            found.append(f"posted the response {request['body']!r}, expected the event echoed")
    for request in posted(report, "/error"):
        headers = request["headers"]
        if headers.get("content-type") != ERROR_CONTENT_TYPE:
            found.append(f"posted an error as {headers.get('content-type')!r}")
        if not headers.get("lambda-runtime-function-error-type"):
            found.append("posted an error without Lambda-Runtime-Function-Error-Type")
    if report["status"] != 1:
        found.append(f"exit status {report['status']}, expected 1")
    lines = report["stderr"].strip().splitlines()
    if not lines or not lines[-1].startswith(last_words):
        found.append(f"last line of stderr: {lines[-1:]}, expected {last_words!r}...")
    return found


def posted(report, kind):
    """The POST requests of the report whose path ends with `kind`."""
    requests = [r for c in report["connections"] for r in c if r["method"] == "POST"]
    return [r for r in requests if r["path"].endswith(kind)]


def answer(action):
    """The bytes that answer a request, or None to drop the connection."""
    if action in ("event", "bad event"):
        deadline_ms = int(time.time() * 1000) + 300000
        return response(
            "200 OK",
            EVENT if action == "event" else b"{not json",
            "Content-Type: application/json\r\n"
            f"Lambda-Runtime-Aws-Request-Id: {REQUEST_ID}\r\n"
            f"Lambda-Runtime-Deadline-Ms: {deadline_ms}\r\n"
            "Lambda-Runtime-Invoked-Function-Arn: "
            "arn:aws:lambda:us-east-1:012345678912:function:function\r\n"
            "Lambda-Runtime-Trace-Id: Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=1\r\n",
        )
    if action == "accepted":
        return response("202 Accepted", b'{"status":"OK"}', "Content-Type: application/json\r\n")
    if action == "too large":
        body = b'{"errorType":"RequestEntityTooLarge","errorMessage":"Payload too large"}'
        return response("413 Payload Too Large", body, "Content-Type: application/json\r\n")
    if action == "server error":
        body = b'{"errorType":"ServiceException","errorMessage":"gone wrong"}'
        return response("500 Internal Server Error", body, "Content-Type: application/json\r\n")
    return None


def response(status, body, headers):
    head = f"HTTP/1.1 {status}\r\n{headers}Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


class Connection:
    """One accepted connection: reads whole requests from it as they arrive."""

    def __init__(self, sock):
        self.sock = sock
        self.buffer = b""
        self.requests = []

    def read_request(self):
        """The next request, once complete; None while incomplete; raises EOFError at the end."""
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError
        self.buffer += chunk
        head, separator, rest = self.buffer.partition(b"\r\n\r\n")
        if not separator:
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, path = lines[0].split(" ")[:2]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = parse_body(rest, headers)
        if body is None:
            return None
        self.buffer = body[1]
        return {"method": method, "path": path, "headers": headers, "body": body[0].decode()}


def parse_body(data, headers):
    """(body, what follows it) once the body is complete, else None."""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size_line, separator, data = data.partition(b"\r\n")
            if not separator:
                return None
            size = int(size_line.split(b";")[0], 16)
            if len(data) < size + 2:
                return None
            body, data = body + data[:size], data[size + 2 :]
            if size == 0:
                return body, data
    length = int(headers.get("content-length", "0"))
    if len(data) < length:
        return None
    return data[:length], data[length:]


class ScriptedApi:
    """The listening socket and its connections, answering requests in the scenario's order."""

    def __init__(self, scenario):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.script = list(SCENARIOS[scenario])
        self.connections = []
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)

    def serve(self, timeout):
        """Handle what arrives within `timeout` seconds."""
        for key, _ in self.selector.select(timeout):
            if key.fileobj is self.listener:
                connection = Connection(self.listener.accept()[0])
                self.connections.append(connection)
                self.selector.register(connection.sock, selectors.EVENT_READ, connection)
            else:
                self.handle(key.data)

    def handle(self, connection):
        try:
            request = connection.read_request()
        except (EOFError, OSError):  # the shim closed it
            self.close(connection)
            return
        if request is None:
            return
        connection.requests.append(request)
        reply = answer(self.script.pop(0) if self.script else "drop")
        if reply is None:
            self.close(connection)
        else:
            connection.sock.sendall(reply)

    def close(self, connection):
        self.selector.unregister(connection.sock)
        connection.sock.close()


def probe(scenario, deadline_s, command):
    api = ScriptedApi(scenario)
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=api.address)
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        shim = subprocess.Popen(command, env=env, stdout=stdout, stderr=stderr)
        # Until the shim exits, or the deadline: each scenario ends with the shim's exit.
        give_up = time.monotonic() + deadline_s
        while shim.poll() is None and time.monotonic() < give_up:
            api.serve(min(0.1, max(0.0, give_up - time.monotonic())))
        api.serve(0)  # connections made just before the exit
        status = shim.poll()
        if status is None:
            shim.kill()
        shim.wait()
        stdout.seek(0)
        stderr.seek(0)
        return {
            "address": api.address,
            "connections": [c.requests for c in api.connections],
            "status": status,
            "stdout": stdout.read().decode("utf-8", "replace"),
            "stderr": stderr.read().decode("utf-8", "replace"),
        }


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1], float(sys.argv[2]), sys.argv[3:])))
