"""What only Python images show: the seed's python27/python37 example."""

from __future__ import annotations

import json

import pytest
import testinfra

from conformance.harness import HERE, Function, run_function
from images import functions
from images.matrix import IMAGE_PREFIX

LANGUAGE = "python"


@pytest.mark.parametrize(
    "entrypoint",
    ["", 'ENTRYPOINT ["/opt/aws-custom-runtime"]\n'],
    ids=["three_lines", "seed_entrypoint"],
)
def test_seed_example(docker_client, runtime, entrypoint):
    """handler.endpoint from the seed, built from the user's three-line Dockerfile, and from the
    original KLR Dockerfile that names the entrypoint, answers a curl-style POST."""
    files = functions.project_files(HERE / "seed" / "python27")
    files["Dockerfile"] += entrypoint.encode()
    tag = functions.build(
        docker_client, f"{IMAGE_PREFIX}seed-python-{runtime.id}", files, runtime.image
    )
    function = run_function(docker_client, runtime, tag)
    try:
        result = function.invoke(data='{"name":"Foo"}')
        assert result.status_code == 200
        assert result.json()["statusCode"] == 200
        assert json.loads(result.json()["body"])["message"].startswith(
            "Hello, the current time is "
        )
    finally:
        function.remove()


def test_the_server_is_not_importable_by_the_function(start):
    """The function's Python, with its environment and working directory, finds no `klr`."""
    function = start("echo")
    host = testinfra.get_host(f"docker://{function.container.id}")
    found = host.run("cd /var/task && python -c 'import klr'")
    assert found.rc != 0 and "klr" in found.stderr, found.stdout + found.stderr


def test_pip_answers_to_every_name(start):
    """pip, pip<major> and pip<major.minor> (pip3.11, pip2.7: what the original KLR's
    Dockerfiles call) are the image's pip, for the image's Python (issue 8, item 7)."""
    function = start("echo")
    host = testinfra.get_host(f"docker://{function.container.id}")
    version = host.run("python -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'")
    assert version.rc == 0, version.stderr
    major_minor = version.stdout.strip()
    for name in ("pip", "pip" + major_minor.split(".")[0], "pip" + major_minor):
        answer = host.run(f"{name} --version")
        assert answer.rc == 0, f"{name}: {answer.stderr}"
        assert answer.stdout.rstrip().endswith(f"(python {major_minor})"), answer.stdout


def test_original_klr_dockerfile_installs_requirements(docker_client, runtime):
    """The original KLR's python27 / python37 Dockerfile, verbatim but for FROM (and, on the
    other Python 3 images, pip3.7 renamed to that image's pip3.X), installs requirements.txt
    from PyPI as the image's default user, without -t: the packages, one with a dependency of
    its own and one with a console script, land in the image (PYTHONUSERBASE, not HOME=/tmp)
    and the function imports them. It runs as on Lambda, on a read-only root with an empty
    /tmp (issue 8, item 7)."""
    seed = "python27" if runtime.version.startswith("2.") else "python37"
    files = functions.project_files(HERE / "seed" / "tekton" / seed)
    files["Dockerfile"] = files["Dockerfile"].replace(b"pip3.7", f"pip{runtime.version}".encode())
    tag = functions.build(
        docker_client,
        f"{IMAGE_PREFIX}seed-requirements-{runtime.id}",
        files,
        functions.trusting_image(docker_client, runtime),
        ca_in_context=False,
    )
    function = Function(
        docker_client,
        tag,
        {"INVOKER_COUNT": "1"},
        runtime.startup_seconds,
        read_only=True,
        tmpfs={"/tmp": ""},
    )
    try:
        function.wait_for("/_klr/ready")
        result = function.invoke({"start": "2024-01-15T10:00:00", "text": "plain text"})
        assert result.status_code == 200, result.text
        body = json.loads(result.json()["body"])
        assert body["lastFridayOfNextMonth"] == "2024-02-23"
        assert body["encoding"] == "ascii"
        assert body["installedIn"].startswith("/var/lang/user/lib/"), body
        host = testinfra.get_host(f"docker://{function.container.id}")
        assert host.file("/var/lang/user/bin/chardetect").exists
        assert not host.file("/var/task/ca-certificates.crt").exists
    finally:
        function.remove()
