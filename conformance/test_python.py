"""What only Python images show: the seed's python27/python37 example."""

from __future__ import annotations

import json

import pytest
import testinfra

from conformance.harness import HERE, run_function
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
