"""A function's dependencies: installed by the README's one-line Dockerfile step (pip, npm)
from the real registries, or vendored with it (Ruby's vendor/bundle; rubygems.org is out of
this machine's reach). Go's go.mod and Java's pom.xml are exercised by their seed examples,
test_go.py and the Java fixtures."""

from __future__ import annotations

from conformance.harness import HERE, run_function
from images import functions
from images.matrix import IMAGE_PREFIX

EXPECTED = {
    "python": ({}, {"six": "1.17.0"}),
    "node": ({"value": 7}, {"isNumber": "3.0.0", "checked": True}),
    "ruby": ({"name": "Foo"}, {"greeting": "Hello Foo, from a vendored gem"}),
}
LANGUAGE = tuple(EXPECTED)


def test_declared_dependencies_are_installed(docker_client, runtime):
    event, expected = EXPECTED[runtime.language]
    tag = functions.build(
        docker_client,
        f"{IMAGE_PREFIX}dependencies-{runtime.id}",
        functions.project_files(HERE / "dependencies" / runtime.language),
        runtime.image,
    )
    function = run_function(docker_client, runtime, tag)
    try:
        assert function.invoke(event).json() == expected
    finally:
        function.remove()
