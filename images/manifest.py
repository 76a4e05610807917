"""The Knative Service (serving.knative.dev/v1) that runs a user's function image on KLR.

`service` builds it as a plain dict from the options of `./invoke manifest`, `render` writes it
as YAML. The values come from the server's own settings (klr/config.py), so the Service and the
server agree: Knative sends a pod at most INVOKER_COUNT requests at a time, and the server has
exactly that many bootstraps to run them.
"""

from __future__ import annotations

import re

import yaml

from images import UserError
from klr.config import EVENT_TYPES, Settings
from klr.errors import SettingsError
from klr.front import RESERVED_PREFIX

DEFAULTS = Settings()
DEFAULT_INVOKERS = DEFAULTS.invoker_count
# The server's own default, not Lambda's 3 s: a function that works under `docker run` must
# not start timing out once it is deployed.
DEFAULT_TIMEOUT = int(DEFAULTS.timeout)
# Lambda's limits on a function's timeout (whole seconds).
MIN_TIMEOUT, MAX_TIMEOUT = 1, 900
# Knative's timer (queue-proxy's, timeoutSeconds) starts when the request reaches the pod, the
# server's when a bootstrap takes the invocation, and the server then needs a moment to stop the
# bootstrap and answer. With the two equal, Knative's bare 504 would win the race; a margin lets
# the function's own timeout error (Sandbox.Timedout, or the event mode's answer) reach the
# caller. Two seconds leave room for a pod short of CPU. (They cover the hand-over, not a queue:
# a request that waited in queue-proxy for a free invoker has that much less of Knative's time.)
TIMEOUT_MARGIN_SECONDS = 2
# Knative's default max-revision-timeout-seconds (config-defaults); a cluster can raise it.
KNATIVE_MAX_TIMEOUT_SECONDS = 600
# Lambda's sandbox user, sbx_user1051: the images' USER, set again so that a function image
# that switched to root to install something still runs as Lambda's user.
LAMBDA_UID = 993
# Requests per bootstrap: Lambda's smallest memory size, and a tenth of a core; the server
# itself (standard-library Python) needs a little of its own.
MEMORY_PER_INVOKER_MI = 128
SERVER_MEMORY_MI = 64
CPU_PER_INVOKER_MILLI = 100
# A Kubernetes object name Knative takes for a Service (DNS-1035 label).
DNS_1035_LABEL = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
# An image reference as Docker reads one: [host[:port]/]path[:tag][@digest].
_HOST = r"[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*(:\d+)?"
_PATH_PART = r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*"
IMAGE_REFERENCE = re.compile(
    rf"({_HOST}/)?{_PATH_PART}(/{_PATH_PART})*(:[\w][\w.-]{{0,127}})?(@[a-z0-9]+([+._-][a-z0-9]+)*:[0-9a-fA-F]{{32,}})?"
)


def service(
    image: str,
    name: str | None = None,
    invokers: int = DEFAULT_INVOKERS,
    timeout: int = DEFAULT_TIMEOUT,
    event_type: str = "RAW",
) -> dict:
    """The Knative Service for `image`; UserError names the option at fault."""
    if not IMAGE_REFERENCE.fullmatch(image):
        raise UserError(
            f"--image {image!r} is not an image reference: give one like "
            "registry.example.com/team/hello:1.0 (the image you pushed)"
        )
    name = _name_from(image) if name is None else name
    if not DNS_1035_LABEL.fullmatch(name):
        raise UserError(
            f"--name {name!r} is not a Knative Service name: use at most 63 lower-case letters, "
            "digits and '-', starting with a letter and ending with a letter or digit"
        )
    if type(timeout) is not int or not MIN_TIMEOUT <= timeout <= MAX_TIMEOUT:
        raise UserError(
            f"--timeout must be whole seconds from {MIN_TIMEOUT} to {MAX_TIMEOUT} "
            f"(Lambda's limits), got {timeout!r}"
        )
    if event_type.upper() not in EVENT_TYPES:
        raise UserError(f"--event-type must be one of {', '.join(EVENT_TYPES)}, got {event_type!r}")
    if type(invokers) is not int:
        raise UserError(f"--invokers must be a whole number, got {invokers!r}")
    env = {
        "INVOKER_COUNT": str(invokers),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout),
        "EVENT_TYPE": event_type.upper(),
    }
    try:
        # The server's own reader, so that the Service never holds a setting it refuses.
        Settings.from_env(env)
    except SettingsError as e:
        raise UserError(f"--invokers: {e}") from None
    request_seconds = timeout + TIMEOUT_MARGIN_SECONDS
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "spec": {
                    "containerConcurrency": invokers,
                    # Knative's time to the first byte and between bytes too: a buffered answer
                    # only starts once the function returns, so only the total may end it.
                    "timeoutSeconds": request_seconds,
                    "responseStartTimeoutSeconds": request_seconds,
                    "idleTimeoutSeconds": request_seconds,
                    "containers": [
                        {
                            "image": image,
                            "ports": [{"name": "http1", "containerPort": DEFAULTS.port}],
                            "env": [{"name": k, "value": v} for k, v in env.items()],
                            # Ready once a bootstrap has asked for work (its init is done).
                            "readinessProbe": {"httpGet": {"path": RESERVED_PREFIX + "ready"}},
                            "resources": {
                                "requests": {
                                    "cpu": f"{CPU_PER_INVOKER_MILLI * invokers}m",
                                    "memory": f"{SERVER_MEMORY_MI + MEMORY_PER_INVOKER_MI * invokers}Mi",
                                }
                            },
                            "securityContext": {
                                "runAsNonRoot": True,
                                "runAsUser": LAMBDA_UID,
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                        }
                    ],
                }
            }
        },
    }


def render(service: dict) -> str:
    """The Service as YAML, in the order it was built, with a note when a stock Knative would
    refuse its timeout."""
    text = yaml.safe_dump(service, sort_keys=False)
    seconds = service["spec"]["template"]["spec"]["timeoutSeconds"]
    if seconds > KNATIVE_MAX_TIMEOUT_SECONDS:
        text = (
            f"# timeoutSeconds {seconds} is over Knative's default limit of "
            f"{KNATIVE_MAX_TIMEOUT_SECONDS}: set max-revision-timeout-seconds to {seconds} or "
            "more in the config-defaults ConfigMap (namespace knative-serving) first.\n" + text
        )
    return text


def _name_from(image: str) -> str:
    """The image's last path component without tag or digest, as a DNS-1035 label."""
    last = image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
    label = re.sub(r"[^a-z0-9]+", "-", last.lower())
    label = re.sub(r"^[^a-z]+", "", label)[:63].rstrip("-")
    if not label:
        raise UserError(f"cannot make a Service name of --image {image!r}: give --name")
    return label
