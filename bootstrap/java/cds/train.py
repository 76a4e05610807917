"""Builds the Java shim's class-data-sharing (AppCDS) archive at image build time.

Runs the image's own bootstrap script on a training function (training/Echo.java) against a
Runtime API played here on 127.0.0.1, so that the JVM sees the classes a start-up and the first
invocations load, with the class path and options of a real start. JDK 13 and later write the
archive when that JVM exits (-XX:ArchiveClassesAtExit); earlier ones record the class list
(-XX:DumpLoadedClassList) and dump it in a second run (-Xshare:dump; on JDK 8, where the shim
is on the boot class path, SharedArchiveFile is a diagnostic option).

Usage: python3 train.py <java major version> <archive> <bootstrap> <task root> <handler>
"""

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

EVENTS = [
    {"name": "first", "values": [1, 2, 3], "extra": {"nested": {"a": [True, None, 1.5]}}},
    {"name": "second", "flag": True, "unknown": "ignored"},
    {"values": []},  # no name: the function throws, and the error is posted
]
BOOTSTRAP_SECONDS = 300  # a JVM on a busy build machine, several times its usual start


class RuntimeApi(BaseHTTPRequestHandler):
    """Hands out EVENTS, one per /next, then answers 500, which ends the shim."""

    protocol_version = "HTTP/1.1"
    events = list(EVENTS)

    def do_GET(self):
        if not self.events:
            self.answer(500, b'{"errorType":"training.Done"}', {})
            return
        event = json.dumps(self.events.pop(0)).encode()
        self.answer(
            200,
            event,
            {
                "Lambda-Runtime-Aws-Request-Id": f"training-{len(self.events)}",
                "Lambda-Runtime-Deadline-Ms": "4102444800000",
                "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:0:function:training",
                "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000",
            },
        )

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.answer(202, b'{"status":"OK"}', {})

    def answer(self, status, body, headers):
        self.send_response(status)
        for name, value in {**headers, "Content-Type": "application/json"}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def run_bootstrap(bootstrap, task_root, handler, java_options):
    server = HTTPServer(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        **os.environ,
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "LAMBDA_TASK_ROOT": task_root,
        "_HANDLER": handler,
        "JAVA_TOOL_OPTIONS": java_options,
    }
    done = subprocess.run([bootstrap], env=env, timeout=BOOTSTRAP_SECONDS, check=False)
    server.shutdown()
    if RuntimeApi.events:
        sys.exit(f"train.py: the bootstrap exited ({done.returncode}) before taking every event")


def main():
    version, archive, bootstrap, task_root, handler = sys.argv[1:]
    if int(version) >= 13:
        run_bootstrap(bootstrap, task_root, handler, f"-XX:ArchiveClassesAtExit={archive}")
    else:
        class_list = archive + ".classlist"
        run_bootstrap(bootstrap, task_root, handler, f"-XX:DumpLoadedClassList={class_list}")
        unlock = "-XX:+UnlockDiagnosticVMOptions " if int(version) < 9 else ""
        dump = f"{unlock}-Xshare:dump -XX:SharedClassListFile={class_list} -XX:SharedArchiveFile={archive}"
        subprocess.run([bootstrap], env={**os.environ, "JAVA_TOOL_OPTIONS": dump}, check=True)
        os.remove(class_list)
    if not os.path.isfile(archive):
        sys.exit(f"train.py: the JVM wrote no archive at {archive}")


if __name__ == "__main__":
    main()
