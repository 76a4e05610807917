"""A private Go module proxy on 127.0.0.1 that wants credentials, as a company's would: HTTPS
with a certificate of its own (the go command sends credentials over HTTPS only), and a
password that the go command finds in a .netrc."""

from __future__ import annotations

import base64
import io
import json
import ssl
import subprocess
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MODULE = "example.com/private"
VERSION = "v1.0.0"
USER, PASSWORD = "builder", "private-token-5f1c"


class PrivateModuleProxy:
    """Serves MODULE at VERSION from a folder, in the GOPROXY protocol, to requests that bring
    USER and PASSWORD; anything else is 404, so the go command asks the next proxy."""

    def __init__(self, source: Path, scratch: Path):
        files = {path.name: path.read_bytes() for path in source.iterdir()}
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as module_zip:
            for name, content in files.items():
                module_zip.writestr(f"{MODULE}@{VERSION}/{name}", content)
        prefix = f"/{MODULE}/@v/"
        self.answers = {
            prefix + "list": VERSION.encode() + b"\n",
            prefix + f"{VERSION}.info": json.dumps(
                {"Version": VERSION, "Time": "2026-01-01T00:00:00Z"}
            ).encode(),
            prefix + f"{VERSION}.mod": files["go.mod"],
            prefix + f"{VERSION}.zip": archive.getvalue(),
        }
        self.authorised_requests = 0
        self.refused_requests = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.certificate, key = scratch / "proxy.crt", scratch / "proxy.key"
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-keyout",
                str(key),
                "-out",
                str(self.certificate),
            ],
            check=True,
            capture_output=True,
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certificate, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_port}"

    @property
    def netrc(self) -> str:
        return f"machine {self.host} login {USER} password {PASSWORD}\n"

    def _handler(self):
        proxy = self
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = proxy.answers.get(self.path)
                if body is None:
                    self.send_error(404)
                elif self.headers.get("Authorization") != expected:
                    proxy.refused_requests += 1
                    self.send_error(401)
                else:
                    proxy.authorised_requests += 1
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        return Handler

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
