"""What only klr-provided shows: any executable bootstrap, from a shell script with curl to a
Go binary built elsewhere."""

from __future__ import annotations

from conformance.harness import seed_function

LANGUAGE = "provided"


def test_shell_bootstrap_with_curl(docker_client, runtime):
    """A shell custom runtime in the manner of AWS's walkthrough serves events."""
    function = seed_function(docker_client, runtime, "provided")
    try:
        result = function.invoke({"name": "Foo"})
        assert (result.status_code, result.json()) == (200, {"echoed": {"name": "Foo"}})
        function.wait_for_log("got: ")
    finally:
        function.remove()


def test_go_recipe_ends_on_provided(docker_client, runtime):
    """The README's multi-stage Go recipe: built in klr-go, served by a small klr-provided."""
    function = seed_function(docker_client, runtime, "go")
    try:
        assert function.invoke({"name": "Foo"}).json() == "Hello Foo!"
        assert function.container.image.attrs["Size"] < 200e6
    finally:
        function.remove()
