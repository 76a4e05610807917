"""The conformance suite's hooks and fixtures: one behaviour contract, run against every image
in the matrix. The shared helpers are in harness.py; the sample functions and the function image
build in images/functions.py, which `invoke bench` uses too.
"""

from __future__ import annotations

import docker
import pytest

from conformance.harness import (
    HERE,
    LANGUAGES,
    OFFICIAL_CLIENTS,
    Function,
    Language,
    OfficialClient,
    official_client_image,
)
from images import functions, matrix


def pytest_addoption(parser):
    parser.addoption(
        "--runtime",
        action="append",
        default=[],
        help="runtime id from images/runtimes.toml (repeatable; default: all available)",
    )


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "requires(field): only for languages where that LANGUAGES field is set"
    )


def pytest_generate_tests(metafunc):
    """Every test that takes `runtime` runs once per available runtime, narrowed to the module's
    LANGUAGE (a name, or several), to its RUNTIME_IDS if it has them, and to languages that
    have what a `requires` mark names. In a module with `OFFICIAL_CLIENTS = True`, it runs once
    more with each of AWS's official runtime interface clients whose runtime is among them
    (`ric`, id <runtime>-<package>).
    A test that also takes `init_failure` runs once per failure case its runtime's language has."""
    if "runtime" not in metafunc.fixturenames:
        return
    only = getattr(metafunc.module, "LANGUAGE", None)
    only = [only] if isinstance(only, str) else only
    only_ids = getattr(metafunc.module, "RUNTIME_IDS", None)  # a module for a few images only
    required = [m.args[0] for m in metafunc.definition.iter_markers("requires")]
    runtimes = [
        r
        for r in matrix.load().select(metafunc.config.getoption("runtime") or None)
        if not r.unavailable
        and (only is None or r.language in only)
        and (only_ids is None or r.id in only_ids)
        and all(getattr(LANGUAGES[r.language], field) for field in required)
    ]
    if "ric" not in metafunc.fixturenames:  # the test starts no sample function
        metafunc.parametrize("runtime", runtimes, ids=[r.id for r in runtimes], scope="session")
        return
    variants = [(r, None) for r in runtimes]
    if getattr(metafunc.module, "OFFICIAL_CLIENTS", False):
        variants = with_official_clients(runtimes)
    if "init_failure" in metafunc.fixturenames:
        cases = [
            (r, ric, case) for r, ric in variants for case in LANGUAGES[r.language].init_failures
        ]
        metafunc.parametrize(
            ("runtime", "ric", "init_failure"),
            cases,
            scope="session",
            ids=[f"{variant_id(r, ric)}-{case}" for r, ric, case in cases],
        )
    else:
        ids = [variant_id(r, ric) for r, ric in variants]
        metafunc.parametrize(("runtime", "ric"), variants, ids=ids, scope="session")


def variant_id(runtime: matrix.Runtime, ric: OfficialClient | None) -> str:
    return f"{runtime.id}-{ric.package}" if ric else runtime.id


def with_official_clients(runtimes: list) -> list[tuple[matrix.Runtime, OfficialClient | None]]:
    """Each runtime with its image's shim, then with the official clients tested on it; a
    client the samples are built with already (aws-lambda-go) names the runtime's own case."""
    variants = []
    for r in runtimes:
        clients = [c for c in OFFICIAL_CLIENTS if c.runtime == r.id]
        if not any(c.project == "" for c in clients):
            variants.append((r, None))
        variants += [(r, c) for c in clients]
    return variants


def pytest_collection_modifyitems(config, items):
    """A test with no runtime to run on (test_java.py when only Python images are selected) is
    left out, not reported as skipped. This hook sees the whole session's items: the unit tests
    (which may have a `runtime` fixture of their own) are not the suite's to leave out."""
    empty = [
        item
        for item in items
        if item.path.is_relative_to(HERE)
        and "runtime" in item.fixturenames
        and not isinstance(
            getattr(item, "callspec", None) and item.callspec.params.get("runtime"), matrix.Runtime
        )
    ]
    if empty:
        config.hook.pytest_deselected(items=empty)
        items[:] = [item for item in items if item not in empty]


@pytest.fixture(scope="session")
def docker_client():
    return docker.from_env()


@pytest.fixture(scope="session")
def language(runtime, ric) -> Language:
    return ric.language(LANGUAGES[runtime.language]) if ric else LANGUAGES[runtime.language]


@pytest.fixture(scope="session")
def ric() -> OfficialClient | None:
    """The bootstrap's runtime interface client: None, the image's shim, unless the test's
    module asks for AWS's official clients too (pytest_generate_tests)."""
    return None


@pytest.fixture(scope="session")
def fixture_image(runtime, ric, docker_client) -> str:
    """The language's sample handlers built into a function image, as a user would; with an
    official client, from that client's project in official/."""
    try:
        docker_client.images.get(runtime.image)
    except docker.errors.ImageNotFound:
        pytest.fail(
            f"image {runtime.image} is not built: run ./invoke build --runtime {runtime.id}"
        )
    if ric and ric.project:
        return official_client_image(docker_client, runtime, ric)
    return functions.sample_image(docker_client, runtime, "conformance")


@pytest.fixture
def start(docker_client, fixture_image, language, runtime):
    """start(function=name | handler=raw, ready=True, user=None, **env): a running container."""
    started: list[Function] = []

    def run(
        function: str = "",
        handler: str = "",
        ready: bool = True,
        user: str | None = None,
        **env: str,
    ) -> Function:
        env["_HANDLER"] = handler or language.handler.format(function)
        env.setdefault("INVOKER_COUNT", "1")  # a test that needs more says so
        started.append(
            Function(docker_client, fixture_image, env, runtime.startup_seconds, user=user)
        )
        return started[-1].wait_for("/_klr/ready" if ready else "/_klr/health")

    yield run
    for function in started:
        function.remove()
