"""A Knative revision's pod on Docker: a KLR function container behind Knative's own
queue-proxy, each configured as Knative Serving v0.42's revision controller configures them
from a Knative Service (the one `images.manifest.service` writes).

As in a pod, a sandbox container holds the network namespace (Kubernetes' pause container) and
publishes the ports on 127.0.0.1; the user container and the queue-proxy join it with
`--network container:<sandbox>`, so that either can start, stop or exit on its own. The
queue-proxy is the static binary built from knative.dev/serving/cmd/queue
(knative_tools.QUEUE_PROXY), bind-mounted into the runtime's base image.
"""

from __future__ import annotations

import json
import uuid

import requests

from conformance import knative_tools
from images import functions
from images.matrix import IMAGE_PREFIX
from images.wait import until

QUEUE_PORT = 8012  # networking.BackendHTTPPort: where the queue-proxy serves the revision
QUEUE_TLS_PORT = 8112  # networking.BackendHTTPSPort
# What the kubelet sends to the queue-proxy's readiness probe (queue.go: the K-Network-Probe
# header; the kubelet's own User-Agent), and its default probe timeout (1 s).
KUBELET_PROBE_HEADERS = {"K-Network-Probe": "queue", "User-Agent": "kube-probe/1.30"}
KUBELET_PROBE_TIMEOUT = 1
# The queue-proxy runs as Knative's image runs it: as a non-root user, read-only, no privileges.
QUEUE_UID = "65532"
QUEUE_BINARY = "/ko-app/queue"
# Knative's defaults where its config maps (config-logging, config-observability,
# config-tracing) are left as installed: knative.dev/pkg's logging, metrics and tracing config.
DEFAULT_OBSERVABILITY = {
    "SERVING_LOGGING_CONFIG": "",
    "SERVING_LOGGING_LEVEL": "",
    "SERVING_REQUEST_LOG_TEMPLATE": (
        '{"httpRequest": {"requestMethod": "{{.Request.Method}}", "requestUrl": '
        '"{{js .Request.RequestURI}}", "requestSize": "{{.Request.ContentLength}}", "status": '
        '{{.Response.Code}}, "responseSize": "{{.Response.Size}}", "userAgent": '
        '"{{js .Request.UserAgent}}", "remoteIp": "{{js .Request.RemoteAddr}}", "serverIp": '
        '"{{.Revision.PodIP}}", "referer": "{{js .Request.Referer}}", "latency": '
        '"{{.Response.Latency}}s", "protocol": "{{.Request.Proto}}"}, "traceId": '
        '"{{index .Request.Header "X-B3-Traceid"}}"}'
    ),
    "SERVING_ENABLE_REQUEST_LOG": "false",
    "SERVING_REQUEST_METRICS_BACKEND": "prometheus",
    "SERVING_REQUEST_METRICS_REPORTING_PERIOD_SECONDS": "5",
    "TRACING_CONFIG_BACKEND": "none",
    "TRACING_CONFIG_ZIPKIN_ENDPOINT": "",
    "TRACING_CONFIG_DEBUG": "false",
    "TRACING_CONFIG_SAMPLE_RATE": "0.1",
    "ENABLE_PROFILING": "false",
    "SERVING_ENABLE_PROBE_REQUEST_LOG": "false",
    "METRICS_COLLECTOR_ADDRESS": "",
    "ENABLE_HTTP2_AUTO_DETECTION": "false",
    "ENABLE_HTTP_FULL_DUPLEX": "false",
    "ROOT_CA": "",
    "ENABLE_MULTI_CONTAINER_PROBES": "false",
}
DEFAULT_TIMEOUT_SECONDS = 300  # config-defaults' revision-timeout-seconds


def template(service: dict) -> dict:
    """The Service's revision template."""
    return service["spec"]["template"]


def user_container(service: dict) -> dict:
    return template(service)["spec"]["containers"][0]


def revision_name(service: dict) -> str:
    """The template's name, else the first revision's generated one: <configuration>-00001."""
    return template(service).get("metadata", {}).get("name") or (
        f"{service['metadata']['name']}-00001"
    )


def user_port(service: dict) -> int:
    """deploy.go getUserPort: the container's first port, else Knative's default 8080."""
    ports = user_container(service).get("ports") or [{}]
    return ports[0].get("containerPort") or 8080


def timeout_seconds(service: dict) -> int:
    """The revision timeout after defaulting (revision_defaults.go: unset or 0 is the default)."""
    return template(service)["spec"].get("timeoutSeconds") or DEFAULT_TIMEOUT_SECONDS


def user_container_env(service: dict) -> dict[str, str]:
    """The user container's environment as the revision controller sets it: the template's env,
    then PORT (deploy.go makeServingContainer) and K_REVISION, K_CONFIGURATION, K_SERVICE
    (env_var.go getKnativeEnvVar). A Service's configuration has the Service's name."""
    env = {item["name"]: item["value"] for item in user_container(service).get("env", [])}
    name = service["metadata"]["name"]
    return {
        **env,
        "PORT": str(user_port(service)),
        "K_REVISION": revision_name(service),
        "K_CONFIGURATION": name,
        "K_SERVICE": name,
    }


def queue_proxy_env(service: dict, pod: str, pod_ip: str, host_ip: str) -> dict[str, str]:
    """The queue-proxy's environment, as knative.dev/serving v0.42.2's revision controller sets
    it (pkg/reconciler/revision/resources/queue.go makeQueueContainer) for an http1 revision of
    the Service, with Knative's config maps as installed. pod, pod_ip and host_ip are what the
    kubelet fills in from the downward API (metadata.name, status.podIP, status.hostIP)."""
    spec = template(service)["spec"]
    name = service["metadata"]["name"]
    port = user_port(service)
    probe = user_container(service).get("readinessProbe")
    readiness = ""
    if probe:
        # revision_defaults.go applyReadinessProbeDefaults, then queue.go's own: the probe goes
        # to 127.0.0.1 on the user port, over HTTP unless it says otherwise. Without
        # periodSeconds the queue-proxy probes aggressively (every 50 ms, for up to 10 s).
        probe = {**probe, "successThreshold": probe.get("successThreshold") or 1}
        if probe.get("periodSeconds"):
            probe["failureThreshold"] = probe.get("failureThreshold") or 3
            probe["timeoutSeconds"] = probe.get("timeoutSeconds") or 1
        if "httpGet" in probe:
            probe["httpGet"] = {
                "scheme": "HTTP",
                **probe["httpGet"],
                "host": "127.0.0.1",
                "port": probe["httpGet"].get("port") or port,
            }
        readiness = json.dumps(probe, separators=(",", ":"))
    return {
        "SERVING_NAMESPACE": service["metadata"].get("namespace", "default"),
        "SERVING_SERVICE": name,
        "SERVING_CONFIGURATION": name,
        "SERVING_REVISION": revision_name(service),
        "QUEUE_SERVING_PORT": str(QUEUE_PORT),
        "QUEUE_SERVING_TLS_PORT": str(QUEUE_TLS_PORT),
        "CONTAINER_CONCURRENCY": str(spec.get("containerConcurrency", 0)),
        "REVISION_TIMEOUT_SECONDS": str(timeout_seconds(service)),
        "REVISION_RESPONSE_START_TIMEOUT_SECONDS": str(spec.get("responseStartTimeoutSeconds", 0)),
        "REVISION_IDLE_TIMEOUT_SECONDS": str(spec.get("idleTimeoutSeconds", 0)),
        "SERVING_POD": pod,
        "SERVING_POD_IP": pod_ip,
        "USER_PORT": str(port),
        "SYSTEM_NAMESPACE": "knative-serving",
        "METRICS_DOMAIN": "knative.dev/internal/serving",
        "SERVING_READINESS_PROBE": readiness,
        "HOST_IP": host_ip,
        **DEFAULT_OBSERVABILITY,
    }


def docker_security(container: dict) -> dict:
    """A container's securityContext as docker run options; seccomp RuntimeDefault is Docker's
    default profile, runAsNonRoot holds for the images' own non-root users."""
    context = container.get("securityContext", {})
    options: dict = {}
    if context.get("allowPrivilegeEscalation") is False:
        options["security_opt"] = ["no-new-privileges"]
    if drop := context.get("capabilities", {}).get("drop"):
        options["cap_drop"] = drop
    if context.get("readOnlyRootFilesystem"):
        options["read_only"] = True
    return options


class Pod:
    """A revision's pod: the sandbox, then the user container (KLR) and the queue-proxy, each
    started by its own method so that a test can order them. `url` is the queue-proxy's serving
    port, as the activator or the ingress reach it; `klr_url` the user container's port, for
    watching KLR itself."""

    def __init__(self, client, service: dict, base_image: str, startup_seconds: float):
        self.client, self.service, self.base_image = client, service, base_image
        self.startup_seconds = startup_seconds
        self.name = f"{IMAGE_PREFIX}{revision_name(service)}-deployment-{uuid.uuid4().hex[:5]}"
        self.user = self.queue = None
        self.sandbox = client.containers.run(
            base_image,
            ["sleep", "infinity"],
            name=self.name,
            detach=True,
            user="65535",  # as the pause container runs
            labels=functions.TEST_LABELS,
            ports={
                f"{QUEUE_PORT}/tcp": ("127.0.0.1", None),
                f"{user_port(service)}/tcp": ("127.0.0.1", None),
            },
        )
        self.sandbox.reload()
        ports = self.sandbox.ports
        self.url = f"http://127.0.0.1:{ports[f'{QUEUE_PORT}/tcp'][0]['HostPort']}"
        self.klr_url = f"http://127.0.0.1:{ports[f'{user_port(service)}/tcp'][0]['HostPort']}"

    def _join(self, image: str, command: list[str] | None = None, **options):
        return self.client.containers.run(
            image,
            command,
            detach=True,
            network_mode=f"container:{self.sandbox.id}",
            labels=functions.TEST_LABELS,
            stdin_open=False,  # deploy.go makeContainer: no stdin, no tty
            tty=False,
            **options,
        )

    def start_user(self, **env: str) -> Pod:
        """The user container: the Service's image and environment (with `env` added), its
        securityContext applied; no readiness probe of its own, as the queue-proxy probes it."""
        container = user_container(self.service)
        self.user = self._join(
            container["image"],
            name=f"{self.name}-user-container",
            environment={**user_container_env(self.service), **env},
            **docker_security(container),
        )
        return self

    def start_queue(self) -> Pod:
        """The queue-proxy, configured as the revision controller configures it."""
        network = self.sandbox.attrs["NetworkSettings"]
        env = queue_proxy_env(
            self.service, self.name, network["IPAddress"], network["Gateway"] or "127.0.0.1"
        )
        binary = knative_tools.program(knative_tools.QUEUE_PROXY)
        self.queue = self._join(
            self.base_image,
            [QUEUE_BINARY],
            name=f"{self.name}-queue-proxy",
            environment=env,
            user=QUEUE_UID,
            volumes={str(binary): {"bind": QUEUE_BINARY, "mode": "ro"}},
            # queue.go queueSecurityContext
            read_only=True,
            security_opt=["no-new-privileges"],
            cap_drop=["ALL"],
        )
        return self

    def start(self, **env: str) -> Pod:
        """Both containers, once the queue-proxy says the revision is ready."""
        self.start_user(**env).start_queue()
        until(
            f"the queue-proxy of {self.name} to be ready",
            self.startup_seconds + 10,
            self.queue_ready,
            self.logs,
        )
        return self

    def queue_ready(self) -> bool:
        """The kubelet's readiness probe of the queue-proxy: ready on 200; an error, another
        status or no answer within the probe's timeout is not ready."""
        try:
            answer = requests.get(
                self.url, headers=KUBELET_PROBE_HEADERS, timeout=KUBELET_PROBE_TIMEOUT
            )
        except requests.RequestException:
            return False
        return answer.status_code == 200

    def klr(self, path: str) -> requests.Response | None:
        """KLR's own answer to GET `path`, or None while it does not answer."""
        try:
            return requests.get(self.klr_url + path, timeout=2)
        except requests.RequestException:
            return None

    def klr_state(self) -> dict | None:
        """KLR's own /_klr/ready body, or None while it does not answer."""
        answer = self.klr("/_klr/ready")
        return answer.json() if answer is not None else None

    def terminate(self) -> None:
        """SIGTERM to both containers at once, as the kubelet signals a deleted pod's containers
        (Knative's preStop hook would hold KLR's until the queue-proxy had drained: with it, KLR
        would be signalled with nothing in flight; without, it must drain by itself)."""
        for container in (self.queue, self.user):
            container.kill("SIGTERM")

    def logs(self) -> str:
        parts = []
        for role, container in (("user-container", self.user), ("queue-proxy", self.queue)):
            if container is not None:
                parts.append(f"--- {role}:\n{container.logs().decode(errors='replace')}")
        return "\n".join(parts)

    def remove(self) -> None:
        for container in (self.queue, self.user, self.sandbox):
            if container is not None:
                container.remove(force=True)
