"""Knative's own code, built from the Go module in conformance/knative/ for the tests: the
queue-proxy (`knative.dev/serving/cmd/queue`) and the manifest validator (`./validate`).

Each program is built once into ~/.cache/klr/tools, named by a hash of the module's files, so
that a change to go.mod, go.sum or a source file builds it anew.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from images.peers import TOOLS_DIR

MODULE_DIR = Path(__file__).with_name("knative")
QUEUE_PROXY = "knative.dev/serving/cmd/queue"
# From an empty module cache: the downloads, then compiling Kubernetes' client libraries on 2
# busy cores (about 80 s idle).
BUILD_SECONDS = 900


def program(package: str) -> Path:
    """The built program of a package of the module (an import path, or ./<folder>)."""
    go = shutil.which("go", path=f"{os.environ.get('PATH', '')}:/usr/local/go/bin")
    assert go, "the Knative tests build Knative's Go code: install Go (1.22 or later)"
    name = package.rstrip("/").rsplit("/", 1)[-1]
    binary = TOOLS_DIR / f"knative-{name}-{_module_hash()}"
    if binary.exists():
        return binary
    TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=TOOLS_DIR) as workdir:
        built = Path(workdir) / name
        subprocess.run(
            [go, "build", "-o", str(built), package],
            cwd=MODULE_DIR,
            env={**os.environ, "CGO_ENABLED": "0"},
            check=True,
            timeout=BUILD_SECONDS,
        )
        # Moved in whole, so that a build cut short is never taken for a finished one.
        os.replace(built, binary)
    return binary


def _module_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in MODULE_DIR.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(MODULE_DIR)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]
