"""What both test harnesses talk to: a function served over HTTP, by a local server process
(tests/) or by a container (conformance/).

Every wait here goes through images.wait.until: it has a deadline sized by what the function's
runtime needs to start (startup_seconds), and says on failure what it waited for.
"""

from __future__ import annotations

import requests

from images.matrix import STARTUP_SECONDS
from images.wait import startup_allowance, until

# A log line lags the answer that the same server wrote it before by milliseconds; on a loaded
# machine by more, never by this much.
LOG_LAG_SECONDS = 10


class Endpoint:
    url: str
    # What one bootstrap may take to start and ask for work; a JVM image sets more.
    startup_seconds: float = STARTUP_SECONDS

    def exit_status(self) -> str | None:
        """How the server ended, or None while it runs."""
        raise NotImplementedError

    def logs(self) -> str:
        raise NotImplementedError

    def wait_for(self, path: str, seconds: float | None = None) -> Endpoint:
        """Once `path` answers 200 (by default within one bootstrap's start-up allowance): ready
        means ready, never a fixed sleep. A server that exits meanwhile fails at once."""

        def answers() -> bool:
            ended = self.exit_status()
            if ended:
                raise AssertionError(f"server {ended} while waiting for {path}:\n{self.logs()}")
            try:
                return requests.get(self.url + path, timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        until(
            f"{self.url}{path} to answer 200", seconds or self.startup_seconds, answers, self.logs
        )
        return self

    def wait_for_log(self, text: str, times: int = 1, seconds: float = LOG_LAG_SECONDS) -> str:
        """The log once `text` is in it `times` times: a container's log arrives a little after
        the answer that the same server wrote it before."""
        return until(
            f"{text!r} {times}x in the log",
            seconds,
            lambda: (logs := self.logs()).count(text) >= times and logs,
            self.logs,
        )

    def wait_until_all_invokers_ready(self) -> Endpoint:
        """Once every bootstrap has asked for work; they start together and share the cores."""
        invokers = self.ready_state()["invokers"]
        until(
            f"all {invokers} invokers of {self.url} to ask for work",
            startup_allowance(self.startup_seconds, invokers),
            lambda: (state := self.ready_state())["readyInvokers"] == state["invokers"],
            lambda: f"last /_klr/ready: {self.ready_state()}\n{self.logs()}",
        )
        return self

    def ready_state(self) -> dict:
        """/_klr/ready's body: {"ready": ..., "readyInvokers": n, "invokers": n, "inFlight": n}."""
        return requests.get(self.url + "/_klr/ready", timeout=2).json()

    def invoke(self, event: object = None, path: str = "/", **kwargs) -> requests.Response:
        """POST an event (JSON) or any body (data=...) to the function."""
        kwargs.setdefault("timeout", 60)
        if event is not None:
            kwargs["json"] = event
        return requests.post(self.url + path, **kwargs)
