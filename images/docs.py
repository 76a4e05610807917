"""`invoke docs`: the README's tables that restate the matrix (images/runtimes.toml) and the
latest `invoke bench` figures (images/bench-report.json), written from them.

Each generated table stands between a begin line naming it and the end line; everything else
in the README is prose, written by hand. `invoke docs --check` (and the unit tests) fail while
the README differs from what these sources give.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from images import REPO_ROOT, UserError, bench
from images.matrix import Matrix, Runtime

README = REPO_ROOT / "README.md"
BEGIN = "<!-- ./invoke docs writes this table from {source}: {name} -->"
END = "<!-- end of the table ./invoke docs writes -->"
REGISTRIES = {
    "npm": "npm registry",
    "pypi": "PyPI",
    "go": "Go module proxy",
    "maven": "Maven Central",
}
# The version part of a download's package name, as each registry's client spells it.
PACKAGE_VERSION = re.compile(r"(==|@v?[0-9]|:[0-9]).*$")


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = [headers, ["---"] * len(headers), *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def sources(runtime: Runtime) -> str:
    """Where the image's language comes from: Debian's packages, then registry packages."""
    parts = [f"Debian ({', '.join(runtime.packages)})"] if runtime.packages else []
    parts += [
        f"{REGISTRIES[d.registry]} ({PACKAGE_VERSION.sub('', d.package)})"
        for d in runtime.downloads
    ]
    return ", ".join(parts)


def images_table(m: Matrix, report: dict[str, bench.Figures]) -> str:
    rows = []
    for r in m.runtimes.values():
        measured = report.get(r.published_name)
        if r.unavailable:
            version, size = f"unavailable: {r.unavailable}", "-"
        elif measured:
            version, size = measured.version, f"{measured.size_mb:.0f} MB"
        else:
            version, size = f"{r.language} {r.version} (not measured yet)", "-"
        rows.append((f"`{r.published_name}`", version, r.suite or "-", sources(r), size))
    headers = ("image", "language, exact version", "Debian base", "from", "size")
    return markdown_table(headers, rows)


def performance_table(m: Matrix, report: dict[str, bench.Figures]) -> str:
    rows = [
        (f"`{f.image}`", *f.row()[1:])
        for f in (report.get(r.published_name) for r in m.runtimes.values())
        if f
    ]
    return markdown_table(bench.Figures.HEADERS, rows)


TABLES = {
    "images": ("images/runtimes.toml and images/bench-report.json", images_table),
    "performance": ("images/bench-report.json", performance_table),
}


def render(text: str, m: Matrix, report: dict[str, bench.Figures]) -> str:
    """The README text with each generated table written anew."""
    for name, (source, table) in TABLES.items():
        begin = BEGIN.format(source=source, name=name)
        pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(END), re.DOTALL)
        found = pattern.search(text)
        if not found:
            raise UserError(
                f"{README.name} has no {name} table to write: put the lines\n{begin}\n{END}\n"
                "where it belongs"
            )
        written = f"{begin}\n{table(m, report)}\n{END}"
        text = text[: found.start()] + written + text[found.end() :]
    return text


def update(m: Matrix, check: bool = False, path: Path = README) -> bool:
    """Write the tables into the README (or, with check, only compare); whether it changed."""
    text = path.read_text()
    wanted = render(text, m, bench.load_report())
    if wanted != text and not check:
        path.write_text(wanted)
    return wanted != text
