"""The rules every bootstrap shim follows (bootstrap/README.md), checked in each image that has
one: the image's own /var/runtime/bootstrap, run without the runtime server, in a container
with no network but loopback."""

from __future__ import annotations

import json

import pytest
import requests

from conformance import shim_probe
from images.functions import TEST_LABELS

LANGUAGE = ("python", "node", "ruby", "java")
PROBE_SOURCE = shim_probe.__loader__.get_source(shim_probe.__name__)


def run_to_exit(client, image: str, seconds: float, what: str, **options) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of a container run to its end, given `seconds` for it."""
    container = client.containers.run(
        image, detach=True, labels=TEST_LABELS, network_mode="none", **options
    )
    try:
        try:
            status = container.wait(timeout=seconds)["StatusCode"]
        except requests.exceptions.RequestException:
            pytest.fail(f"{what} did not exit within {seconds} s")
        return (
            status,
            container.logs(stdout=True, stderr=False).decode(errors="replace"),
            container.logs(stdout=False, stderr=True).decode(errors="replace"),
        )
    finally:
        container.remove(force=True)


def test_missing_runtime_api_is_one_clear_line_and_exit_1(
    docker_client, fixture_image, runtime, language
):
    status, _, stderr = run_to_exit(
        docker_client,
        fixture_image,
        runtime.startup_seconds,
        "the bootstrap without AWS_LAMBDA_RUNTIME_API",
        entrypoint=["/var/runtime/bootstrap"],
        environment={"_HANDLER": language.handler.format("echo")},
    )
    assert status == 1, stderr
    assert stderr.strip().splitlines()[-1:] == [shim_probe.MISSING_RUNTIME_API]


@pytest.mark.parametrize("scenario", sorted(shim_probe.SCENARIOS))
def test_runtime_api_connection_rules(docker_client, fixture_image, runtime, language, scenario):
    """A dropped connection is retried once, then the shim exits; a refused result is not
    fatal; an unexpected status is. The image's python3 plays the Runtime API (shim_probe.py)."""
    deadline = runtime.startup_seconds
    status, stdout, stderr = run_to_exit(
        docker_client,
        fixture_image,
        deadline + 30,
        f"shim_probe.py ({scenario}, {deadline} s for the bootstrap)",
        entrypoint=["/usr/bin/python3", "-c", PROBE_SOURCE],
        command=[scenario, str(deadline), "/var/runtime/bootstrap"],
        environment={"_HANDLER": language.handler.format("echo")},
    )
    assert status == 0, stderr
    report = json.loads(stdout)
    assert shim_probe.problems(scenario, report) == [], report
