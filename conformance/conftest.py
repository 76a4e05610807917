"""The conformance suite's harness: one behaviour contract, run against every image in the matrix.

Each language supplies the same sample handlers (fixtures/<language>/) and the few facts that
differ between languages (LANGUAGES). Containers are reached only through ports published on
127.0.0.1, and every container is labelled klr.test=1 so `invoke clean` can find leftovers.
"""

from __future__ import annotations

import dataclasses
import io
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from images import matrix
from tests.endpoint import Endpoint

HERE = Path(__file__).parent
LABELS = {"klr.test": "1"}
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
FORWARDED_SETTINGS = ("GOPROXY", "GONOSUMDB", "GOPRIVATE")


INIT_FAILURES = (
    "missing_module",
    "missing_function",
    "syntax_error",
    "malformed_name",
    "raises_while_loading",
)


@dataclass(frozen=True)
class Language:
    """What a language's runtime calls things; the behaviours are the same for all."""

    handler: str  # a sample handler's name, {} standing for the function
    function_error: str  # errorType of the `fail` handler's exception
    marshal_error: (
        str | None
    )  # errorType of the `unserialisable` handler's result; None: no such thing
    init_failures: (
        dict  # INIT_FAILURES case -> (handler, errorType), for the cases the language has
    )
    version_command: str
    fixtures: str = ""  # the folder under fixtures/ with its sample handlers, if not the language's
    built_with: tuple[str, ...] = ()  # runtimes whose images build the sample handlers

    def __post_init__(self):
        assert set(self.init_failures) <= set(INIT_FAILURES), self.init_failures


GO = Language(
    handler="{}",
    function_error="errorString",
    marshal_error="UnsupportedTypeError",
    init_failures={
        "missing_function": ("missing", "Runtime.ExitError"),
        "raises_while_loading": ("init_panic", "Runtime.ExitError"),
    },
    version_command="go version",
    fixtures="go",
    built_with=("go",),
)

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
    # Java's official runtime types errors by the exception's class name; a result Jackson
    # cannot write (a self-reference) fails as "An error occurred during JSON serialization of
    # response". A missing class or method and a bad name fail each invocation instead of init
    # (test_java.py); a static initialiser that throws ends init.
    "java": Language(
        handler="example.Handler::{}",
        function_error="java.lang.IllegalArgumentException",
        marshal_error="java.lang.RuntimeException",
        init_failures={
            "raises_while_loading": (
                "example.InitError::handler",
                "java.lang.ExceptionInInitializerError",
            ),
        },
        version_command="java -version",
    ),
    # Node's official runtime types errors by error.name; a result JSON cannot express is its
    # Runtime.JSONStringifyError ("Unable to stringify response body").
    "node": Language(
        handler="handler.{}",
        function_error="Error",
        marshal_error="Runtime.JSONStringifyError",
        init_failures={
            "missing_module": ("missing.handler", "Runtime.ImportModuleError"),
            "missing_function": ("handler.missing", "Runtime.HandlerNotFound"),
            "syntax_error": ("syntax_error.handler", "Runtime.UserCodeSyntaxError"),
            "malformed_name": ("handler", "Runtime.MalformedHandlerName"),
            "raises_while_loading": ("init_error.handler", "Error"),
        },
        version_command="node --version",
    ),
    # Ruby's official runtime types errors Function<Class> and Init<Class>. It looks the
    # method up per invocation, so a missing one is no init failure (test_ruby.py).
    "ruby": Language(
        handler="handler.{}",
        function_error="Function<RuntimeError>",
        marshal_error="Function<JSON::GeneratorError>",
        init_failures={
            "missing_module": ("missing.handler", "Init<LoadError>"),
            "syntax_error": ("syntax_error.handler", "Init<SyntaxError>"),
            "malformed_name": ("handler", "Init<ArgumentError>"),
            "raises_while_loading": ("init_error.handler", "Init<RuntimeError>"),
        },
        version_command="ruby --version",
    ),
    # Go programs are built from fixtures/go in klr-go, then run in klr-go itself or, with the
    # documented multi-stage recipe, in klr-provided. aws-lambda-go names errors by their Go
    # type; a program that dies while starting is Lambda's Runtime.ExitError.
    "go": GO,
    "provided": dataclasses.replace(GO, version_command="cat /etc/os-release"),
}


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
    LANGUAGE (a name, or several) and to languages that have what a `requires` mark names.
    A test that also takes `init_failure` runs once per failure case its runtime's language has."""
    if "runtime" not in metafunc.fixturenames:
        return
    only = getattr(metafunc.module, "LANGUAGE", None)
    only = [only] if isinstance(only, str) else only
    required = [m.args[0] for m in metafunc.definition.iter_markers("requires")]
    runtimes = [
        r
        for r in matrix.load().select(metafunc.config.getoption("runtime") or None)
        if not r.unavailable
        and (only is None or r.language in only)
        and all(getattr(LANGUAGES[r.language], field) for field in required)
    ]
    if "init_failure" in metafunc.fixturenames:
        cases = [(r, case) for r in runtimes for case in LANGUAGES[r.language].init_failures]
        metafunc.parametrize(
            ("runtime", "init_failure"),
            cases,
            scope="session",
            ids=[f"{r.id}-{case}" for r, case in cases],
        )
    else:
        metafunc.parametrize("runtime", runtimes, ids=[r.id for r in runtimes], scope="session")


def pytest_collection_modifyitems(config, items):
    """A test with no runtime to run on (test_java.py when only Python images are selected) is
    left out, not reported as skipped."""
    empty = [
        item
        for item in items
        if "runtime" in item.fixturenames
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
def language(runtime) -> Language:
    return LANGUAGES[runtime.language]


@pytest.fixture(scope="session")
def fixture_image(runtime, docker_client) -> str:
    """The language's sample handlers built into a function image, as a user would."""
    try:
        docker_client.images.get(runtime.image)
    except docker.errors.ImageNotFound:
        pytest.fail(
            f"image {runtime.image} is not built: run ./invoke build --runtime {runtime.id}"
        )
    return build_user_image(
        docker_client, f"klr-conformance-{runtime.id}", sample_handlers(runtime), runtime.image
    )


def sample_handlers(runtime) -> dict[str, bytes]:
    """The runtime's language's sample handlers (fixtures/), as a user's project."""
    language = LANGUAGES[runtime.language]
    return project_files(HERE / "fixtures" / (language.fixtures or runtime.language))


def project_files(folder: Path) -> dict[str, bytes]:
    """A user's project: every file under the folder, by relative path. A Maven project is
    built on the host first, as Java users do (`mvn package`, output under target/)."""
    if (folder / "pom.xml").exists():
        built = subprocess.run(
            ["mvn", "-q", "-B", "package"], cwd=folder, capture_output=True, text=True, check=False
        )
        assert built.returncode == 0, (
            f"mvn package failed in {folder}:\n{built.stdout}{built.stderr}"
        )
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def build_user_image(client, tag: str, files: dict[str, bytes], image: str) -> str:
    """Build a user's project (its Dockerfile among the files) on a klr image, given as the
    IMAGE build arg. The context also holds ca-certificates.crt, the host's CA bundle, which
    the build stages of Dockerfiles that fetch dependencies copy: this machine's HTTPS goes
    through an intercepting proxy. The host's Go proxy setting is forwarded likewise."""
    files = {
        **files,
        "ca-certificates.crt": Path(os.environ.get("SSL_CERT_FILE", HOST_CA_BUNDLE)).read_bytes(),
    }
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            # Scripts are executable, as in the user's checkout (a bootstrap must be).
            info.size, info.mode = len(content), 0o755 if content.startswith(b"#!") else 0o644
            tar.addfile(info, io.BytesIO(content))
    archive.seek(0)
    build_args = {
        "IMAGE": image,
        **{name: os.environ[name] for name in FORWARDED_SETTINGS if name in os.environ},
    }
    client.images.build(
        fileobj=archive, custom_context=True, tag=tag, rm=True, labels=LABELS, buildargs=build_args
    )
    return tag


class Function(Endpoint):
    """One running container of a function image."""

    def __init__(self, client, image: str, env: dict[str, str], **options):
        self.container = client.containers.run(
            image,
            detach=True,
            environment=env,
            labels=LABELS,
            ports={"8080/tcp": ("127.0.0.1", None)},
            **options,
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


def seed_function(client, runtime, name: str, ready: bool = True, **env: str) -> Function:
    """A running container of the seed's example seed/<name>/, built from its own Dockerfile,
    which starts `ARG IMAGE=klr-<seed runtime>` / `FROM ${IMAGE}` so that any image of the
    language can stand in. The caller removes it."""
    tag = build_user_image(
        client, f"klr-seed-{name}-{runtime.id}", project_files(HERE / "seed" / name), runtime.image
    )
    return Function(client, tag, env).wait_for("/_klr/ready" if ready else "/_klr/health")


@pytest.fixture
def start(docker_client, fixture_image, language):
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
        started.append(Function(docker_client, fixture_image, env, user=user))
        return started[-1].wait_for("/_klr/ready" if ready else "/_klr/health")

    yield run
    for function in started:
        function.remove()
