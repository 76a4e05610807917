"""Waiting with a deadline: the one polling loop of the suites and `invoke bench`.

A wait names what it waits for, gives up at a deadline sized by the caller to what the thing
is known to need, and then says what it waited for and what it saw. Never a fixed sleep.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
POLL_INTERVAL = 0.05


def startup_allowance(startup_seconds: float, bootstraps: int) -> float:
    """What `bootstraps` started together may take to be ready, when one alone on a core needs
    `startup_seconds`: they share the machine's cores."""
    return startup_seconds * max(1, bootstraps / (os.cpu_count() or 1))


def until(
    what: str,
    seconds: float,
    check: Callable[[], T],
    details: Callable[[], str] = lambda: "",
    interval: float = POLL_INTERVAL,
) -> T:
    """Call `check` until it returns a true value and return that value. After `seconds`,
    raise TimeoutError naming `what` and the time allowed, followed by `details()` (a log, the
    last state seen). `check` may raise to stop waiting early (a server that exited)."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            shown = details()
            raise TimeoutError(
                f"waited {seconds:g} s for {what}" + (f":\n{shown}" if shown else "")
            )
        time.sleep(interval)
