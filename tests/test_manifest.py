"""`./invoke manifest`: the Knative Service it prints, checked by Knative Serving's own
defaulting and validation (conformance/knative/validate, built from knative.dev/serving), by the
server that reads its environment, and through the command line."""

from __future__ import annotations

import copy
import json
import subprocess

import pytest
import requests
import yaml

from conformance.knative_tools import program
from images import REPO_ROOT, UserError
from images import manifest as knative_service
from klr.config import EVENT_TYPES, Settings

IMAGE = "registry.example.com:5000/team/hello-fn:1.0"
# What a cluster sets to admit Lambda's longest timeout (the default limit is 600 s).
RAISED_LIMIT = {
    "max-revision-timeout-seconds": str(
        knative_service.MAX_TIMEOUT + knative_service.TIMEOUT_MARGIN_SECONDS
    )
}
OPTION_SETS = [
    {},
    {"invokers": 1},
    {"invokers": 16},
    *({"event_type": t} for t in EVENT_TYPES),
]


@pytest.fixture(scope="module")
def validate():
    """validate(text, **config_defaults) -> (exit code, {"errors": [...], "warnings": [...]})."""
    binary = program("./validate")

    def run(text: str, **config_defaults: str) -> tuple[int, dict]:
        done = subprocess.run(
            [str(binary), "-config-defaults", json.dumps(config_defaults)],
            input=text,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode in (0, 1), done.stderr
        return done.returncode, json.loads(done.stdout)

    return run


def container(service: dict) -> dict:
    return service["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("options", OPTION_SETS, ids=lambda o: json.dumps(o) if o else "defaults")
def test_knative_admits_the_service_without_errors_or_warnings(validate, options):
    text = knative_service.render(knative_service.service(IMAGE, **options))
    assert validate(text) == (0, {"errors": [], "warnings": []})


def test_lambdas_longest_timeout_needs_the_clusters_limit_raised(validate):
    text = knative_service.render(knative_service.service(IMAGE, timeout=900))
    assert text.startswith("# timeoutSeconds 902 is over Knative's default limit of 600")
    assert validate(text) == (
        1,
        {"errors": ["expected 0 <= 902 <= 600: spec.template.spec.timeoutSeconds"], "warnings": []},
    )
    assert validate(text, **RAISED_LIMIT) == (0, {"errors": [], "warnings": []})


def test_a_service_name_made_from_the_image_is_admitted(validate):
    image = "registry.example.com/team/9_" + "very.long_function-name" * 4 + "@sha256:" + "a" * 64
    service = knative_service.service(image)
    assert service["metadata"]["name"] == ("very-long-function-name" * 4)[:63].rstrip("-")
    assert validate(knative_service.render(service)) == (0, {"errors": [], "warnings": []})


def mutated(change) -> str:
    service = copy.deepcopy(knative_service.service(IMAGE))
    change(service)
    return yaml.safe_dump(service)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            lambda s: container(s)["ports"].append({"name": "h2c", "containerPort": 9090}),
            "more than one container port is set: spec.template.spec.containers[*].ports",
        ),
        (
            lambda s: container(s)["ports"][0].update(name="web"),
            "Port name web is not allowed: spec.template.spec.containers[0].ports",
        ),
        (
            lambda s: s["spec"]["template"]["spec"].update(containerConcurrency=1001),
            "expected 0 <= 1001 <= 1000: spec.template.spec.containerConcurrency",
        ),
        (
            lambda s: container(s).update(workingDirectory="/var/task", imageTag="latest"),
            'unknown field "imageTag"',
        ),
    ],
    ids=["two ports", "port named web", "concurrency over the limit", "unknown field"],
)
def test_the_validator_reports_what_knative_refuses(validate, change, error):
    code, found = validate(mutated(change))
    assert code == 1
    assert any(error in e for e in found["errors"]), found


def test_the_validator_reports_knatives_security_warnings(validate):
    def loosen(service):
        context = container(service)["securityContext"]
        del context["allowPrivilegeEscalation"], context["seccompProfile"]
        context["capabilities"]["drop"] = ["all"]

    code, found = validate(mutated(loosen))
    field = "spec.template.spec.containers[0].securityContext."
    assert (code, found["errors"]) == (0, [])
    assert found["warnings"] == [
        f"Kubernetes default value is insecure, Knative may default this to secure in a future "
        f"release: {field}allowPrivilegeEscalation, {field}seccompProfile",
        f"invalid value: all: {field}capabilities.drop\nMust be spelled as 'ALL'",
    ]


@pytest.mark.parametrize("invokers", [1, 4, 16])
@pytest.mark.parametrize("timeout", [3, 300, 900])
def test_knative_and_the_server_agree_on_concurrency_and_timeout(invokers, timeout):
    service = knative_service.service(IMAGE, invokers=invokers, timeout=timeout)
    spec = service["spec"]["template"]["spec"]
    settings = Settings.from_env({e["name"]: e["value"] for e in container(service)["env"]})
    assert spec["containerConcurrency"] == settings.invoker_count == invokers
    assert settings.timeout == timeout
    # Knative's timers run out after the server's: its own timeout error reaches the caller.
    margin = knative_service.TIMEOUT_MARGIN_SECONDS
    assert spec["timeoutSeconds"] == timeout + margin >= settings.timeout + 1
    assert spec["responseStartTimeoutSeconds"] == spec["idleTimeoutSeconds"] == timeout + margin


def test_the_readiness_probe_is_the_servers_ready_route(start_server):
    service = knative_service.service(IMAGE, invokers=2, event_type="API_GATEWAY")
    env = {e["name"]: e["value"] for e in container(service)["env"]}
    server = start_server(**env)
    probe = container(service)["readinessProbe"]["httpGet"]
    assert "port" not in probe  # Knative probes the container's one port
    answer = requests.get(server.url + probe["path"], timeout=10)
    assert answer.status_code == 200
    # Ready once one bootstrap has asked for work; the other may still be starting.
    assert answer.json()["ready"] is True and answer.json()["invokers"] == 2


def test_the_service_runs_as_lambdas_user_with_requests_per_invoker():
    one, sixteen = (container(knative_service.service(IMAGE, invokers=n)) for n in (1, 16))
    assert one["securityContext"]["runAsUser"] == 993
    assert one["resources"]["requests"] == {"cpu": "100m", "memory": "192Mi"}
    assert sixteen["resources"]["requests"] == {"cpu": "1600m", "memory": "2112Mi"}


@pytest.mark.parametrize(
    ("image", "name"),
    [
        ("hello", "hello"),
        ("localhost:5000/hello_world.v2:1.0", "hello-world-v2"),
        ("registry.example.com/a/b/fn@sha256:" + "0" * 64, "fn"),
        ("registry.example.com/2fast:latest", "fast"),
    ],
)
def test_the_name_comes_from_the_images_last_path_component(image, name):
    assert knative_service.service(image)["metadata"]["name"] == name


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"image": "Registry/Hello World"}, "--image 'Registry/Hello World' is not an image"),
        ({"image": "example.com/123"}, "cannot make a Service name of --image"),
        ({"name": "Hello_World"}, "--name 'Hello_World' is not a Knative Service name"),
        ({"name": "a" * 64}, "is not a Knative Service name: use at most 63"),
        ({"invokers": 0}, "INVOKER_COUNT must be a whole number from 1 to 256, got '0'"),
        ({"invokers": 257}, "INVOKER_COUNT must be a whole number from 1 to 256"),
        ({"timeout": 0}, "--timeout must be whole seconds from 1 to 900"),
        ({"timeout": 901}, "--timeout must be whole seconds from 1 to 900"),
        ({"event_type": "SQS"}, "--event-type must be one of RAW, API_GATEWAY, HTTP_API, "),
    ],
)
def test_a_bad_option_is_refused_with_what_to_do(options, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        knative_service.service(**{"image": IMAGE, **options})


def invoke_manifest(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(REPO_ROOT / "invoke"), "manifest", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_invoke_manifest_prints_the_service():
    done = invoke_manifest("--image", IMAGE, "--invokers", "16", "--event-type", "http_api")
    assert done.returncode == 0, done.stderr
    expected = knative_service.service(IMAGE, invokers=16, event_type="HTTP_API")
    assert yaml.safe_load(done.stdout) == expected


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((), "error: --image is required"),
        (("--image", IMAGE, "--invokers", "four"), "error: --invokers must be a whole number"),
        (("--image", IMAGE, "--timeout", "1.5"), "error: --timeout must be a whole number"),
        (("--image", IMAGE, "--event-type", "sqs"), "error: --event-type must be one of"),
    ],
)
def test_invoke_manifest_refuses_a_bad_option_in_one_line(args, error):
    done = invoke_manifest(*args)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith(error) and done.stderr.count("\n") == 1, done.stderr
