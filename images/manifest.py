"""The Knative Service (serving.knative.dev/v1) that runs a user's function image.

A stand-in with the signature `./invoke manifest` uses, so that the queue-proxy conformance cases
(conformance/knative_pod.py) read their settings from a Service; it writes only standard Knative
fields, and the manifest task's own module replaces it.
"""

from __future__ import annotations

PORT = 8080
READY_PATH = "/_klr/ready"
# The queue-proxy's revision timeout starts when it receives a request, KLR's function timeout
# when a bootstrap takes it: with the two equal, the queue-proxy's bare "request timeout" 504
# wins the race (observed every time), so the revision allows one second more.
TIMEOUT_MARGIN = 1


def service(
    image: str,
    name: str = "function",
    invokers: int = 4,
    timeout: int = 300,
    event_type: str = "RAW",
) -> dict:
    """A Service running `image` with `invokers` bootstraps, each invocation up to `timeout` s."""
    env = {
        "INVOKER_COUNT": str(invokers),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout),
        "EVENT_TYPE": event_type,
    }
    container = {
        "image": image,
        "ports": [{"name": "http1", "containerPort": PORT}],
        "env": [{"name": key, "value": value} for key, value in env.items()],
        "readinessProbe": {"httpGet": {"path": READY_PATH}},
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "spec": {
                    # One request per bootstrap: the queue-proxy holds the rest.
                    "containerConcurrency": invokers,
                    "timeoutSeconds": timeout + TIMEOUT_MARGIN,
                    "containers": [container],
                }
            }
        },
    }
