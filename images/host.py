"""The host's prerequisites: a reachable Docker engine and mmdebstrap.

When we are root on Debian, what is missing is installed with apt and a stopped engine is
started, so `./invoke build` works on a fresh machine; otherwise the error says what to do.
"""

import os
import shutil
import subprocess
import time
from pathlib import Path

import docker
import requests

from images import UserError

DOCKERD_LOG = Path("/tmp/klr-dockerd.log")
DOCKERD_WAIT_SECONDS = 60
# Builds stream output, but one step (a big apt install) can stay silent for minutes.
API_TIMEOUT_SECONDS = 900


def docker_client() -> docker.APIClient | None:
    """A client of the engine named by the environment (DOCKER_HOST...), or None if unreachable."""
    try:
        # Creating the client asks the engine for its API version, so this is also the ping.
        return docker.from_env(timeout=API_TIMEOUT_SECONDS).api
    except (docker.errors.DockerException, requests.RequestException):
        return None


def ensure_docker() -> docker.APIClient:
    """A client of a running engine: installs and starts dockerd when we may, else fails clearly."""
    client = docker_client()
    if client:
        return client
    if os.environ.get("DOCKER_HOST"):
        raise UserError(
            f"cannot reach the Docker engine at DOCKER_HOST={os.environ['DOCKER_HOST']}; "
            "start it there, or unset DOCKER_HOST to use the local engine"
        )
    dockerd = _which("dockerd")
    if not dockerd:
        apt_install("docker.io", why="the Docker engine (dockerd) is not installed")
        # On a host with systemd the package has started the engine already.
        client = docker_client()
        if client:
            return client
        dockerd = _which("dockerd") or "dockerd"
    if os.geteuid() != 0:
        raise UserError(
            "cannot reach the Docker engine; start it (sudo systemctl start docker), and if it "
            "runs, make sure you may use its socket (sudo usermod -aG docker $USER, then log in)"
        )
    return _start_dockerd(dockerd)


def ensure_mmdebstrap() -> None:
    """Make sure mmdebstrap, which builds the base root filesystems, is on PATH."""
    if not _which("mmdebstrap"):
        apt_install("mmdebstrap", why="mmdebstrap (builds the Debian base images) is not installed")


def _start_dockerd(dockerd: str) -> docker.APIClient:
    print(f"Starting dockerd in the background (log: {DOCKERD_LOG})", flush=True)
    with DOCKERD_LOG.open("ab") as log:
        # A new session, so the engine outlives this command and its Ctrl-C.
        proc = subprocess.Popen(
            [dockerd], stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    deadline = time.monotonic() + DOCKERD_WAIT_SECONDS
    while time.monotonic() < deadline:
        client = docker_client()
        if client:
            return client
        if proc.poll() is not None:
            raise UserError(f"dockerd exited with code {proc.returncode}; see {DOCKERD_LOG}")
        time.sleep(0.5)
    raise UserError(
        f"dockerd started but did not answer within {DOCKERD_WAIT_SECONDS} s; see {DOCKERD_LOG}"
    )


def _which(program: str) -> str | None:
    # sbin is often missing from a user's PATH, yet that is where dockerd lives.
    return shutil.which(program, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/bin")


def apt_install(package: str, why: str) -> None:
    if os.geteuid() != 0 or not Path("/etc/debian_version").exists():
        raise UserError(f"{why}; install the package '{package}' (or your system's equivalent)")
    print(f"{why}: installing {package} with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", package]):
        if subprocess.run(command, check=False, env=env).returncode != 0:
            raise UserError(f"{why}, and `{' '.join(command)}` failed; install {package} by hand")
