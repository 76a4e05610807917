"""The unit tests' fixtures; the helpers they use are in local_server.py."""

from __future__ import annotations

import sys

import pytest

from tests.local_server import PYTHON_SHIM, LocalServer


@pytest.fixture
def start_server(tmp_path):
    """start_server(handler, bootstrap=None, ready=True, **env): a running server."""
    servers: list[LocalServer] = []

    def start(
        handler: str = "handler.echo",
        bootstrap: str | None = None,
        interpreter: str = sys.executable,
        ready: bool = True,
        **env: str,
    ) -> LocalServer:
        command = bootstrap or f"exec {interpreter} {PYTHON_SHIM}"
        server = LocalServer(
            tmp_path / f"server{len(servers)}", command, {"_HANDLER": handler, **env}
        )
        servers.append(server)
        return server.start(ready)

    yield start
    for server in servers:
        server.stop()
