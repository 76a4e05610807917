"""Files a build needs from a registry (a Node.js binary, a Go toolchain), fetched on the host.

Fetching here, not in a Dockerfile, keeps the network and any proxy CA out of every image: the
host's own trust settings (SSL_CERT_FILE) apply. Files are checked against the row's sha256 and
kept in ~/.cache/klr/downloads (KLR_DOWNLOAD_CACHE), so a rebuild fetches nothing.
"""

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from images import UserError
from images.matrix import Download

CACHE = Path(os.environ.get("KLR_DOWNLOAD_CACHE", Path.home() / ".cache" / "klr" / "downloads"))
CHUNK_BYTES = 1 << 20


def fetch(download: Download) -> Path:
    """The downloaded file, from the cache or the registry; a UserError if it can't be had."""
    path = CACHE / download.name
    if path.is_file() and _sha256(path) == download.sha256:
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    print(f"Downloading {download.url}", flush=True)
    try:
        with urllib.request.urlopen(download.url, timeout=60) as reply, open(partial, "wb") as out:
            while chunk := reply.read(CHUNK_BYTES):
                out.write(chunk)
    except (urllib.error.URLError, OSError) as e:
        partial.unlink(missing_ok=True)
        raise UserError(f"cannot download {download.url}: {e}; check the network or proxy "
                        "settings (SSL_CERT_FILE for an intercepting proxy)") from None
    digest = _sha256(partial)
    if digest != download.sha256:
        partial.unlink()
        raise UserError(f"{download.url} has sha256 {digest}, but images/runtimes.toml expects "
                        f"{download.sha256}: the file changed upstream or was tampered with")
    partial.rename(path)
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
