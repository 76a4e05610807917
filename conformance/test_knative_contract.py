"""Knative's runtime contract, on every image: what a Knative pod may do to a container that
a plain `docker run` does not. A read-only root filesystem with only /tmp writable, an
arbitrary uid, no stdin, and the K_SERVICE, K_CONFIGURATION and K_REVISION variables that the
revision controller sets.
"""

from __future__ import annotations

import json

import pytest

from conformance.harness import Function

KNATIVE_ENV = {"K_SERVICE": "hello", "K_CONFIGURATION": "hello", "K_REVISION": "hello-00001"}
# Lists each process's stdin from inside the container, as its own user: the server's and
# every bootstrap's (the listing's own Python left out).
STDIN_OF_EVERY_PROCESS = """
import json, os
stdin = {}
for pid in (p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()):
    try:
        stdin[pid] = os.readlink("/proc/%s/fd/0" % pid)
    except FileNotFoundError:  # it has just exited
        pass
print(json.dumps(stdin))
"""


@pytest.fixture
def run(docker_client, fixture_image, language, runtime):
    """run(function, **docker options): a container of the sample function, once ready."""
    started: list[Function] = []

    def start(function: str, env: dict | None = None, **options) -> Function:
        env = {"_HANDLER": language.handler.format(function), "INVOKER_COUNT": "1", **(env or {})}
        started.append(
            Function(docker_client, fixture_image, env, runtime.startup_seconds, **options)
        )
        return started[-1].wait_for("/_klr/ready")

    yield start
    for function in started:
        function.remove()


def test_a_read_only_root_filesystem_with_tmp_writable_serves(run):
    function = run("warm", read_only=True, tmpfs={"/tmp": ""})
    answer = function.invoke({})
    assert answer.status_code == 200, function.logs()
    assert answer.json() == {"invocations": 1, "tmpBytes": 1}  # written to /tmp, read back


def test_an_arbitrary_uid_serves(run):
    function = run("echo", user="123456:0")
    answer = function.invoke({"uid": 123456})
    assert (answer.status_code, answer.json()) == (200, {"uid": 123456}), function.logs()


def test_with_stdin_closed_every_process_reads_dev_null(run):
    """Knative starts containers without stdin: the server serves, and the function's stdin
    is /dev/null (a read is at its end at once) whatever the container's is."""
    function = run("echo", stdin_open=False)
    assert function.invoke({}).status_code == 200
    listed = function.container.exec_run(["/usr/bin/python3", "-c", STDIN_OF_EVERY_PROCESS])
    assert listed.exit_code == 0, listed.output
    stdin = json.loads(listed.output)
    assert len(stdin) >= 2, stdin  # the server and a bootstrap at least
    assert set(stdin.values()) == {"/dev/null"}, stdin


def test_k_service_names_the_function_and_the_revision_leaves_its_version(run):
    """K_SERVICE is the function's name where Lambda's variable is unset; a revision name is no
    Lambda version, so the function runs as $LATEST. All three reach the function unchanged."""
    function = run("context", env=KNATIVE_ENV)
    context = function.invoke({}).json()
    assert context["functionName"] == "hello"
    assert context["invokedFunctionArn"].endswith(":function:hello")
    assert context["logGroupName"] == "/aws/lambda/hello"
    assert context["functionVersion"] == "$LATEST"
    env = context["env"]
    assert (env["AWS_LAMBDA_FUNCTION_NAME"], env["AWS_LAMBDA_FUNCTION_VERSION"]) == (
        "hello",
        "$LATEST",
    )
    assert {name: env[name] for name in KNATIVE_ENV} == KNATIVE_ENV
