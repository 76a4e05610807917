"""The conformance suite's harness: one behaviour contract, run against every image in the matrix.

Each language supplies the same sample handlers (fixtures/<language>/) and the few facts that
differ between languages (LANGUAGES). Containers are reached only through ports published on
127.0.0.1, and every container is labelled klr.test=1 so `invoke clean` can find leftovers.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
from endpoint import Endpoint

from images import matrix

HERE = Path(__file__).parent
LABELS = {"klr.test": "1"}


INIT_FAILURES = ("missing_module", "missing_function", "syntax_error", "malformed_name", "raises_while_loading")


@dataclass(frozen=True)
class Language:
    """What a language's runtime calls things; the behaviours are the same for all."""

    handler: str  # a sample handler's name, {} standing for the function
    function_error: str  # errorType of the `fail` handler's exception
    marshal_error: str  # errorType of the `unserialisable` handler's result
    init_failures: dict  # INIT_FAILURES case -> (handler, errorType)
    version_command: str


LANGUAGES = {
    "python": Language(
        handler="handler.{}",
        function_error="ValueError",
        marshal_error="Runtime.MarshalError",
        init_failures={
            "missing_module": ("missing.handler", "Runtime.ImportModuleError"),
            "missing_function": ("handler.missing", "Runtime.HandlerNotFound"),
            "syntax_error": ("syntax_error.handler", "Runtime.UserCodeSyntaxError"),
            "malformed_name": ("handler", "Runtime.MalformedHandlerName"),
            "raises_while_loading": ("init_error.handler", "RuntimeError"),
        },
        version_command="python --version",
    ),
}


def pytest_addoption(parser):
    parser.addoption("--runtime", action="append", default=[],
                     help="runtime id from images/runtimes.toml (repeatable; default: all available)")


def pytest_generate_tests(metafunc):
    if "runtime" in metafunc.fixturenames:
        runtimes = [r for r in matrix.load().select(metafunc.config.getoption("runtime") or None)
                    if not r.unavailable]
        metafunc.parametrize("runtime", runtimes, ids=[r.id for r in runtimes], scope="session")


@pytest.fixture(scope="session")
def docker_client():
    return docker.from_env()


@pytest.fixture(scope="session")
def language(runtime) -> Language:
    return LANGUAGES[runtime.language]


@pytest.fixture(scope="session")
def fixture_image(runtime, docker_client) -> str:
    """The language's sample handlers built into a function image, as a user would."""
    try:
        docker_client.images.get(runtime.image)
    except docker.errors.ImageNotFound:
        pytest.fail(f"image {runtime.image} is not built: run ./invoke build --runtime {runtime.id}")
    tag = f"klr-conformance-{runtime.id}"
    docker_client.images.build(path=str(HERE / "fixtures" / runtime.language), tag=tag, rm=True,
                               buildargs={"IMAGE": runtime.image}, labels=LABELS)
    return tag


def build_user_image(client, tag: str, dockerfile: str, files: dict[str, bytes]) -> str:
    """Build from a Dockerfile and files given in memory: a user's project, exactly."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, content in {"Dockerfile": dockerfile.encode(), **files}.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(content), 0o644
            tar.addfile(info, io.BytesIO(content))
    archive.seek(0)
    client.images.build(fileobj=archive, custom_context=True, tag=tag, rm=True, labels=LABELS)
    return tag


class Function(Endpoint):
    """One running container of a function image."""

    def __init__(self, client, image: str, env: dict[str, str], **options):
        self.container = client.containers.run(
            image, detach=True, environment=env, labels=LABELS,
            ports={"8080/tcp": ("127.0.0.1", None)}, **options,
        )
        self.container.reload()
        self.url = f"http://127.0.0.1:{self.container.ports['8080/tcp'][0]['HostPort']}"

    def exit_status(self) -> str | None:
        self.container.reload()
        return "exited" if self.container.status == "exited" else None

    def logs(self) -> str:
        return self.container.logs().decode(errors="replace")

    def remove(self) -> None:
        self.container.remove(force=True)


@pytest.fixture
def start(docker_client, fixture_image, language):
    """start(function=name | handler=raw, ready=True, user=None, **env): a running container."""
    started: list[Function] = []

    def run(function: str = "", handler: str = "", ready: bool = True, user: str | None = None,
            **env: str) -> Function:
        env["_HANDLER"] = handler or language.handler.format(function)
        started.append(Function(docker_client, fixture_image, env, user=user))
        return started[-1].wait_for("/_klr/ready" if ready else "/_klr/health")

    yield run
    for function in started:
        function.remove()
