"""KLR's build tasks; run them with ./invoke (./invoke --list shows them).

Thin on purpose: options in, calls into the images package, a summary out.
"""

import shlex
import sys
from contextlib import contextmanager
from json import dumps

import docker
from invoke import Exit, task

from images import REPO_ROOT, UserError, functions, host, matrix, publish, report, rootfs
from images import bench as bench_images
from images import build as builder
from images import docs as readme
from images import manifest as knative_service
from images import peers as bench_peers
from images.peers_report import write as write_peers_report

RUNTIME_HELP = "a runtime id from images/runtimes.toml; repeatable (default: all available)"
# Runtimes this invoke run has already built (or reported unavailable), so that `invoke build
# test` builds once. Invoke's own pre-task dedupe cannot do it: it compares call arguments, and
# test must build exactly the runtimes it tests.
_handled: set[str] = set()


@contextmanager
def _user_errors():
    """Errors the user can fix end the task with their one-line message, not a traceback."""
    try:
        yield
    except UserError as e:
        raise Exit(f"error: {e}", code=1) from None


def _available(runtimes: list[matrix.Runtime]) -> list[matrix.Runtime]:
    for runtime in runtimes:
        if runtime.unavailable:
            print(f"{runtime.image}: unavailable, not built: {runtime.unavailable}")
    return [r for r in runtimes if not r.unavailable]


@task(
    iterable=["runtime"],
    help={
        "runtime": RUNTIME_HELP,
        "refresh": "re-create the Debian base root filesystems (picks up Debian updates)",
        "verbose": "show the whole output of mmdebstrap and the builds, not only the steps",
    },
)
def build(c, runtime=None, refresh=False, verbose=False):
    """Build the Debian base root filesystems and the klr-<id> images."""
    with _user_errors():
        m = matrix.load()
        selected = [r for r in m.select(runtime) if r.id not in _handled]
        if not selected:
            return
        _handled.update(r.id for r in selected)
        todo = _available(selected)
        client = host.ensure_docker()
        suites = dict.fromkeys(r.suite for r in todo)
        results = [rootfs.ensure(client, suite, refresh, verbose) for suite in suites]
        results += [builder.build(client, r, m.publish, verbose) for r in todo]
    results += [builder.Result.unavailable(r) for r in selected if r.unavailable]
    print()
    print(report.table(builder.Result.HEADERS, [r.row() for r in results]))
    failed = [r.image for r in results if r.failed]
    if failed:
        raise Exit(f"error: {len(failed)} image(s) failed to build: {', '.join(failed)}", code=1)


@task(iterable=["runtime"], help={"runtime": RUNTIME_HELP})
def test(c, runtime=None):
    """Build the images, then run the unit tests and the conformance suite."""
    with _user_errors():
        selected = [r for r in matrix.load().select(runtime) if not r.unavailable]
    ids = [r.id for r in selected]
    # The images the sample functions are built in are built too (klr-go for klr-provided).
    build(c, runtime=runtime and functions.with_builders(selected))
    # One pytest session: the unit tests first (seconds), then the conformance suite.
    args = ["tests", "conformance", *(f"--runtime={i}" for i in ids)]
    with c.cd(str(REPO_ROOT)):
        command = shlex.join([sys.executable, "-m", "pytest", *args])
        code = c.run(command, warn=True, pty=sys.stdout.isatty()).exited
    print()
    print(
        report.table(("suites", "result"), [("unit tests and conformance", _pytest_result(code))])
    )
    if code:
        raise Exit(code=code)


def _pytest_result(code: int) -> str:
    # pytest's exit codes: 1 failures, 5 nothing collected, others an internal or usage error.
    return {0: "passed", 1: "FAILED", 5: "no tests ran"}.get(code, f"error (exit {code})")


@task(name="list", help={"json": "print only the available runtime ids, as JSON (for CI matrices)"})
def list_(c, json=False):
    """Show the image matrix: runtimes, built images, unavailable rows."""
    with _user_errors():
        m = matrix.load()
    if json:
        print(dumps([r.id for r in m.runtimes.values() if not r.unavailable]))
        return
    client = host.docker_client()
    rows = [
        (
            r.id,
            r.language,
            r.version,
            r.suite or None,
            report.megabytes(builder.size_mb(client, r.image)) if client else "engine down",
            f"unavailable: {r.unavailable}" if r.unavailable else "available",
        )
        for r in m.runtimes.values()
    ]
    print(report.table(("id", "language", "version", "suite", "built MB", "availability"), rows))


@task(
    iterable=["runtime"],
    help={
        "runtime": RUNTIME_HELP,
        "peers": "instead, measure KLR beside AWS's emulator (RIE) and two floors (see README)",
    },
)
def bench(c, runtime=None, peers=False):
    """Measure each image serving the echo handler: cold start, latency, throughput, memory."""
    if peers:
        _bench_peers(c)
        return
    with _user_errors():
        todo = _available(matrix.load().select(runtime))
    # The images the sample functions are built in are built too (klr-go for klr-provided).
    build(c, runtime=runtime and functions.with_builders(todo))
    with _user_errors():
        host.ensure_docker()
        client = docker.from_env()
        figures = []
        order = [r.image for r in matrix.load().runtimes.values()]
        for r in todo:
            print(f"Measuring {r.image}", flush=True)
            image = functions.sample_image(client, r, "bench")
            handler = functions.SAMPLES[r.language].handler.format("echo")
            try:
                figures.append(bench_images.measure(client, r, image, handler))
            except TimeoutError as e:
                raise UserError(f"{r.image}: {e}") from None
            # Kept after each image: a later failure loses none of the figures.
            bench_images.save_report(figures[-1:], order)
            readme.update(matrix.load())
    print()
    print(report.table(bench_images.Figures.HEADERS, [f.row() for f in figures]))
    verdicts = [bench_images.cold_start_verdict(r, f) for r, f in zip(todo, figures, strict=True)]
    for verdict in filter(None, verdicts):
        print(verdict)
    print(f"\nKept in {bench_images.REPORT_FILE.name}; README.md's tables are written from it")


def _bench_peers(c) -> None:
    build(c, runtime=["python311"])
    with _user_errors():
        host.ensure_docker()
        document = bench_peers.measure(docker.from_env())
        text = write_peers_report(document, bench_peers.OUTPUT_DIR)
    print()
    print(text)
    print(f"Written to {bench_peers.OUTPUT_DIR}: peers.json, peers.md, peers.png")


@task(help={"check": "change nothing; fail if README.md's tables are not what they would be"})
def docs(c, check=False):
    """Write README.md's images and performance tables from the matrix and the bench report."""
    with _user_errors():
        stale = readme.update(matrix.load(), check)
    if check and stale:
        raise Exit("error: README.md's generated tables are stale: run ./invoke docs", code=1)
    print("README.md's tables are " + ("rewritten" if stale else "up to date"))


@task(iterable=["runtime"], help={"runtime": RUNTIME_HELP})
def push(c, runtime=None):
    """Push as <registry>/<owner>/klr-<id> under its version tags, with its SBOM; an image whose
    published SBOM describes the same contents is left as it is ("unchanged")."""
    with _user_errors():
        m = matrix.load()
        todo = _available(m.select(runtime))
        client = host.ensure_docker()
        date = publish.today()
        pushed = [
            (r.image, ref, digest)
            for r in todo
            for ref, digest in publish.push(client, r, m.publish, date)
        ]
    print()
    print(report.table(("image", "pushed as", "digest"), pushed))


@task(
    # Flags only, so that `./invoke manifest --help` is help, not an image named --help.
    positional=[],
    help={
        "image": "the function image as pushed to your registry, e.g. registry.example.com/team/hello:1.0",
        "name": "the Service's name (default: the image's name)",
        "invokers": "requests a pod runs at once: INVOKER_COUNT and containerConcurrency "
        f"(default {knative_service.DEFAULT_INVOKERS})",
        "timeout": f"the function's timeout in seconds (default {knative_service.DEFAULT_TIMEOUT})",
        "event-type": "EVENT_TYPE, the AWS service the function expects in front of it "
        "(default RAW)",
    },
)
def manifest(c, image=None, name=None, invokers=None, timeout=None, event_type="RAW"):
    """Print a Knative Service for a function image, for kubectl apply -f."""
    with _user_errors():
        if image is None:
            raise UserError("--image is required: the function image you pushed to your registry")
        service = knative_service.service(
            image,
            name,
            invokers=_whole_number("--invokers", invokers, knative_service.DEFAULT_INVOKERS),
            timeout=_whole_number("--timeout", timeout, knative_service.DEFAULT_TIMEOUT),
            event_type=event_type,
        )
    print(knative_service.render(service), end="")


def _whole_number(option: str, value: str | None, default: int) -> int:
    # Parsed here, not by invoke: its own conversion of a bad value ends in a traceback.
    if value is None:
        return default
    if not value.strip().isdigit():
        raise UserError(f"{option} must be a whole number, got {value!r}")
    return int(value)


@task
def clean(c):
    """Remove the klr-* and klr-base images and KLR's test containers."""
    with _user_errors():
        m = matrix.load()
        containers, images = builder.clean(host.ensure_docker(), m.publish)
    print(f"Removed {containers} test container(s) and {images} image reference(s)")
