"""What only the Go image shows: the seed's go example, built with the README's recipe, and a
private module fetched with a build secret."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conformance.harness import HERE, run_function, seed_function
from conformance.private_go_proxy import PASSWORD, PrivateModuleProxy
from images import functions
from images.matrix import IMAGE_PREFIX

LANGUAGE = "go"


def test_seed_example(docker_client, runtime):
    """HandleRequest(ctx, MyEvent), built in klr-go, served by klr-go itself."""
    function = seed_function(docker_client, runtime, "go")
    try:
        result = function.invoke({"name": "Foo"})
        assert (result.status_code, result.json()) == (200, "Hello Foo!")
    finally:
        function.remove()


def buildkit_build() -> list[str]:
    """A docker CLI command that builds with BuildKit (build secrets need it): `docker buildx`,
    or a CLI older than 23, such as Debian's docker.io, which has BuildKit built in."""
    if (
        subprocess.run(["docker", "buildx", "version"], capture_output=True, check=False).returncode
        == 0
    ):
        return ["docker", "buildx", "build", "--load"]
    for cli in ("/usr/bin/docker", "docker"):
        version = subprocess.run(
            [cli, "version", "--format", "{{.Client.Version}}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if version.returncode == 0 and int(version.stdout.split(".")[0]) < 23:
            return [cli, "build"]
    pytest.fail(
        "building with a secret needs BuildKit: install docker-buildx, or Debian's docker.io"
    )


def public_goproxy() -> str:
    """The host's Go module proxy setting, which serves every module but the private one."""
    return subprocess.run(
        ["go", "env", "GOPROXY"], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_private_module_through_build_secret(docker_client, runtime, tmp_path):
    """A private module from a proxy that wants a password: the .netrc is a build secret, the
    build gets the module, and the password is in no layer of the image."""
    project = HERE / "dependencies" / "go-private"
    context = tmp_path / "context"
    shutil.copytree(project / "function", context)
    with PrivateModuleProxy(project / "module", tmp_path) as proxy:
        (tmp_path / "netrc").write_text(proxy.netrc)
        (context / "ca-certificates.crt").write_bytes(
            Path(os.environ.get("SSL_CERT_FILE", functions.HOST_CA_BUNDLE)).read_bytes()
            + proxy.certificate.read_bytes()
        )
        tag = f"{IMAGE_PREFIX}private-go-{runtime.id}"
        subprocess.run(
            [
                *buildkit_build(),
                "--network",
                "host",
                *(f"--label={k}={v}" for k, v in functions.TEST_LABELS.items()),
                "--tag",
                tag,
                "--secret",
                f"id=netrc,src={tmp_path / 'netrc'}",
                "--build-arg",
                f"IMAGE={runtime.image}",
                "--build-arg",
                f"GOPROXY=https://{proxy.host},{public_goproxy()}",
                str(context),
            ],
            check=True,
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
        )
        assert proxy.authorised_requests and not proxy.refused_requests
    layers = b"".join(docker_client.images.get(tag).save())
    assert PASSWORD.encode() not in layers
    function = run_function(docker_client, runtime, tag)
    try:
        assert function.invoke({"name": "Foo"}).json() == "Hello Foo, from a private module!"
    finally:
        function.remove()
