"""A base root filesystem is reproducible: built twice from the same archive state, it is the
same image, and it still has what the images need. Built under test tags, never klr-base:<suite>,
which other builds use."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from images import host, rootfs
from images.functions import TEST_LABELS
from images.matrix import IMAGE_PREFIX

SUITE = "bookworm"  # the quickest suite to build
REPOSITORY = f"{IMAGE_PREFIX}reproducible-base"


@pytest.fixture(scope="module")
def builds() -> tuple[datetime, list[dict]]:
    """When the builds started, and the inspected images of two builds of SUITE from one
    archive state, under test tags."""
    started = datetime.now(UTC)
    client = host.ensure_docker()  # its long timeout: loading a base takes a while
    tags: list[str] = []

    def build() -> dict:
        tags.append(f"{REPOSITORY}:{SUITE}-{len(tags) + 1}")
        rootfs.ensure(client, SUITE, refresh=True, image=tags[-1])
        return client.inspect_image(tags[-1])

    try:
        images = [build(), build()]
        if images[0]["Created"] != images[1]["Created"]:
            # Debian published between the two builds (it does a few times a day): the second
            # is compared with a third, from the same state.
            images.append(build())
        yield started, images[-2:]
    finally:
        for tag in tags:
            # By tag: an image the shared base also names is only untagged.
            client.remove_image(tag)


def test_a_base_built_twice_from_one_archive_state_is_the_same_image(builds):
    _, (first, second) = builds
    assert first["Created"] == second["Created"], "the archive changed between every two builds"
    assert first["Id"] == second["Id"]


def test_a_base_is_dated_by_its_archive_state_not_by_its_build(builds):
    started, images = builds
    # Debian dates its Release files when it publishes them, before any build from them.
    assert datetime.fromisoformat(images[0]["Created"]) < started


def test_a_reproducible_base_has_what_the_images_need(builds, docker_client):
    output = docker_client.containers.run(
        builds[1][0]["Id"],
        ["sh", "-c", 'echo "$LANG"; locale -a; python3 -c "import json, ssl; print(42)"'],
        labels=TEST_LABELS,
        remove=True,
    ).decode()
    lang, *locales, python = output.split()
    assert lang == "en_US.UTF-8"
    assert "en_US.utf8" in locales
    assert python == "42"
