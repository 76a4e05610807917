"""The base root filesystem recipe: a minimal Debian suite, imported as klr-base:<suite>.

mmdebstrap builds it straight from Debian's archive and its tarball is streamed into the
engine, so a build needs no container registry and leaves no tarball behind. The result is
reused until it is refreshed (or removed by `invoke clean`).
"""

import json
import subprocess
import time

import docker

from images import UserError, host
from images.build import Result, size_mb
from images.matrix import BASE_REPOSITORY, base_image

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
LOCALE_HOOK = 'chroot "$1" localedef -i en_US -c -f UTF-8 en_US.UTF-8'
# Installs usr-is-merged up front; without it apt satisfies init-system-helpers with usrmerge,
# which drags in perl (about 50 MB). A no-op on suites that have no such package.
MERGED_USR_HOOKS = "/usr/share/mmdebstrap/hooks/maybe-merged-usr"


def mmdebstrap_command(suite: str, verbose: bool = False) -> list[str]:
    """The mmdebstrap call that writes the suite's root filesystem as a tarball to stdout."""
    sources = [f"deb {MIRROR} {suite} main"]
    if suite not in ROLLING_SUITES:
        sources += [
            f"deb {MIRROR} {suite}-updates main",
            f"deb {SECURITY_MIRROR} {suite}-security main",
        ]
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
        f"--customize-hook={LOCALE_HOOK}",
        "--format=tar",
        suite,
        "-",
        *sources,
    ]


def ensure(
    client: docker.APIClient, suite: str, refresh: bool = False, verbose: bool = False
) -> Result:
    """Build klr-base:<suite> unless it exists (or refresh is asked for)."""
    what, image = f"debian {suite}", base_image(suite)
    if not refresh and client.images(name=image):
        return Result(image, what, None, size_mb(client, image), "exists, reused")
    host.ensure_mmdebstrap()
    print(f"Building {image} from {MIRROR} with mmdebstrap (about 30 s)", flush=True)
    started = time.monotonic()
    # mmdebstrap's messages go to stderr, that is to the terminal; the tarball to the engine.
    proc = subprocess.Popen(mmdebstrap_command(suite, verbose), stdout=subprocess.PIPE)
    try:
        reply = client.import_image(
            src=iter(lambda: proc.stdout.read(1 << 20), b""),
            stream_src=True,
            changes=["ENV LANG=en_US.UTF-8", 'CMD ["bash"]'],
        )
    except docker.errors.APIError as e:
        proc.terminate()
        raise UserError(f"importing {image} into Docker failed: {e.explanation}") from None
    finally:
        proc.stdout.close()
        returncode = proc.wait()
    image_id, error = _import_outcome(reply)
    # Only tagged once mmdebstrap succeeded, so a broken tarball never becomes the base.
    if returncode != 0:
        if image_id:
            client.remove_image(image_id)
        raise UserError(
            f"mmdebstrap failed for suite '{suite}' (exit {returncode}); its output is above"
        )
    if not image_id:
        raise UserError(f"importing {image} into Docker failed: {error or reply!r}")
    client.tag(image_id, BASE_REPOSITORY, suite)
    return Result(image, what, time.monotonic() - started, size_mb(client, image))


def _import_outcome(reply: str) -> tuple[str | None, str | None]:
    """The image id and the error in the engine's import reply, a stream of JSON lines."""
    image_id = error = None
    for message in (json.loads(line) for line in reply.splitlines() if line.strip()):
        if message.get("status", "").startswith("sha256:"):
            image_id = message["status"]
        error = message.get("error", error)
    return image_id, error
