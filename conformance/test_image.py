"""Image properties, checked inside a running container with testinfra."""

from __future__ import annotations

import json

import pytest
import testinfra

from images import sbom
from images.bench import VERSION_PROBES

OCI_LABELS = (
    "source",
    "revision",
    "created",
    "version",
    "licenses",
    "title",
    "description",
    "base.name",
    "base.digest",
)


@pytest.fixture
def host(start):
    function = start("echo")
    return testinfra.get_host(f"docker://{function.container.id}")


def listening_addresses(host) -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket, read from /proc (no ss in the image)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in host.file(table).content_string.splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A":  # LISTEN
                address, port = local.split(":")
                found.add((address, int(port, 16)))
    return found


def test_default_user_is_not_root(host):
    assert host.user().uid == 993
    assert host.user().name == "sbx_user1051"


def test_lambda_layout(host, runtime):
    # go and provided run the function's own bootstrap; the languages have a shim.
    bootstrap = (
        "/var/task/bootstrap"
        if runtime.language in ("go", "provided")
        else "/var/runtime/bootstrap"
    )
    assert host.file(bootstrap).mode & 0o111
    assert host.file("/opt/aws-custom-runtime").mode & 0o111
    assert host.file("/var/task").listdir()
    assert host.file("/opt").is_directory
    assert host.file("/tmp").mode == 0o1777


def test_language_version(host, runtime, docker_client):
    """The exact version `invoke bench` reports (and the README shows) is the row's version,
    and the one the build labelled and tagged the image with (read from its packages)."""
    output = host.run(VERSION_PROBES[runtime.language])
    assert output.rc == 0, output.stderr
    assert runtime.version in output.stdout
    labelled = docker_client.images.get(runtime.image).labels["org.opencontainers.image.version"]
    if runtime.language == "provided":  # the probe names the suite; the label, its release
        assert labelled == host.file("/etc/debian_version").content_string.strip()
    else:  # pypy7.3.5 or jruby9.2.21.0 is "... on PyPy 7.3.5", "... on JRuby 9.2.21.0"
        assert labelled.removeprefix("pypy").removeprefix("jruby") in output.stdout


def test_every_oci_label_is_set_and_the_sbom_is_beside_the_image(docker_client, runtime):
    labels = docker_client.images.get(runtime.image).labels
    for name in OCI_LABELS:
        assert labels.get(f"org.opencontainers.image.{name}"), name
    assert labels["org.opencontainers.image.base.name"] == runtime.base_image
    assert (
        labels["org.opencontainers.image.base.digest"]
        == docker_client.images.get(runtime.base_image).id
    )
    document = json.loads(sbom.sbom_file(runtime).read_text())
    assert (
        document["metadata"]["component"]["version"] == labels["org.opencontainers.image.version"]
    )
    (commit,) = document["metadata"]["properties"]
    assert commit["value"] == labels["org.opencontainers.image.revision"]


def test_runtime_api_listens_on_loopback_only(host):
    listeners = listening_addresses(host)
    others = {(address, port) for address, port in listeners if port != 8080}
    assert others, "the Runtime API ports are missing"
    loopback_v4 = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it
    assert all(address == loopback_v4 for address, _ in others), listeners


def test_no_build_secrets_in_the_image(docker_client, runtime):
    history = docker_client.api.history(runtime.image)
    steps = " ".join(step.get("CreatedBy", "") for step in history)
    for secret in ("BEGIN CERTIFICATE", "SSL_CERT_FILE", "PIP_INDEX_URL", "GOPROXY"):
        assert secret not in steps
