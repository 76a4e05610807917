"""The conformance suite's shared helpers: what each language's runtime calls things
(LANGUAGES), and running function containers.

The behaviours are the same for every language; a Language holds only what differs. Where a
language's sample functions are and how their handlers are named is the build's
(images/functions.py), shared with `invoke bench`. Containers are reached only through ports
published on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from images import functions
from images.matrix import IMAGE_PREFIX, STARTUP_SECONDS, Runtime
from images.wait import startup_allowance
from tests.endpoint import Endpoint

HERE = Path(__file__).parent

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

    name: str  # its key in images.functions.SAMPLES
    function_error: str  # errorType of the `fail` handler's exception
    marshal_error: str | None  # errorType of the `unserialisable` handler's result, if any
    init_failures: dict  # INIT_FAILURES case -> (handler, errorType), for the cases it has

    def __post_init__(self):
        assert set(self.init_failures) <= set(INIT_FAILURES), self.init_failures

    @property
    def handler(self) -> str:
        """A sample handler's name, {} standing for the function."""
        return functions.SAMPLES[self.name].handler


def file_handler_failures(raised: str) -> dict[str, tuple[str, str]]:
    """The init failures of a runtime that loads handler.function from handler.<ext> and names
    errors as Lambda's Python and Node.js runtimes do; `raised` types an error while loading."""
    return {
        "missing_module": ("missing.handler", "Runtime.ImportModuleError"),
        "missing_function": ("handler.missing", "Runtime.HandlerNotFound"),
        "syntax_error": ("syntax_error.handler", "Runtime.UserCodeSyntaxError"),
        "malformed_name": ("handler", "Runtime.MalformedHandlerName"),
        "raises_while_loading": ("init_error.handler", raised),
    }


# Go programs are built from fixtures/go in klr-go, then run in klr-go itself or, with the
# documented multi-stage recipe, in klr-provided. aws-lambda-go names errors by their Go
# type; a program that dies while starting is Lambda's Runtime.ExitError.
GO = Language(
    name="go",
    function_error="errorString",
    marshal_error="UnsupportedTypeError",
    init_failures={
        "missing_function": ("missing", "Runtime.ExitError"),
        "raises_while_loading": ("init_panic", "Runtime.ExitError"),
    },
)

LANGUAGES = {
    "python": Language(
        name="python",
        function_error="ValueError",
        marshal_error="Runtime.MarshalError",
        init_failures=file_handler_failures("RuntimeError"),
    ),
    # Java's official runtime types errors by the exception's class name; a result Jackson
    # cannot write (a self-reference) fails as "An error occurred during JSON serialization of
    # response". A missing class or method and a bad name fail each invocation instead of init
    # (test_java.py); a static initialiser that throws ends init.
    "java": Language(
        name="java",
        function_error="java.lang.IllegalArgumentException",
        marshal_error="java.lang.RuntimeException",
        init_failures={
            "raises_while_loading": (
                "example.InitError::handler",
                "java.lang.ExceptionInInitializerError",
            ),
        },
    ),
    # Node's official runtime types errors by error.name; a result JSON cannot express is its
    # Runtime.JSONStringifyError ("Unable to stringify response body").
    "node": Language(
        name="node",
        function_error="Error",
        marshal_error="Runtime.JSONStringifyError",
        init_failures=file_handler_failures("Error"),
    ),
    # Ruby's official runtime types errors Function<Class> and Init<Class>. It looks the
    # method up per invocation, so a missing one is no init failure (test_ruby.py).
    "ruby": Language(
        name="ruby",
        function_error="Function<RuntimeError>",
        marshal_error="Function<JSON::GeneratorError>",
        init_failures={
            "missing_module": ("missing.handler", "Init<LoadError>"),
            "syntax_error": ("syntax_error.handler", "Init<SyntaxError>"),
            "malformed_name": ("handler", "Init<ArgumentError>"),
            "raises_while_loading": ("init_error.handler", "Init<RuntimeError>"),
        },
    ),
    "go": GO,
    "provided": dataclasses.replace(GO, name="provided"),
}


@dataclass(frozen=True)
class OfficialClient:
    """One of AWS's runtime interface clients as the bootstrap of a language's sample functions,
    in place of the image's shim. The shared behaviours (test_behaviours.py) run once more with
    each, on one image; where the client and the shim differ, LANGUAGES already holds the
    official client's behaviour."""

    package: str  # as its registry names it
    runtime: str  # the image the suite runs it on
    # official/<project>/: the user's Dockerfile and /var/task/bootstrap, which the samples join
    # under function/; "" for aws-lambda-go, which the Go samples are built with already.
    project: str = ""
    # Language fields whose value this client's release answers differently, with the reason.
    differs: tuple[tuple[str, str], ...] = ()

    def language(self, language: Language) -> Language:
        """What the language's runtime calls things, as this client calls them."""
        return dataclasses.replace(language, **dict(self.differs))


OFFICIAL_CLIENTS = (
    OfficialClient("awslambdaric", "python311", "python"),
    # 3.3.0, the last release that runs callback handlers such as the samples' (Node.js 4 has
    # nothing else); 4.x refuses them at init, as Lambda does from Node.js 24 on.
    # It types an unserialisable result a plain Error ("Unable to stringify response body");
    # Runtime.JSONStringifyError, as Lambda's Node.js runtimes have it now, came with 4.0.
    OfficialClient("aws-lambda-ric", "node22", "node", differs=(("marshal_error", "Error"),)),
    OfficialClient("aws-lambda-java-runtime-interface-client", "java21", "java"),
    # fixtures/go is an aws-lambda-go program: the shared behaviours on go and provided are this
    # case already, named so in their ids.
    OfficialClient("aws-lambda-go", "go"),
    OfficialClient("aws-lambda-go", "provided"),
)


def official_client_image(client, runtime: Runtime, official: OfficialClient) -> str:
    """The runtime's sample functions with an official client as their bootstrap, built from
    official/<project>/ as a user would. The samples go under function/ in the context, so
    that the Dockerfile copies them without the build's CA file, which is at the top."""
    samples = functions.SAMPLES_DIR / functions.SAMPLES[runtime.language].folder
    files = functions.project_files(HERE / "official" / official.project)
    for name, content in functions.project_files(samples).items():
        if name != "Dockerfile":  # the shim's recipe
            files[f"function/{name}"] = content
    tag = f"{IMAGE_PREFIX}conformance-{runtime.id}-{official.package}"
    return functions.build(client, tag, files, runtime.image)


class Function(Endpoint):
    """One running container of a function image. `startup_seconds` is what one bootstrap of
    the image may take to start (Runtime.startup_seconds): the waits are sized by it."""

    def __init__(
        self,
        client,
        image: str,
        env: dict[str, str],
        startup_seconds: float = STARTUP_SECONDS,
        **options,
    ):
        self.startup_seconds = startup_seconds
        # The server gives an init as long as the suite waits for one: on this busy machine a
        # JVM can take longer than Lambda's 10 s (KLR_INIT_TIMEOUT's default, unit-tested).
        invokers = int(env.get("INVOKER_COUNT", "4"))
        env = {"KLR_INIT_TIMEOUT": f"{startup_allowance(startup_seconds, invokers):g}", **env}
        self.container = client.containers.run(
            image,
            detach=True,
            environment=env,
            labels=functions.TEST_LABELS,
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


def run_function(client, runtime: Runtime, image: str, ready: bool = True, **env: str) -> Function:
    """A container of the function image, once it is ready (or, with ready=False, once the
    server answers); the caller removes it. One that never gets there is removed here."""
    function = Function(client, image, env, runtime.startup_seconds)
    try:
        return function.wait_for("/_klr/ready" if ready else "/_klr/health")
    except BaseException:
        function.remove()
        raise


def seed_function(client, runtime: Runtime, name: str, ready: bool = True, **env: str) -> Function:
    """A running container of the seed's example seed/<name>/, built from its own Dockerfile,
    which starts `ARG IMAGE=klr-<seed runtime>` / `FROM ${IMAGE}` so that any image of the
    language can stand in. The caller removes it."""
    files = functions.project_files(HERE / "seed" / name)
    tag = functions.build(client, f"{IMAGE_PREFIX}seed-{name}-{runtime.id}", files, runtime.image)
    return run_function(client, runtime, tag, ready, **env)
