"""The unit tests' shared helpers: the server (`python3 -m klr`) and its bootstraps as local
processes, no Docker; start_server (conftest.py) starts them."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.endpoint import Endpoint
from tests.rawhttp import free_port_block

REPO = Path(__file__).resolve().parents[1]
PYTHON_SHIM = REPO / "bootstrap" / "python" / "bootstrap.py"
PYTHON_FIXTURES = REPO / "conformance" / "fixtures" / "python"
API = "/2018-06-01/runtime"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def python_interpreters() -> list[str]:
    """The host's Python 3, plus Python 2.7 where installed: the shim must run on both."""
    candidates = [
        shutil.which("python2.7") or "",
        *glob.glob(os.path.expanduser("~/.pyenv/versions/2.7*/bin/python2.7")),
    ]
    working = [
        path
        for path in candidates
        if path
        and subprocess.run([path, "-c", ""], capture_output=True, check=False).returncode == 0
    ]
    return [sys.executable, *working[:1]]


class LocalServer(Endpoint):
    """The server with one bootstrap command, in a folder of its own: task/, runtime/, its log."""

    def __init__(self, root: Path, bootstrap: str, env: dict[str, str]):
        self.task_root = root / "task"
        self.runtime_dir = root / "runtime"
        shutil.copytree(PYTHON_FIXTURES, self.task_root)
        self.runtime_dir.mkdir()
        script = self.runtime_dir / "bootstrap"
        script.write_text("#!/bin/sh\n" + bootstrap + "\n")
        script.chmod(0o755)
        self.port = free_port()
        self.api_port = free_port_block(int(env.get("INVOKER_COUNT", "1")))
        self.log_path = root / "server.log"
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "PORT": str(self.port),
            "KLR_RUNTIME_API_PORT": str(self.api_port),
            "LAMBDA_TASK_ROOT": str(self.task_root),
            "LAMBDA_RUNTIME_DIR": str(self.runtime_dir),
            "INVOKER_COUNT": "1",
            **env,
        }
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def runtime_api(self, invoker: int = 0) -> str:
        return f"http://127.0.0.1:{self.api_port + invoker}{API}"

    def start(self, ready: bool) -> LocalServer:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "klr"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.wait_for("/_klr/ready" if ready else "/_klr/health")
        return self

    def exit_status(self) -> str | None:
        code = self.process.poll()
        return None if code is None else f"exited {code}"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                raise
        return self.process.returncode
