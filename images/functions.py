"""Function images: a user's project built on a klr image as the user's `docker build` would,
and each language's sample functions (conformance/fixtures/<language>/), which the
conformance suite tests and `invoke bench` measures.

Everything the suites and bench start or build carries TEST_LABELS, so `invoke clean` finds
leftovers.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import docker

from images import REPO_ROOT
from images.matrix import IMAGE_PREFIX, Runtime

SAMPLES_DIR = REPO_ROOT / "conformance" / "fixtures"
TEST_LABELS = {"klr.test": "1"}
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# The host's Go proxy settings, passed to builds that fetch modules.
FORWARDED_SETTINGS = ("GOPROXY", "GONOSUMDB", "GOPRIVATE")


@dataclass(frozen=True)
class Samples:
    """A language's sample functions: where they are, and what their handlers are called."""

    folder: str  # under conformance/fixtures/
    handler: str  # a sample's handler name, {} standing for the function: "handler.{}"
    built_with: tuple[str, ...] = ()  # runtimes whose images the samples' Dockerfile builds in


# Go programs are built in klr-go (the README's multi-stage recipe), then run in klr-go itself
# or in klr-provided.
GO_SAMPLES = Samples("go", "{}", built_with=("go",))
SAMPLES = {
    "python": Samples("python", "handler.{}"),
    "node": Samples("node", "handler.{}"),
    "ruby": Samples("ruby", "handler.{}"),
    "java": Samples("java", "example.Handler::{}"),
    "go": GO_SAMPLES,
    "provided": GO_SAMPLES,
}


def with_builders(runtimes: list[Runtime]) -> list[str]:
    """The runtimes' ids followed by those of the images their samples are built in."""
    ids = [r.id for r in runtimes]
    return list(dict.fromkeys(ids + [b for r in runtimes for b in SAMPLES[r.language].built_with]))


def sample_image(client: docker.DockerClient, runtime: Runtime, purpose: str) -> str:
    """The runtime's language's sample functions built on its image, tagged
    klr-<purpose>-<id>; fails if an image the build needs is missing."""
    samples = SAMPLES[runtime.language]
    files = project_files(SAMPLES_DIR / samples.folder)
    return build(client, f"{IMAGE_PREFIX}{purpose}-{runtime.id}", files, runtime.image)


def project_files(folder: Path) -> dict[str, bytes]:
    """A user's project: every file under the folder, by relative path. A Maven project is
    built on the host first, as Java users do (`mvn package`, output under target/)."""
    if (folder / "pom.xml").exists():
        built = subprocess.run(
            ["mvn", "-q", "-B", "package"], cwd=folder, capture_output=True, text=True, check=False
        )
        if built.returncode != 0:
            raise RuntimeError(f"mvn package failed in {folder}:\n{built.stdout}{built.stderr}")
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def build(
    client: docker.DockerClient,
    tag: str,
    files: dict[str, bytes],
    image: str,
    ca_in_context: bool = True,
) -> str:
    """Build a user's project (its Dockerfile among the files) on a klr image, given as the
    IMAGE build arg. The context also holds ca-certificates.crt, the host's CA bundle, which
    the build stages of Dockerfiles that fetch dependencies copy: this machine's HTTPS goes
    through an intercepting proxy (unless ca_in_context is false: see trusting_image). The
    host's Go proxy setting is forwarded likewise."""
    if ca_in_context:
        files = {**files, "ca-certificates.crt": host_ca_bundle()}
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            # Scripts are executable, as in the user's checkout (a bootstrap must be).
            info.size, info.mode = len(content), 0o755 if content.startswith(b"#!") else 0o644
            tar.addfile(info, io.BytesIO(content))
    archive.seek(0)
    build_args = {
        "IMAGE": image,
        **{name: os.environ[name] for name in FORWARDED_SETTINGS if name in os.environ},
    }
    client.images.build(
        fileobj=archive,
        custom_context=True,
        tag=tag,
        rm=True,
        labels=TEST_LABELS,
        buildargs=build_args,
    )
    return tag


TRUSTING_DOCKERFILE = b"""ARG IMAGE
FROM ${IMAGE}
COPY ca-certificates.crt /etc/ssl/certs/this-machine.crt
ENV PIP_CERT=/etc/ssl/certs/this-machine.crt \\
    NPM_CONFIG_CAFILE=/etc/ssl/certs/this-machine.crt
"""


def trusting_image(client: docker.DockerClient, runtime: Runtime) -> str:
    """The runtime's image with this machine's CA bundle as pip's and npm's trust, as a
    company's base image carries its proxy's CA: the base on which a Dockerfile that must
    stay verbatim but for FROM (the original KLR's, which fetch with no CA line of their own)
    is built, with ca_in_context=False so that `COPY . .` takes no CA. Test images only; no
    klr image carries the CA."""
    return build(
        client,
        f"{IMAGE_PREFIX}trusting-{runtime.id}",
        {"Dockerfile": TRUSTING_DOCKERFILE},
        runtime.image,
    )


def host_ca_bundle() -> bytes:
    return Path(os.environ.get("SSL_CERT_FILE", HOST_CA_BUNDLE)).read_bytes()
