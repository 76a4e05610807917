"""What only the Go image shows: the seed's go example, built with the README's recipe."""

from __future__ import annotations

from conftest import seed_function

LANGUAGE = "go"


def test_seed_example(docker_client, runtime):
    """HandleRequest(ctx, MyEvent), built in klr-go, served by klr-go itself."""
    function = seed_function(docker_client, runtime, "go")
    try:
        result = function.invoke({"name": "Foo"})
        assert (result.status_code, result.json()) == (200, "Hello Foo!")
    finally:
        function.remove()
