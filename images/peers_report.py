"""The report of `invoke bench --peers`, from the results document of images/peers.py: a
markdown table of every figure with KLR's ratio to RIE and to the two floors, issue 7's targets
marked met or missed, and a PNG chart of the latency distributions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from images.peers import CONTAINER_IMAGE

KLR, RIE, ECHO_FLOOR = "klr", "rie", "asyncio-echo"
COLUMNS = (
    ("KLR", KLR),
    (f"KLR in {CONTAINER_IMAGE}", CONTAINER_IMAGE),
    ("RIE", RIE),
    ("asyncio echo", ECHO_FLOOR),
)
THROUGHPUT_INVOKERS = (1, 4, 8)
IDEAL_INVOKERS = (1, 4, 8, 16)
RIE_NOTE = (
    "RIE serves one invocation at a time and crashes on a second concurrent request, so it is "
    "driven at one connection only: each of its req/s figures is its one-connection figure."
)


@dataclass
class Target:
    """A figure's bound from issue 7: KLR's figure, or its ratio to RIE's, against `bound`."""

    text: str
    at_least: bool  # a lower bound (throughput), else an upper bound (cost)
    bound: float
    of_rie: bool = True  # the bound is on KLR ÷ RIE, else on KLR's figure itself

    def met(self, row: Row) -> bool | None:
        value = row.ratio(RIE) if self.of_rie else row.values.get(KLR)
        if value is None:
            return None
        return value >= self.bound if self.at_least else value <= self.bound


@dataclass
class Row:
    figure: str
    values: dict[str, float | None]  # by peer; "in-process" is the handler called in a loop
    target: Target | None = None

    def ratio(self, peer: str) -> float | None:
        mine, theirs = self.values.get(KLR), self.values.get(peer)
        return mine / theirs if mine is not None and theirs else None


class Results:
    """Lookups into a results document."""

    def __init__(self, document: dict):
        self.document = document
        self.in_process = document["in_process"]

    def server(self, peer: str, handler: str, invokers: int) -> dict | None:
        for server in self.document["servers"]:
            if (server["peer"], server["handler"], server["invokers"]) == (peer, handler, invokers):
                return server
        return None

    def run(self, peer: str, handler: str, invokers: int, connections: int) -> dict | None:
        server = self.server(peer, handler, invokers)
        runs = server["runs"] if server else []
        return next((r for r in runs if r["connections"] == connections), None)

    def figure(
        self, peer: str, handler: str, invokers: int, connections: int, read: Callable
    ) -> float | None:
        run = self.run(peer, handler, invokers, connections)
        return None if run is None else read(run)


def rows(document: dict) -> list[Row]:
    """Every figure of the report, by peer."""
    results = Results(document)
    echo_us = results.in_process["echo_us_per_call"]
    sleep_us = results.in_process["sleep_us_per_call"]

    def by_peer(handler, invokers, connections, read, floor_connections=None) -> dict:
        """KLR's two peers at (invokers, connections); RIE at one invocation and one
        connection; the echo floor at floor_connections (the no-op only)."""
        values = {
            peer: results.figure(peer, handler, invokers, connections, read)
            for peer in (KLR, CONTAINER_IMAGE)
        }
        values[RIE] = results.figure(RIE, handler, 1, 1, read)
        if handler == "echo":
            values[ECHO_FLOOR] = results.figure(
                ECHO_FLOOR, "echo", 0, floor_connections or connections, read
            )
        return values

    def latency(key: str) -> Callable:
        return lambda run: run["latency_us"][key] / 1000

    def throughput(run: dict) -> float:
        return run["requests_per_second"]

    def cpu(run: dict) -> float | None:
        return run["cpu_us_per_request"]

    table = [
        Row(
            "p50 ms, 1 connection, no-op",
            {**by_peer("echo", 1, 1, latency("p50")), "in-process": echo_us / 1000},
            Target("p50 at one connection ≤ 0.8 × RIE's", False, 0.8),
        ),
        Row(
            "p99 ms, 1 connection, no-op",
            {**by_peer("echo", 1, 1, latency("p99")), "in-process": echo_us / 1000},
        ),
    ]
    for invokers in THROUGHPUT_INVOKERS:
        target = None
        if invokers == 4:
            target = Target("no-op throughput at INVOKER_COUNT=4 ≥ 2.3 × RIE's", True, 2.3)
        table.append(
            Row(
                f"no-op req/s, INVOKER_COUNT={invokers}, {2 * invokers} connections",
                {
                    **by_peer("echo", invokers, 2 * invokers, throughput),
                    "in-process": 1e6 / echo_us,
                },
                target,
            )
        )
    for invokers in THROUGHPUT_INVOKERS:
        table.append(
            Row(
                f"50 ms req/s, INVOKER_COUNT={invokers}, {2 * invokers} connections",
                {
                    **by_peer("sleep", invokers, 2 * invokers, throughput),
                    "in-process": invokers * 1e6 / sleep_us,
                },
            )
        )
    for invokers in IDEAL_INVOKERS:
        ideal = 20 * invokers

        def share(run: dict, ideal: float = ideal) -> float:
            return 100 * run["requests_per_second"] / ideal

        values = by_peer("sleep", invokers, 2 * invokers, share)
        if invokers != 1:  # RIE runs one invocation at a time: its ideal is 20 req/s
            values[RIE] = None
        values["in-process"] = 100 * (1e6 / sleep_us) / 20
        table.append(
            Row(
                f"50 ms handler, % of ideal {ideal} req/s (INVOKER_COUNT={invokers})",
                values,
                Target(
                    f"50 ms handler ≥ 97 % of ideal at INVOKER_COUNT={invokers}", True, 97, False
                ),
            )
        )
    table += [
        Row(
            "server CPU µs/invocation, 1 connection, no-op",
            {**by_peer("echo", 1, 1, cpu), "in-process": echo_us},
            Target("server CPU per invocation ≤ 0.4 × RIE's", False, 0.4),
        ),
        Row(
            "server CPU µs/invocation, INVOKER_COUNT=4, 8 connections, no-op",
            {**by_peer("echo", 4, 8, cpu), "in-process": echo_us},
        ),
    ]

    def idle_mb(peer: str, invokers: int) -> float | None:
        server = results.server(peer, "echo", invokers)
        return server and server["idle_rss_kb"] / 1024

    def load_mb(run: dict) -> float:
        return run["load_rss_kb"] / 1024

    table += [
        Row(
            "server RSS MB idle, INVOKER_COUNT=1",
            {
                KLR: idle_mb(KLR, 1),
                CONTAINER_IMAGE: idle_mb(CONTAINER_IMAGE, 1),
                RIE: idle_mb(RIE, 1),
                ECHO_FLOOR: idle_mb(ECHO_FLOOR, 0),
            },
        ),
        Row(
            "server RSS MB under load, INVOKER_COUNT=4, 8 connections",
            by_peer("echo", 4, 8, load_mb),
        ),
    ]
    return table


def markdown(document: dict) -> str:
    """The report: the table, the targets, and what went wrong in any load."""
    table = rows(document)
    meta = document.get("meta", {})
    lines = [
        "# KLR beside AWS's emulator and two floors (`./invoke bench --peers`)",
        "",
        f"Measured {meta.get('started', '?')} at {meta.get('commit', '?')} on {meta.get('cpus', '?')}"
        f" CPUs (load average before: {meta.get('load_average', '?')}), in "
        f"{meta.get('seconds', '?')} s: "
        f"wrk, 1 thread, keep-alive connections, {meta.get('load_seconds', '?')} s per load after "
        f"a {meta.get('warmup_seconds', '?')} s warm-up. KLR and RIE run the same Python shim "
        f"and handlers (conformance/fixtures/python) with {meta.get('python_version', '?')}; "
        "server CPU and RSS are the server process's own, without its bootstraps. KLR, RIE and "
        f"the asyncio echo run in a network namespace with only loopback; {CONTAINER_IMAGE} is "
        "reached through Docker's port published on 127.0.0.1 (docker-proxy's hop is in its "
        "latency, not in its CPU). In-process: the handler called in a loop (µs per call; as "
        "req/s, calls per second per invoker).",
        "",
        RIE_NOTE,
        "",
        "| figure | "
        + " | ".join(name for name, _ in COLUMNS)
        + " | in-process | KLR ÷ RIE | KLR ÷ asyncio echo | KLR ÷ in-process | target |",
        "|---" * (len(COLUMNS) + 6) + "|",
    ]
    for row in table:
        cells = [row.figure]
        cells += [_number(row.values.get(peer)) for _, peer in COLUMNS]
        cells.append(_number(row.values.get("in-process")))
        cells += [_ratio(row.ratio(peer)) for peer in (RIE, ECHO_FLOOR, "in-process")]
        cells.append(_target_cell(row))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Issue 7's targets", ""]
    for row in table:
        if row.target:
            lines.append(f"- {_verdict(row)}: {row.target.text}: {_target_detail(row)}")
    errors = [
        f"- {server['peer']} {server['handler']} INVOKER_COUNT={server['invokers']}, "
        f"{run['connections']} connections: {run['errors']}"
        for server in document["servers"]
        for run in server["runs"]
        if any(run["errors"].values())
    ]
    if errors:
        lines += ["", "## Loads with errors (their figures are suspect)", "", *errors]
    return "\n".join(lines) + "\n"


def _verdict(row: Row) -> str:
    met = row.target.met(row)
    return "not measured" if met is None else "met" if met else "MISSED"


def _target_cell(row: Row) -> str:
    if not row.target:
        return ""
    t = row.target
    bound = f"{'≥' if t.at_least else '≤'} {t.bound:g}" + (" × RIE" if t.of_rie else " %")
    return f"{bound}: {_verdict(row)}"


def _target_detail(row: Row) -> str:
    klr, rie = row.values.get(KLR), row.values.get(RIE)
    if row.target.of_rie:
        return f"{_ratio(row.ratio(RIE))} (KLR {_number(klr)}, RIE {_number(rie)})"
    return f"{_number(klr)} %"


def _number(value: float | None) -> str:
    if value is None:
        return "–"
    if abs(value) >= 100_000:
        return f"{value:.3g}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 0.1:
        return f"{value:.2f}"
    return f"{value:.2g}"


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{_number(value)}×"


def chart(document: dict, path: Path) -> None:
    """Latency CDFs at one connection, no-op throughput by INVOKER_COUNT, and the 50 ms
    handler's share of the ideal: one PNG."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    from matplotlib import pyplot

    results = Results(document)
    colours = {
        KLR: "tab:blue",
        CONTAINER_IMAGE: "tab:cyan",
        RIE: "tab:orange",
        ECHO_FLOOR: "tab:gray",
    }
    figure, (cdf, throughput, ideal) = pyplot.subplots(1, 3, figsize=(17, 5.2))

    for name, peer in COLUMNS:
        run = results.run(peer, "echo", 0 if peer == ECHO_FLOOR else 1, 1)
        if run:
            points = run["percentiles"]
            cdf.plot(
                [us / 1000 for _, us in points],
                [p for p, _ in points],
                label=f"{name} (p50 {run['latency_us']['p50'] / 1000:.2f} ms)",
                color=colours[peer],
            )
    cdf.set_xscale("log")
    cdf.set_xlabel("latency, ms (log scale)")
    cdf.set_ylabel("percentile")
    cdf.set_title("No-op latency at 1 connection")
    cdf.grid(True, which="both", alpha=0.3)
    # The in-process floor is far left of any server: named in the legend, not drawn.
    in_process = results.in_process["echo_us_per_call"]
    cdf.plot([], [], " ", label=f"handler in-process: {in_process:.2g} µs per call")
    cdf.legend(loc="upper left", fontsize="small")

    positions = range(len(THROUGHPUT_INVOKERS))
    for offset, (name, peer) in zip((-0.2, 0.2), COLUMNS[:2], strict=True):
        values = [
            results.figure(peer, "echo", n, 2 * n, lambda r: r["requests_per_second"]) or 0
            for n in THROUGHPUT_INVOKERS
        ]
        throughput.bar(
            [p + offset for p in positions], values, 0.4, label=name, color=colours[peer]
        )
    rie = results.figure(RIE, "echo", 1, 1, lambda r: r["requests_per_second"])
    if rie:
        throughput.axhline(rie, color=colours[RIE], linestyle="--", label="RIE, 1 connection")
        throughput.axhline(
            2.3 * rie, color="tab:red", linestyle=":", label="target at 4: 2.3 × RIE"
        )
    throughput.set_xticks(list(positions), [str(n) for n in THROUGHPUT_INVOKERS])
    throughput.set_xlabel("INVOKER_COUNT")
    throughput.set_ylabel("req/s")
    throughput.set_title("No-op throughput, 2 connections per invoker")
    throughput.legend(fontsize="small")

    positions = range(len(IDEAL_INVOKERS))
    for offset, (name, peer) in zip((-0.2, 0.2), COLUMNS[:2], strict=True):
        values = [
            results.figure(peer, "sleep", n, 2 * n, lambda r, n=n: 5 * r["requests_per_second"] / n)
            or 0
            for n in IDEAL_INVOKERS
        ]
        ideal.bar([p + offset for p in positions], values, 0.4, label=name, color=colours[peer])
    ideal.axhline(97, color="tab:red", linestyle=":", label="target: 97 %")
    ideal.set_ylim(0, 125)  # room for the legend above the bars
    ideal.set_xticks(list(positions), [str(n) for n in IDEAL_INVOKERS])
    ideal.set_xlabel("INVOKER_COUNT")
    ideal.set_ylabel("% of INVOKER_COUNT × 20 req/s")
    ideal.set_title("50 ms handler, share of the ideal")
    ideal.legend(loc="upper center", ncol=3, fontsize="small")

    meta = document.get("meta", {})
    figure.suptitle(
        f"bench --peers, {meta.get('started', '')} at {meta.get('commit', '')}. RIE is driven at "
        "one connection: it crashes on a second concurrent request."
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def write(document: dict, folder: Path) -> str:
    """Write peers.json, peers.md and peers.png into `folder`; returns the markdown."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "peers.json").write_text(json.dumps(document, indent=1) + "\n")
    text = markdown(document)
    (folder / "peers.md").write_text(text)
    chart(document, folder / "peers.png")
    return text
