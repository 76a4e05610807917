"""What both test harnesses talk to: a function served over HTTP, by a local server process
(tests/) or by a container (conformance/)."""

from __future__ import annotations

import time

import requests


class Endpoint:
    url: str

    def exit_status(self) -> str | None:
        """How the server ended, or None while it runs."""
        raise NotImplementedError

    def logs(self) -> str:
        raise NotImplementedError

    def wait_for(self, path: str, seconds: float = 30) -> Endpoint:
        """Poll until `path` answers 200: ready means ready, never a fixed sleep."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ended = self.exit_status()
            if ended:
                raise AssertionError(f"server {ended}:\n{self.logs()}")
            try:
                if requests.get(self.url + path, timeout=2).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{path} did not answer 200 within {seconds} s:\n{self.logs()}")

    def wait_for_log(self, text: str, times: int = 1, seconds: float = 10) -> str:
        """The log once `text` is in it `times` times: a container's log arrives a little after
        the answer that the same server wrote it before."""
        deadline = time.monotonic() + seconds
        while (logs := self.logs()).count(text) < times:
            assert time.monotonic() < deadline, f"{text!r} not {times}x in the log:\n{logs}"
            time.sleep(0.05)
        return logs

    def wait_until_all_invokers_ready(self, seconds: float = 60) -> Endpoint:
        """Poll until every bootstrap has initialised: some languages start slowly (JVMs)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            state = requests.get(self.url + "/_klr/ready", timeout=2).json()
            if state["readyInvokers"] == state["invokers"]:
                return self
            time.sleep(0.1)
        raise AssertionError(f"not every invoker was ready within {seconds} s:\n{self.logs()}")

    def invoke(self, event: object = None, path: str = "/", **kwargs) -> requests.Response:
        """POST an event (JSON) or any body (data=...) to the function."""
        kwargs.setdefault("timeout", 60)
        if event is not None:
            kwargs["json"] = event
        return requests.post(self.url + path, **kwargs)
