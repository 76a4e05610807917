"""The pieces of a reproducible base that need no Docker: its epoch and its image's bytes."""

import io
import json
import tarfile

import pytest

from images import UserError, rootfs

IN_RELEASE = """-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA256

Origin: Debian
Suite: stable
Codename: bookworm
Date: Sat, 11 Jul 2026 10:16:37 UTC
Valid-Until: Sat, 18 Jul 2026 10:16:37 UTC
"""


def test_the_epoch_is_the_release_files_newest_date():
    newer = "Date: Mon, 30 Nov 2026 02:21:41 UTC\n"
    assert rootfs.release_date(IN_RELEASE, "test") == 1783764997
    assert rootfs.release_date(IN_RELEASE + newer, "test") == 1796005301


def test_a_release_file_without_a_date_is_a_clear_error():
    with pytest.raises(UserError, match="no Date in the Release file of test"):
        rootfs.release_date("Origin: Debian\n", "test")


def test_the_image_config_is_dated_by_the_epoch_and_names_the_layer():
    config = rootfs.image_config("amd64", "bookworm", 1796005301, "ab" * 32)
    assert config == rootfs.image_config("amd64", "bookworm", 1796005301, "ab" * 32)
    parsed = json.loads(config)
    assert parsed["created"] == "2026-11-30T02:21:41Z"
    assert parsed["rootfs"] == {"type": "layers", "diff_ids": [f"sha256:{'ab' * 32}"]}
    assert parsed["config"] == {"Env": ["LANG=en_US.UTF-8"], "Cmd": ["bash"]}


def test_the_docker_archive_stream_is_a_tar_of_its_members(tmp_path):
    layer = tmp_path / "layer.tar"
    layer.write_bytes(b"x" * 1500)
    members = {"manifest.json": b"[]", "layer.tar": layer}
    with tarfile.open(fileobj=io.BytesIO(b"".join(rootfs.tar_stream(members)))) as archive:
        assert archive.getnames() == ["manifest.json", "layer.tar"]
        assert archive.extractfile("manifest.json").read() == b"[]"
        assert archive.extractfile("layer.tar").read() == b"x" * 1500
