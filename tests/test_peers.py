"""`invoke bench --peers`'s own parts: the asyncio echo floor answers real HTTP, the /proc
figures are the process's own, and the report computes ratios and verdicts from the figures.

The whole run (wrk, RIE, the namespace, the container) is `./invoke bench --peers` itself.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time

from images import peers, peers_report
from images.wait import until


def test_echo_floor_answers_keep_alive_and_pipelined_requests():
    port = peers.free_port()
    server = subprocess.Popen([sys.executable, str(peers.ECHO_FLOOR), str(port)])
    try:

        def listening() -> bool:
            assert server.poll() is None, f"the echo floor exited {server.returncode}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
            except OSError:
                return False
            return True

        until(f"the echo floor on port {port}", 30, listening)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for body in (b'{"a": 1}', b"", b"x" * 100_000):
            connection.request("POST", "/", body)
            response = connection.getresponse()
            assert (response.status, response.read()) == (200, body)
        connection.close()

        # Two requests in one write, the second split across two: both answered, in order.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            first = b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\none"
            second = b"POST / HTTP/1.1\r\ncontent-length: 3\r\n\r\ntwo"
            sock.sendall(first + second[:20])
            sock.sendall(second[20:])
            answer = b""
            while answer.count(b"HTTP/1.1 200 OK") < 2 or not answer.endswith(b"two"):
                chunk = sock.recv(4096)
                assert chunk, f"the echo floor closed after {answer!r}"
                answer += chunk
        assert answer.index(b"one") < answer.index(b"two")
    finally:
        server.kill()
        server.wait(timeout=10)


def test_cpu_and_memory_are_the_process_own_not_its_children():
    before = peers.cpu_seconds(os.getpid())
    # A child that burns half a second of CPU: not counted as ours (RIE's bootstrap is its
    # child, and the server's figure must be the server's alone).
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass",
        ],
        check=True,
        timeout=60,
    )
    child_included = peers.cpu_seconds(os.getpid()) - before
    started = time.process_time()
    while time.process_time() - started < 0.3:
        pass
    ours = peers.cpu_seconds(os.getpid()) - before - child_included
    assert child_included < 0.2, "the child's CPU was counted as the parent's"
    assert 0.2 <= ours <= 1.0, ours  # clock ticks are 10 ms
    assert 5_000 < peers.rss_kb(os.getpid()) < 2_000_000


def _run(connections: int, rps: float, p50_us: float, cpu_us: float, rss_kb: int = 30_000):
    return {
        "connections": connections,
        "requests": int(rps * 5),
        "seconds": 5.0,
        "requests_per_second": rps,
        "errors": {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0},
        "latency_us": {
            "min": p50_us / 2,
            "mean": p50_us,
            "p50": p50_us,
            "p99": 3 * p50_us,
            "max": 9 * p50_us,
        },
        "percentiles": [[p, p50_us * (0.5 + p / 100)] for p in peers.PERCENTILES],
        "cpu_us_per_request": cpu_us,
        "load_rss_kb": rss_kb,
    }


def _server(peer: str, handler: str, invokers: int, *runs: dict) -> dict:
    return {
        "peer": peer,
        "handler": handler,
        "invokers": invokers,
        "idle_rss_kb": 20_480,
        "runs": list(runs),
    }


def _document() -> dict:
    """KLR: CPU 100 µs (RIE 300: met, ≤ 0.4×), p50 900 µs (RIE 1000: missed, ≤ 0.8×),
    no-op at 4 invokers 2400 req/s (RIE 1000: met, ≥ 2.3×), 50 ms handler at 98, 96 % of ideal."""
    return {
        "in_process": {"echo_us_per_call": 0.05, "sleep_us_per_call": 50_100},
        "servers": [
            _server("klr", "echo", 1, _run(1, 1100, 900, 100), _run(2, 1500, 1200, 90)),
            _server("klr", "echo", 4, _run(8, 2400, 3000, 80)),
            _server("klr", "sleep", 1, _run(2, 19.6, 50_500, 500)),
            _server("klr", "sleep", 4, _run(8, 76.8, 101_000, 500)),
            _server("rie", "echo", 1, _run(1, 1000, 1000, 300)),
            _server("rie", "sleep", 1, _run(1, 19, 51_000, 700)),
            _server("asyncio-echo", "echo", 0, _run(1, 20_000, 40, 12), _run(8, 40_000, 150, 8)),
        ],
    }


def test_report_ratios_and_verdicts():
    rows = {row.figure: row for row in peers_report.rows(_document())}

    cpu = rows["server CPU µs/invocation, 1 connection, no-op"]
    assert cpu.values["klr"] == 100 and cpu.values["rie"] == 300
    assert abs(cpu.ratio("rie") - 1 / 3) < 1e-9
    assert abs(cpu.ratio("asyncio-echo") - 100 / 12) < 1e-9
    assert cpu.target.met(cpu) is True

    p50 = rows["p50 ms, 1 connection, no-op"]
    assert p50.values["klr"] == 0.9 and p50.target.met(p50) is False

    # RIE's one-connection throughput stands against KLR's with 4 invokers.
    noop = rows["no-op req/s, INVOKER_COUNT=4, 8 connections"]
    assert noop.values["rie"] == 1000 and noop.target.met(noop) is True

    ideal = rows["50 ms handler, % of ideal 20 req/s (INVOKER_COUNT=1)"]
    assert abs(ideal.values["klr"] - 98) < 1e-9 and ideal.target.met(ideal) is True
    assert abs(ideal.values["rie"] - 95) < 1e-9
    four = rows["50 ms handler, % of ideal 80 req/s (INVOKER_COUNT=4)"]
    assert abs(four.values["klr"] - 96) < 1e-9 and four.target.met(four) is False
    assert four.values["rie"] is None  # RIE runs one invocation at a time
    unmeasured = rows["50 ms handler, % of ideal 320 req/s (INVOKER_COUNT=16)"]
    assert unmeasured.target.met(unmeasured) is None

    text = peers_report.markdown(_document())
    assert "- met: server CPU per invocation ≤ 0.4 × RIE's: 0.33×" in text
    assert "- MISSED: p50 at one connection ≤ 0.8 × RIE's: 0.90×" in text
    assert "- not measured: 50 ms handler ≥ 97 % of ideal at INVOKER_COUNT=16" in text
    assert "crashes on a second concurrent request" in text
    assert "Loads with errors" not in text


def test_report_lists_loads_with_errors_and_writes_its_files(tmp_path):
    document = _document()
    document["servers"][4]["runs"][0]["errors"]["status"] = 3
    text = peers_report.write(document, tmp_path)
    assert "## Loads with errors" in text and "'status': 3" in text
    assert (tmp_path / "peers.md").read_text() == text
    assert (tmp_path / "peers.json").exists()
    assert (tmp_path / "peers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
