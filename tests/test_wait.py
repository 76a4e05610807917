"""images.wait.until, the one polling wait of the suites and bench: it returns what it waited
for, and at its deadline says what that was."""

from __future__ import annotations

import itertools
import time

import pytest

from images.wait import until


def test_returns_the_first_true_value():
    calls = itertools.count(1)
    assert until("the third call", 5, lambda: (n := next(calls)) >= 3 and n, interval=0.001) == 3


def test_the_deadline_names_what_was_awaited_and_what_was_seen():
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"waited 0.2 s for the flag:\nlast state: down"):
        until("the flag", 0.2, lambda: False, lambda: "last state: down")
    assert 0.2 <= time.monotonic() - started < 5


def test_a_check_that_raises_stops_the_wait_at_once():
    def exited():
        raise AssertionError("server exited 1")

    with pytest.raises(AssertionError, match="exited 1"):
        until("never", 60, exited)
