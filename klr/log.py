"""The server's log: one stream, stdout, which the bootstraps' output shares (as on Lambda)."""

from __future__ import annotations

import sys


def log(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
