"""Settings: every variable the server reads, validated once at start-up.

The README's settings table documents the same names; `Settings.from_env` is the only reader.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from klr.errors import SettingsError
from klr.log import LOG_FORMATS, LOG_LEVELS

# Lambda's synchronous payload limits: the Invoke API refuses larger requests, the Runtime API
# larger responses (the emulator's limit, 6 MiB plus 100 bytes).
MAX_REQUEST_BYTES = 6 * 1024 * 1024
MAX_RESPONSE_BYTES = 6 * 1024 * 1024 + 100
# A streamed response is relayed as it arrives, up to Lambda's streaming limit (200 MB, 2025).
MAX_STREAMED_RESPONSE_BYTES = 200 * 1024 * 1024

EVENT_TYPES = ("RAW", "API_GATEWAY", "HTTP_API", "FUNCTION_URL", "ALB", "CLOUDEVENTS")
CLOUDEVENTS_EVENTS = ("data", "envelope")
# A CloudEvents attribute name: lower-case letters and digits (CloudEvents 1.0).
ATTRIBUTE_NAME = re.compile(r"[a-z0-9]+")
# What the server itself sets on every CloudEvent it sends.
SERVER_ATTRIBUTES = ("specversion", "id", "time", "datacontenttype", "data")


@dataclass(frozen=True)
class Settings:
    port: int = 8080
    invoker_count: int = 4
    event_type: str = "RAW"
    timeout: float = 300.0
    init_timeout: float = 10.0  # Lambda's limit on the init phase
    queue_size: int = 100
    runtime_api_port: int = 9001
    shutdown_timeout: float = 25.0
    function_name: str = "function"
    function_version: str = "$LATEST"
    memory_size: int = 3008
    region: str = "us-east-1"
    account_id: str = "012345678912"
    task_root: str = "/var/task"
    runtime_dir: str = "/var/runtime"
    handler: str = ""
    header_timeout: float = 10.0
    idle_timeout: float = 75.0
    body_timeout: float = 60.0
    write_timeout: float = 30.0
    max_connections: int = 4096
    max_header_bytes: int = 64 * 1024
    alb_multi_value_headers: bool = False
    # EVENT_TYPE=CLOUDEVENTS: what the function gets, what its answers are, where they go.
    cloudevents_event: str = "data"
    cloudevents_type: str = "dev.klr.response"
    cloudevents_source: str = "klr/function"
    cloudevents_extensions: tuple[tuple[str, str], ...] = ()
    sink: str = ""
    sink_timeout: float = 30.0
    log_format: str = "Text"
    log_level: str = "INFO"

    @property
    def function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, handler: str = "") -> Settings:
        """Read and check every setting; raise SettingsError naming the variable at fault."""
        env = os.environ if env is None else env
        reader = _Reader(env)
        function_name = env.get("AWS_LAMBDA_FUNCTION_NAME") or env.get("K_SERVICE") or "function"
        settings = cls(
            port=reader.integer("PORT", 8080, 1, 65535),
            invoker_count=reader.integer("INVOKER_COUNT", 4, 1, 256),
            event_type=reader.event_type(),
            timeout=reader.timeout(),
            init_timeout=reader.number("KLR_INIT_TIMEOUT", 10.0, 0.1, 3600),
            queue_size=reader.integer("KLR_QUEUE_SIZE", 100, 0, 100_000),
            runtime_api_port=reader.integer("KLR_RUNTIME_API_PORT", 9001, 1024, 65535),
            shutdown_timeout=reader.number("KLR_SHUTDOWN_TIMEOUT", 25.0, 0, 3600),
            function_name=function_name,
            function_version=env.get("AWS_LAMBDA_FUNCTION_VERSION") or "$LATEST",
            memory_size=reader.integer("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", 3008, 128, 10240),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            account_id=env.get("KLR_ACCOUNT_ID") or "012345678912",
            task_root=env.get("LAMBDA_TASK_ROOT") or "/var/task",
            runtime_dir=env.get("LAMBDA_RUNTIME_DIR") or "/var/runtime",
            handler=handler or env.get("_HANDLER") or env.get("AWS_LAMBDA_FUNCTION_HANDLER") or "",
            header_timeout=reader.number("KLR_HEADER_TIMEOUT", 10.0, 0.1, 3600),
            idle_timeout=reader.number("KLR_IDLE_TIMEOUT", 75.0, 0.1, 86400),
            body_timeout=reader.number("KLR_BODY_TIMEOUT", 60.0, 0.1, 3600),
            write_timeout=reader.number("KLR_WRITE_TIMEOUT", 30.0, 0.1, 3600),
            max_connections=reader.integer("KLR_MAX_CONNECTIONS", 4096, 1, 1_000_000),
            max_header_bytes=reader.integer("KLR_MAX_HEADER_BYTES", 64 * 1024, 8192, 1 << 24),
            alb_multi_value_headers=reader.boolean("KLR_ALB_MULTI_VALUE_HEADERS"),
            cloudevents_event=reader.choice("KLR_CLOUDEVENTS_EVENT", CLOUDEVENTS_EVENTS),
            cloudevents_type=reader.attribute("KLR_CLOUDEVENTS_TYPE", "dev.klr.response"),
            cloudevents_source=reader.attribute("KLR_CLOUDEVENTS_SOURCE", "klr/" + function_name),
            cloudevents_extensions=reader.ce_overrides(),
            sink=reader.sink(),
            sink_timeout=reader.number("KLR_CLOUDEVENTS_SINK_TIMEOUT", 30.0, 0.1, 3600),
            log_format=reader.exact_choice("AWS_LAMBDA_LOG_FORMAT", LOG_FORMATS),
            log_level=reader.exact_choice("AWS_LAMBDA_LOG_LEVEL", LOG_LEVELS, "INFO"),
        )
        last_api_port = settings.runtime_api_port + settings.invoker_count - 1
        if settings.runtime_api_port <= settings.port <= last_api_port:
            raise SettingsError(
                f"PORT={settings.port} collides with the Runtime API ports "
                f"{settings.runtime_api_port}-{last_api_port}: change PORT or KLR_RUNTIME_API_PORT"
            )
        return settings


class _Reader:
    def __init__(self, env: dict[str, str]):
        self.env = env

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise SettingsError(f"{name} must be a whole number from {low} to {high}, got {raw!r}")
        return int(raw)

    def number(self, name: str, default: float, low: float, high: float) -> float:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not low <= value <= high:
            raise SettingsError(
                f"{name} must be a number of seconds from {low} to {high}, got {raw!r}"
            )
        return value

    def boolean(self, name: str) -> bool:
        raw = self.env.get(name, "").strip().lower()
        if raw not in ("", "true", "false"):
            raise SettingsError(f"{name} must be true or false, got {raw!r}")
        return raw == "true"

    def exact_choice(self, name: str, values: tuple[str, ...], default: str = "") -> str:
        """One of `values`, spelled exactly as Lambda spells it: the bootstraps read the same
        variable, unchanged, and must not understand it differently."""
        raw = self.env.get(name, "")
        if not raw:
            return default or values[0]
        if raw not in values:
            raise SettingsError(f"{name} must be one of {', '.join(values)}, got {raw!r}")
        return raw

    def event_type(self) -> str:
        # EVENT_TYPE is the seed's name; RESPONSE_FORMAT is the later spelling of the same switch.
        name = "EVENT_TYPE" if self.env.get("EVENT_TYPE") else "RESPONSE_FORMAT"
        raw = self.env.get(name, "").strip().upper()
        if raw in ("", "PLAIN"):
            return "RAW"
        if raw not in EVENT_TYPES:
            raise SettingsError(f"{name} must be one of {', '.join(EVENT_TYPES)}, got {raw!r}")
        return raw

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        raw = self.env.get(name, "").strip().lower()
        if not raw:
            return choices[0]
        if raw not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
        return raw

    def attribute(self, name: str, default: str) -> str:
        """A CloudEvents attribute value: any text but control characters."""
        raw = self.env.get(name, "").strip() or default
        if re.search(r"[\x00-\x1f\x7f-\x9f]", raw):
            raise SettingsError(f"{name} must not contain control characters, got {raw!r}")
        return raw

    def ce_overrides(self) -> tuple[tuple[str, str], ...]:
        """K_CE_OVERRIDES, which a Knative SinkBinding sets: {"extensions": {name: value}},
        attributes added to every CloudEvent the server sends."""
        raw = self.env.get("K_CE_OVERRIDES", "").strip()
        if not raw:
            return ()
        problem = 'must be a JSON object like {"extensions": {"name": "value"}}'
        try:
            extensions = json.loads(raw).get("extensions") or {}
        except (ValueError, AttributeError, RecursionError):
            raise SettingsError(f"K_CE_OVERRIDES {problem}, got {raw[:200]!r}") from None
        if not isinstance(extensions, dict):
            raise SettingsError(f"K_CE_OVERRIDES {problem}, got {raw[:200]!r}")
        pairs = []
        for key, value in extensions.items():
            if not ATTRIBUTE_NAME.fullmatch(key) or key in SERVER_ATTRIBUTES:
                raise SettingsError(
                    f"K_CE_OVERRIDES: {key!r} cannot be set: use lower-case letters and digits, "
                    f"and none of {', '.join(SERVER_ATTRIBUTES)}"
                )
            text = value if isinstance(value, str) else json.dumps(value)
            if re.search(r"[\x00-\x1f\x7f-\x9f]", text):
                raise SettingsError(f"K_CE_OVERRIDES: {key} must not contain control characters")
            pairs.append((key, text))
        return tuple(pairs)

    def sink(self) -> str:
        """K_SINK, which a Knative SinkBinding or ContainerSource sets: an http(s) URL."""
        raw = self.env.get("K_SINK", "").strip()
        if not raw:
            return ""
        parts = urlsplit(raw)
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or "@" in parts.netloc
            or not port_ok
            or not re.fullmatch(r"[\x21-\x7e]+", raw)  # nothing that could end the request line
        ):
            raise SettingsError(
                f"K_SINK must be an http:// or https:// URL with a host (no user info), got {raw!r}"
            )
        return raw

    def timeout(self) -> float:
        if self.env.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "").strip():
            return self.number("AWS_LAMBDA_FUNCTION_TIMEOUT", 300.0, 0.001, 86400)
        raw = self.env.get("FUNCTION_TTL", "").strip()
        if not raw:
            return 300.0
        # The seed took whole seconds, later Go durations such as "10s", "1m30s" or "500ms".
        if re.fullmatch(r"\d+(\.\d+)?", raw):
            return float(raw)
        parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", raw)
        if not parts or "".join(n + u for n, u in parts) != raw:
            raise SettingsError(
                f"FUNCTION_TTL must be seconds or a duration like '10s', got {raw!r}"
            )
        scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
        return sum(float(n) * scale[u] for n, u in parts)
