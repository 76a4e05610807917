"""Plain-text tables for the summaries the tasks print."""

from collections.abc import Iterable, Sequence


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Columns left-aligned to their widest cell; None shows as '-'."""
    cells = [list(headers)] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def megabytes(size: float | None) -> str | None:
    return None if size is None else f"{size:.0f}"


def seconds(duration: float | None) -> str | None:
    return None if duration is None else f"{duration:.1f}"
