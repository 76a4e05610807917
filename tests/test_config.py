"""Settings: defaults, the seed's spellings, and errors that say what to do."""

import pytest

from klr.config import Settings
from klr.errors import SettingsError


def test_defaults():
    settings = Settings.from_env({})
    assert (settings.port, settings.invoker_count, settings.event_type) == (8080, 4, "RAW")
    assert settings.timeout == 300
    assert settings.function_arn == "arn:aws:lambda:us-east-1:012345678912:function:function"


@pytest.mark.parametrize(
    "env, seconds",
    [
        ({"AWS_LAMBDA_FUNCTION_TIMEOUT": "3"}, 3),
        ({"FUNCTION_TTL": "30"}, 30),
        ({"FUNCTION_TTL": "10s"}, 10),
        ({"FUNCTION_TTL": "1m30s"}, 90),
        ({"FUNCTION_TTL": "500ms"}, 0.5),
        ({"AWS_LAMBDA_FUNCTION_TIMEOUT": "2", "FUNCTION_TTL": "9s"}, 2),
    ],
)
def test_timeout_spellings(env, seconds):
    assert Settings.from_env(env).timeout == seconds


def test_seed_and_later_event_type_names():
    assert Settings.from_env({"EVENT_TYPE": "API_GATEWAY"}).event_type == "API_GATEWAY"
    assert Settings.from_env({"RESPONSE_FORMAT": "api_gateway"}).event_type == "API_GATEWAY"


def test_knative_service_names_the_function_unless_the_user_did():
    assert Settings.from_env({"K_SERVICE": "hello"}).function_name == "hello"
    assert (
        Settings.from_env({"K_SERVICE": "hello", "AWS_LAMBDA_FUNCTION_NAME": "mine"}).function_name
        == "mine"
    )


@pytest.mark.parametrize(
    "env, words",
    [
        (
            {"INVOKER_COUNT": "four"},
            "INVOKER_COUNT must be a whole number from 1 to 256, got 'four'",
        ),
        ({"EVENT_TYPE": "SOAP"}, "EVENT_TYPE must be one of RAW, API_GATEWAY"),
        ({"FUNCTION_TTL": "soon"}, "FUNCTION_TTL must be seconds or a duration like '10s'"),
        (
            {"AWS_LAMBDA_FUNCTION_TIMEOUT": "-1"},
            "AWS_LAMBDA_FUNCTION_TIMEOUT must be a number of seconds",
        ),
        ({"PORT": "9002"}, "PORT=9002 collides with the Runtime API ports 9001-9004"),
    ],
)
def test_bad_values_say_which_setting_and_what_is_allowed(env, words):
    with pytest.raises(SettingsError, match=words.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env(env)


def test_the_http_layer_limits_have_defaults_and_settings():
    defaults = Settings.from_env({})
    assert (defaults.header_timeout, defaults.idle_timeout) == (10, 75)
    assert (defaults.body_timeout, defaults.write_timeout) == (60, 30)
    assert (defaults.max_connections, defaults.max_header_bytes) == (4096, 65536)
    env = {
        "KLR_HEADER_TIMEOUT": "2.5",
        "KLR_IDLE_TIMEOUT": "5",
        "KLR_BODY_TIMEOUT": "7",
        "KLR_WRITE_TIMEOUT": "9",
        "KLR_MAX_CONNECTIONS": "100",
        "KLR_MAX_HEADER_BYTES": "16384",
    }
    settings = Settings.from_env(env)
    assert (settings.header_timeout, settings.idle_timeout) == (2.5, 5)
    assert (settings.body_timeout, settings.write_timeout) == (7, 9)
    assert (settings.max_connections, settings.max_header_bytes) == (100, 16384)
    with pytest.raises(SettingsError, match="KLR_MAX_CONNECTIONS"):
        Settings.from_env({"KLR_MAX_CONNECTIONS": "0"})
