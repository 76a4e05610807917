"""The base root filesystem recipe: a minimal Debian suite, loaded as klr-base:<suite>.

mmdebstrap builds it straight from Debian's archive, so a build needs no container registry.
The build is reproducible: the same archive state gives the same tarball, byte for byte, and
the same image id. SOURCE_DATE_EPOCH is the archive state's time (the newest Date of the
suite's Release files); mmdebstrap clamps every mtime to it and the packages' scripts honour
it, and the image config is written here with that time as `created`, never the build's. The
result is reused until it is refreshed (or removed by `invoke clean`).
"""

import hashlib
import json
import os
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import docker
import requests

from images import UserError, host
from images.build import Result, size_mb
from images.matrix import base_image

MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
# Suites that are updated in place and have no -updates or -security companions.
ROLLING_SUITES = ("sid", "unstable")
# python3 runs the runtime server (python3-minimal lacks json); locales gives en_US.UTF-8, the
# LANG Lambda sets.
PACKAGES = ("python3", "ca-certificates", "locales")
# Kept out by dpkg, now and in every later apt-get install in the images.
PATH_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*")
PATH_INCLUDES = ("/usr/share/doc/*/copyright",)
CUSTOMIZE_HOOKS = (
    'chroot "$1" localedef -i en_US -c -f UTF-8 en_US.UTF-8',
    # mmdebstrap copies both from the build host (its name and resolver); Docker provides them
    # in every container.
    'rm -f "$1/etc/hostname" "$1/etc/resolv.conf"',
    # Backups of the state before the last package was set up: of no use in an image.
    'rm -f "$1"/var/cache/debconf/*-old "$1"/var/lib/dpkg/*-old',
)
# Installs usr-is-merged up front; without it apt satisfies init-system-helpers with usrmerge,
# which drags in perl (about 50 MB). A no-op on suites that have no such package.
MERGED_USR_HOOKS = "/usr/share/mmdebstrap/hooks/maybe-merged-usr"
# What `docker import` gave the bases before; the images set their own on top.
IMAGE_CONFIG = {"Env": ["LANG=en_US.UTF-8"], "Cmd": ["bash"]}
RELEASE_TIMEOUT_SECONDS = 30
CHUNK_BYTES = 1 << 20


def archives(suite: str) -> list[tuple[str, str]]:
    """The (mirror, distribution) pairs a suite's packages come from."""
    if suite in ROLLING_SUITES:
        return [(MIRROR, suite)]
    return [(MIRROR, suite), (MIRROR, f"{suite}-updates"), (SECURITY_MIRROR, f"{suite}-security")]


def source_date_epoch(suite: str) -> int:
    """The archive state's time: the newest Date of the suite's Release files, so that the same
    package versions give the same epoch."""
    dates = []
    for mirror, dist in archives(suite):
        url = f"{mirror}/dists/{dist}/InRelease"
        try:
            reply = requests.get(url, timeout=RELEASE_TIMEOUT_SECONDS)
            reply.raise_for_status()
        except requests.RequestException as e:
            raise UserError(f"cannot read {url} ({e}); check the network and the mirror") from None
        dates.append(release_date(reply.text, url))
    return max(dates)


def mmdebstrap_command(
    suite: str, output: Path, release_dates: Path, verbose: bool = False
) -> list[str]:
    """The mmdebstrap call that writes the suite's root filesystem as a tarball to output, and
    the Date lines of the Release files it used to release_dates."""
    # Written inside the chroot (its /tmp is emptied before packing) and downloaded: that works
    # in every mmdebstrap mode, root or not.
    keep_dates = (
        'grep -h "^Date:" "$1"/var/lib/apt/lists/*Release > "$1/tmp/release-dates"',
        f"download /tmp/release-dates {release_dates}",
    )
    return [
        "mmdebstrap",
        *(() if verbose else ("--quiet",)),
        "--variant=minbase",
        f"--include={','.join(PACKAGES)}",
        f"--hook-dir={MERGED_USR_HOOKS}",
        # A rolling suite's Release file may be older than its Valid-Until on a mirror that
        # lags; the option stays in the rootfs, for the images' own apt-get runs.
        *(('--aptopt=Acquire::Check-Valid-Until "false"',) if suite in ROLLING_SUITES else ()),
        *(f"--dpkgopt=path-exclude={p}" for p in PATH_EXCLUDES),
        *(f"--dpkgopt=path-include={p}" for p in PATH_INCLUDES),
        *(f"--customize-hook={hook}" for hook in (*CUSTOMIZE_HOOKS, *keep_dates)),
        "--format=tar",
        suite,
        str(output),
        *(f"deb {mirror} {dist} main" for mirror, dist in archives(suite)),
    ]


def ensure(
    client: docker.APIClient,
    suite: str,
    refresh: bool = False,
    verbose: bool = False,
    image: str | None = None,
) -> Result:
    """Build the suite's base unless it exists (or refresh is asked for), tagged image:
    klr-base:<suite> unless another name is given."""
    what, image = f"debian {suite}", image or base_image(suite)
    if not refresh and client.images(name=image):
        return Result(image, what, None, size_mb(client, image), "exists, reused")
    print(f"Building {image} from {MIRROR} with mmdebstrap (about 30 s)", flush=True)
    started = time.monotonic()
    repository, _, tag = image.rpartition(":")
    client.tag(build(client, suite, verbose), repository, tag)
    return Result(image, what, time.monotonic() - started, size_mb(client, image))


def build(client: docker.APIClient, suite: str, verbose: bool = False) -> str:
    """Build the suite's root filesystem and load it into the engine, untagged; its image id."""
    host.ensure_mmdebstrap()
    epoch = source_date_epoch(suite)
    with tempfile.TemporaryDirectory(prefix="klr-base-") as folder:
        layer, dates = Path(folder, "layer.tar"), Path(folder, "release-dates")
        command = mmdebstrap_command(suite, layer, dates, verbose)
        # mmdebstrap's messages go to stderr, that is to the terminal.
        proc = subprocess.Popen(command, env={**os.environ, "SOURCE_DATE_EPOCH": str(epoch)})
        try:
            returncode = proc.wait()
        except BaseException:
            proc.terminate()  # mmdebstrap removes its chroot on the way out
            proc.wait()
            raise
        if returncode != 0:
            raise UserError(
                f"mmdebstrap failed for suite '{suite}' (exit {returncode}); its output is above"
            )
        used = release_date(dates.read_text(), "the apt lists")
        if used != epoch:
            raise UserError(
                f"Debian's archive changed while the {suite} base was built (Release files of "
                f"{_timestamp(epoch)}, then of {_timestamp(used)}); build it again"
            )
        config = image_config(client.version()["Arch"], suite, epoch, _sha256(layer))
        return _load(client, layer, config)


def _load(client: docker.APIClient, layer: Path, config: bytes) -> str:
    """Load the layer with its config into the engine as a docker-archive (the `docker save`
    format), streamed; the image id, which is the config's digest."""
    manifest = [{"Config": "config.json", "RepoTags": None, "Layers": ["layer.tar"]}]
    members = {
        "manifest.json": json.dumps(manifest).encode(),
        "config.json": config,
        "layer.tar": layer,
    }
    image_id = f"sha256:{hashlib.sha256(config).hexdigest()}"
    try:
        messages = list(client.load_image(tar_stream(members)))
    except docker.errors.APIError as e:
        raise UserError(f"loading the base into Docker failed: {e.explanation}") from None
    # An error after the reply started is a message of the stream; before, its whole body.
    errors = [m.get("error") or m.get("message") for m in messages]
    if any(errors):
        raise UserError(f"loading the base into Docker failed: {'; '.join(filter(None, errors))}")
    try:
        client.inspect_image(image_id)
    except docker.errors.ImageNotFound:
        raise UserError(f"Docker did not load the base as {image_id}: {messages!r}") from None
    return image_id


def image_config(architecture: str, suite: str, epoch: int, layer_digest: str) -> bytes:
    """The image config (the OCI/Docker image JSON) of a base: the same bytes for the same
    layer and epoch, never the build's time."""
    created = _timestamp(epoch)
    config = {
        "architecture": architecture,
        "os": "linux",
        "created": created,
        "config": IMAGE_CONFIG,
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
        "history": [{"created": created, "created_by": f"mmdebstrap {suite} (KLR base)"}],
    }
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def tar_stream(members: dict[str, bytes | Path]) -> Iterator[bytes]:
    """A tar archive of the members (contents, or a file to copy), in chunks."""
    for name, content in members.items():
        info = tarfile.TarInfo(name)
        info.size = len(content) if isinstance(content, bytes) else content.stat().st_size
        yield info.tobuf(format=tarfile.PAX_FORMAT)
        if isinstance(content, bytes):
            yield content
        else:
            with content.open("rb") as f:
                yield from iter(lambda: f.read(CHUNK_BYTES), b"")
        yield tarfile.NUL * (-info.size % tarfile.BLOCKSIZE)
    yield tarfile.NUL * (2 * tarfile.BLOCKSIZE)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def release_date(text: str, source: str) -> int:
    """The newest Date: line of Release files' text, as a Unix time."""
    dates = [line.partition(":")[2] for line in text.splitlines() if line.startswith("Date:")]
    if not dates:
        raise UserError(f"no Date in the Release file of {source}; check the mirror")
    return max(int(parsedate_to_datetime(d.strip()).timestamp()) for d in dates)


def _timestamp(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
