"""The GitHub workflows' supply chain (.github/workflows) and the Renovate configuration that keeps
their actions and the matrix's downloads current (renovate.json)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from images import REPO_ROOT, UserError, downloads, matrix

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
RENOVATE = REPO_ROOT / "renovate.json"

USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?:\s+#\s*(?P<comment>.*?))?\s*$")
PINNED = re.compile(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}")
VERSION = re.compile(r"v\d+\.\d+\.\d+")
# The one job that writes: publish.yml pushes the images to GHCR with the workflow's token.
WRITES = {("publish.yml", "publish", "packages")}
LEVELS = {"none": 0, "read": 1, "write": 2}
# The GITHUB_TOKEN's scopes, which read-all and write-all grant at once.
SCOPES = (
    "actions",
    "attestations",
    "checks",
    "contents",
    "deployments",
    "discussions",
    "id-token",
    "issues",
    "models",
    "packages",
    "pages",
    "pull-requests",
    "repository-projects",
    "security-events",
    "statuses",
)

# Repository options of Renovate's configuration (docs.renovatebot.com/configuration-options)
# this file may use; anything else is a typo Renovate would reject.
RENOVATE_OPTIONS = {
    "$schema",
    "description",
    "extends",
    "enabledManagers",
    "ignorePaths",
    "ignoreDeps",
    "customManagers",
    "packageRules",
    "schedule",
    "timezone",
    "labels",
    "minimumReleaseAge",
    "prConcurrentLimit",
    "prHourlyLimit",
    "dependencyDashboard",
    "github-actions",
    "pip_requirements",
    "gomod",
}


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def jobs(workflow: dict) -> dict[str, dict]:
    return workflow["jobs"]


def uses(workflow: dict) -> list[str]:
    """Every action and called workflow: the jobs' own `uses` and their steps'."""
    refs = []
    for job in jobs(workflow).values():
        refs += [job["uses"]] if "uses" in job else []
        refs += [step["uses"] for step in job.get("steps", []) if "uses" in step]
    return refs


def permissions(workflow: dict, job: dict) -> dict[str, str]:
    """What the job's token may do: its own block, else the workflow's; read-all spelled out."""
    granted = job.get("permissions", workflow.get("permissions", {}))
    if isinstance(granted, str):  # read-all or write-all
        return dict.fromkeys(SCOPES, granted.removesuffix("-all"))
    return granted


def test_every_action_is_pinned_by_commit_with_its_version_in_a_comment():
    assert WORKFLOWS
    for path in WORKFLOWS:
        lines = [m for line in path.read_text().splitlines() if (m := USES_LINE.match(line))]
        # Every `uses` the workflow has is on a line of its own, where its comment is.
        assert sorted(m["ref"] for m in lines) == sorted(uses(load(path))), path.name
        for m in lines:
            if m["ref"].startswith("./"):
                continue  # this repository's own reusable workflow
            assert PINNED.fullmatch(m["ref"]), f"{path.name}: {m['ref']} is not pinned by SHA"
            assert m["comment"] and VERSION.fullmatch(m["comment"]), (
                f"{path.name}: {m['ref']} needs its version as a comment, like # v1.2.3"
            )


def test_workflows_grant_nothing_by_default_and_only_the_publishing_job_writes():
    writes = set()
    for path in WORKFLOWS:
        workflow = load(path)
        assert "permissions" in workflow, f"{path.name}: no top-level permissions"
        assert "write" not in permissions(workflow, {}).values(), path.name
        for name, job in jobs(workflow).items():
            granted = permissions(workflow, job)
            writes |= {(path.name, name, s) for s, level in granted.items() if level == "write"}
    assert writes == WRITES
    publish = jobs(load(REPO_ROOT / ".github" / "workflows" / "publish.yml"))["publish"]
    assert publish["permissions"] == {"contents": "read", "packages": "write"}


def test_a_called_workflow_asks_for_no_more_than_its_caller_grants():
    calls = 0
    for path in WORKFLOWS:
        workflow = load(path)
        for caller in jobs(workflow).values():
            if not caller.get("uses", "").startswith("./"):
                continue
            calls += 1
            granted = permissions(workflow, caller)
            called = load(REPO_ROOT / caller["uses"])
            for name, job in jobs(called).items():
                for scope, level in permissions(called, job).items():
                    assert LEVELS[level] <= LEVELS[granted.get(scope, "none")], (
                        f"{caller['uses']} job {name} wants {scope}: {level}, {path.name} grants "
                        f"{granted.get(scope, 'none')}"
                    )
    assert calls >= 2  # ci.yml and publish.yml both read the matrix through matrix.yml


def test_checkouts_keep_no_credentials_since_no_step_pushes_with_git():
    checkouts = 0
    for path in WORKFLOWS:
        for job in jobs(load(path)).values():
            for step in job.get("steps", []):
                assert "git push" not in step.get("run", ""), path.name
                if step.get("uses", "").startswith("actions/checkout@"):
                    checkouts += 1
                    assert step.get("with", {}).get("persist-credentials") is False, path.name
    assert checkouts


def renovate() -> dict:
    return json.loads(RENOVATE.read_text())


def test_the_renovate_config_is_json_of_known_options():
    config = renovate()
    assert set(config) <= RENOVATE_OPTIONS, set(config) - RENOVATE_OPTIONS
    assert "helpers:pinGitHubActionDigests" in config["extends"]
    assert "github-actions" in config["enabledManagers"]


def python_regex(renovate_regex: str) -> re.Pattern:
    """Renovate's (JavaScript) named groups (?<name>...) in Python's spelling, (?P<name>...)."""
    return re.compile(re.sub(r"\(\?<(?=[A-Za-z])", "(?P<", renovate_regex))


def expected(download: matrix.Download, manager: dict) -> tuple[str, str, str]:
    """(datasource, depName, currentValue) Renovate must find for a download of the matrix."""
    separator = {"npm": "@", "pypi": "==", "maven": ":", "go": "@"}[download.registry]
    if download.registry == "go":  # module@version: the module path holds no @
        name, _, version = download.package.partition(separator)
    else:  # the version is last: npm's scoped @scope/name and Maven's group:artifact
        name, _, version = download.package.rpartition(separator)
    if "extractVersionTemplate" in manager:  # what Renovate compares the versions it lists by
        extracted = python_regex(manager["extractVersionTemplate"]).search(version)
        assert extracted, f"{manager['extractVersionTemplate']} does not read {version}"
        version = extracted["version"]
    datasource = {"npm": "npm", "pypi": "pypi", "maven": "maven", "go": "go"}[download.registry]
    return datasource, name, version


def test_renovate_finds_every_download_of_the_matrix_once_with_its_registry_name_and_version():
    text = matrix.MATRIX_FILE.read_text()
    managers = [
        m
        for m in renovate()["customManagers"]
        if m["customType"] == "regex" and "images/runtimes.toml" in m["managerFilePatterns"]
    ]
    found = sorted(
        (
            (match, manager)
            for manager in managers
            for pattern in manager["matchStrings"]
            for match in python_regex(pattern).finditer(text)
        ),
        key=lambda found: found[0].start(),
    )
    # The downloads in the file's order: rows as listed, each row's downloads in turn.
    downloads = [d for runtime in matrix.load().runtimes.values() for d in runtime.downloads]
    assert len(found) == len(downloads), "a download line is matched twice, or not at all"
    for (match, manager), download in zip(found, downloads):
        groups = match.groupdict()

        def field(name, groups=groups, manager=manager):
            return groups.get(name) or manager.get(f"{name}Template")

        assert match[0].endswith(f'sha256 = "{download.sha256}"'), match[0]
        assert (field("datasource"), field("depName"), field("currentValue")) == expected(
            download, manager
        )


def test_a_download_renovate_moved_fails_its_build_naming_the_sha256_to_put_in_the_row(
    tmp_path, monkeypatch
):
    """Renovate changes a row's version, not its sha256: the real registry's file is then refused
    with a message that gives both checksums."""
    monkeypatch.setattr(downloads, "CACHE", tmp_path)
    pip = next(
        d for r in matrix.load().runtimes.values() for d in r.downloads if d.registry == "pypi"
    )
    stale = matrix.Download(pip.registry, pip.package, "0" * 64)
    with pytest.raises(UserError) as refused:
        downloads.fetch(stale)
    assert f"has sha256 {pip.sha256}" in str(refused.value)
    assert f"expects {stale.sha256}" in str(refused.value)
