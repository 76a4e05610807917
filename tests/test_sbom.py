"""The images' SBOMs (images/sbom.py): exact versions, the document, and the comparisons that
decide the change list and whether push republishes."""

import copy

import pytest

from images import matrix, sbom

STATUS = """\
Package: python3.11
Status: install ok installed
Architecture: amd64
Version: 3.11.2-6+deb12u9
Description: Interactive high-level object-oriented language (version 3.11)
 Python is a high-level, interactive, object-oriented language.

Package: removed-but-configured
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2025b-0+deb12u2
"""
RUNTIMES = matrix.load().runtimes


def packages(**versions: str) -> list[dict[str, str]]:
    return [{"Package": n, "Version": v, "Architecture": "amd64"} for n, v in versions.items()]


def test_installed_packages_are_read_from_the_dpkg_status():
    assert sbom.installed_packages(STATUS) == [
        {"Package": "python3.11", "Version": "3.11.2-6+deb12u9", "Architecture": "amd64"},
        {"Package": "tzdata", "Version": "2025b-0+deb12u2", "Architecture": "all"},
    ]


@pytest.mark.parametrize(
    ("rid", "installed", "exact"),
    [
        ("python311", {"python3.11": "3.11.2-6+deb12u9"}, "3.11.2"),
        ("python37", {"pypy3": "7.3.5+dfsg-2+deb11u5"}, "pypy7.3.5"),
        ("ruby31", {"ruby3.1": "3.1.2-7+deb12u1"}, "3.1.2"),
        # Bookworm's security update that went back from 3.1.7 to 3.1.2.
        ("ruby31", {"ruby3.1": "3.1.7+really3.1.2-0+deb12u1"}, "3.1.2"),
        ("java8", {"openjdk-8-jre-headless": "8u504-ga-1"}, "8u504"),
        ("java21", {"openjdk-21-jre-headless": "21.0.13.1+2-1~deb13u1"}, "21.0.13.1"),
        ("node22", {}, "22.23.3"),
        ("go", {}, "1.27.4"),
        ("ruby25", {}, "jruby9.2.21.0"),
        ("provided", {}, "12.13"),
    ],
)
def test_the_exact_version_comes_from_what_installed_the_language(rid, installed, exact):
    assert sbom.exact_version(RUNTIMES[rid], packages(**installed), "12.13") == exact


def test_a_debian_release_without_a_number_gives_provided_its_suite():
    assert sbom.exact_version(RUNTIMES["provided"], [], "trixie/sid") == "bookworm"


def document(revision: str = "abc", **versions: str) -> dict:
    installed = {"python3.11": "3.11.2-6+deb12u9", "tzdata": "2025b-0+deb12u2", **versions}
    runtime = RUNTIMES["python311"]
    return sbom.document(runtime, "3.11.2", packages(**installed), "12.13", revision)


def test_the_sbom_is_valid_cyclonedx_listing_packages_downloads_and_klr():
    doc = document()
    sbom.validate(doc)
    purls = {c["bom-ref"]: c.get("purl") for c in doc["components"]}
    assert (
        purls["deb:python3.11:amd64"] == "pkg:deb/debian/python3.11@3.11.2-6%2Bdeb12u9?arch=amd64"
    )
    assert purls["pypi:pip"] == "pkg:pypi/pip@26.2.1"
    names = {c["name"]: c for c in doc["components"]}
    assert names["pip"]["hashes"][0]["content"] == RUNTIMES["python311"].downloads[0].sha256
    assert names["python"]["version"] == "3.11.2"
    assert len(names["klr-server"]["hashes"][0]["content"]) == 64
    assert "klr-shim-python" in names


def test_two_sboms_of_the_same_contents_differ_only_in_time_and_serial_number():
    a, b = document(), document()
    for doc in (a, b):
        del doc["serialNumber"], doc["metadata"]["timestamp"]
    assert sbom.dumps(a) == sbom.dumps(b)


def test_the_same_contents_from_another_commit_are_the_same():
    assert sbom.same_contents(document(revision="abc"), document(revision="def"))


def test_another_package_version_or_checksum_is_not_the_same_contents():
    assert not sbom.same_contents(document(), document(tzdata="2026a-0+deb12u1"))
    other = document()
    pip = next(c for c in other["components"] if c["name"] == "pip")
    pip["hashes"] = [{"alg": "SHA-256", "content": "0" * 64}]
    assert not sbom.same_contents(document(), other)


def test_the_change_list_names_what_was_added_removed_and_changed():
    old = document(libold="1.0-1")
    new = document(tzdata="2026a-0+deb12u1", libnew="2.0-1")
    assert sbom.changes(old, new) == [
        "added libnew 2.0-1",
        "removed libold 1.0-1",
        "changed tzdata 2025b-0+deb12u2 -> 2026a-0+deb12u1",
    ]
    assert sbom.changes(old, copy.deepcopy(old)) == []
    assert sbom.changes(None, new)[0].startswith("first build")


def test_the_change_summary_is_short():
    assert sbom.summary([]) == "no changes"
    assert sbom.summary(["added a 1", "removed b 2"]) == "2 changes: added a 1, ..."


def test_a_document_cyclonedx_does_not_allow_is_refused():
    doc = document()
    doc["components"][0]["type"] = "snack"
    with pytest.raises(ValueError, match="not valid CycloneDX"):
        sbom.validate(doc)
