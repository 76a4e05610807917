"""`invoke push` against a real registry: Debian's docker-registry (distribution 2.8), started
on 127.0.0.1 by the test. The image's tags, the image pulled back by digest and run, its
labels, its SBOM artifact, and republishing only what changed.
"""

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import docker
import pytest
import requests

from conformance.harness import run_function
from images import REPO_ROOT, functions, host, matrix, sbom, wait
from images.publish import OCI_INDEX, OCI_MANIFEST, referrers_tag

RUNTIME_IDS = ["python311"]  # one small image stands for all: publishing is the same for each
OWNER = "test"
REGISTRY_START_SECONDS = 60
PUSH_SECONDS = 600
MANIFEST_ACCEPT = ", ".join(
    (OCI_MANIFEST, OCI_INDEX, "application/vnd.docker.distribution.manifest.v2+json")
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """host:port of a docker-registry with empty storage, for this module only."""
    if not shutil.which("docker-registry"):
        host.apt_install("docker-registry", why="the publishing tests run Debian's docker-registry")
    folder = tmp_path_factory.mktemp("registry")
    address = f"127.0.0.1:{_free_port()}"
    config = folder / "config.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {folder / 'storage'}\n"
        f"http:\n  addr: {address}\n"
    )
    log = folder / "registry.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["docker-registry", "serve", str(config)], stdout=out, stderr=subprocess.STDOUT
        )

    def answers() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited:\n{log.read_text()}")
        try:
            return requests.get(f"http://{address}/v2/", timeout=5).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        wait.until("docker-registry to answer /v2/", REGISTRY_START_SECONDS, answers, log.read_text)
        yield address
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def invoke(root: Path, registry: str, *args: str, prefix: str = matrix.IMAGE_PREFIX) -> str:
    """Run `invoke <args>` in a checkout with the test's registry; its output."""
    env = {**os.environ, "KLR_REGISTRY": registry, "KLR_OWNER": OWNER, "KLR_IMAGE_PREFIX": prefix}
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(root), *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=PUSH_SECONDS,
        check=False,
    )
    assert done.returncode == 0, f"invoke {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
    return done.stdout


class Repository:
    """The test's view of the published repository, straight from the registry's HTTP API."""

    def __init__(self, registry: str, runtime: matrix.Runtime):
        self.name = f"{OWNER}/{runtime.published_name}"
        self.ref = f"{registry}/{self.name}"
        self.url = f"http://{registry}/v2/{self.name}"

    def tags(self) -> set[str]:
        return set(requests.get(f"{self.url}/tags/list", timeout=30).json()["tags"])

    def digest(self, tag: str) -> str:
        response = requests.head(
            f"{self.url}/manifests/{tag}", headers={"Accept": MANIFEST_ACCEPT}, timeout=30
        )
        response.raise_for_status()
        return response.headers["Docker-Content-Digest"]

    def sbom_of(self, digest: str) -> bytes:
        """The SBOM artifact found by the referrers tag schema of the image's digest."""
        index = requests.get(
            f"{self.url}/manifests/{referrers_tag(digest)}",
            headers={"Accept": OCI_INDEX},
            timeout=30,
        ).json()
        (found,) = [d for d in index["manifests"] if d["artifactType"] == sbom.MEDIA_TYPE]
        artifact = requests.get(
            f"{self.url}/manifests/{found['digest']}", headers={"Accept": OCI_MANIFEST}, timeout=30
        ).json()
        assert artifact["artifactType"] == sbom.MEDIA_TYPE
        assert artifact["subject"]["digest"] == digest
        (layer,) = artifact["layers"]
        return requests.get(f"{self.url}/blobs/{layer['digest']}", timeout=30).content


@pytest.fixture(scope="module")
def published(registry, runtime, docker_client):
    """The repository after a first `invoke push`, and that push's output."""
    output = invoke(REPO_ROOT, registry, "push", "--runtime", runtime.id)
    repository = Repository(registry, runtime)
    yield repository, output
    for image in docker_client.images.list(name=repository.ref):
        for tag in image.tags:
            if tag.startswith(f"{repository.ref}:"):  # the local image keeps its own name
                docker_client.images.remove(tag)


def exact_version(docker_client, runtime) -> str:
    return docker_client.images.get(runtime.image).labels["org.opencontainers.image.version"]


def test_push_tags_the_image_by_its_exact_and_row_versions(published, runtime, docker_client):
    repository, output = published
    exact = exact_version(docker_client, runtime)
    dated = [t for t in repository.tags() if re.fullmatch(re.escape(exact) + "-[0-9]{8}", t)]
    assert len(dated) == 1, repository.tags()
    wanted = matrix.load().publish.tags(runtime, exact, dated[0].rsplit("-", 1)[1])
    assert {exact, runtime.version, "latest"} <= set(wanted)
    digest = repository.digest("latest")
    assert repository.tags() == {*wanted, referrers_tag(digest)}
    assert {repository.digest(tag) for tag in wanted} == {digest}
    for tag in wanted:
        assert f"{repository.ref}:{tag}" in output
    assert digest in output


def test_the_image_pulled_by_digest_runs_with_all_its_labels(published, runtime, docker_client):
    repository, _ = published
    ref = f"{repository.ref}@{repository.digest(runtime.version)}"
    labels = docker_client.images.pull(ref).labels
    # Every label of the build (test_image.py checks them) comes back from the registry.
    assert labels == docker_client.images.get(runtime.image).labels
    assert labels["org.opencontainers.image.version"] == exact_version(docker_client, runtime)
    assert labels["org.opencontainers.image.title"] == runtime.published_name
    files = functions.project_files(functions.SAMPLES_DIR / functions.SAMPLES["python"].folder)
    image = functions.build(docker_client, f"{matrix.IMAGE_PREFIX}pulled-{runtime.id}", files, ref)
    function = run_function(docker_client, runtime, image, _HANDLER="handler.echo")
    try:
        assert function.invoke({"pulled": "by digest"}).json() == {"pulled": "by digest"}
    finally:
        function.remove()
        docker_client.images.remove(image)
        docker_client.images.remove(ref)  # the pulled digest, not the image: it is also local


def test_the_sbom_is_published_as_an_artifact_of_the_image(published, runtime):
    repository, _ = published
    assert repository.sbom_of(repository.digest("latest")) == sbom.sbom_file(runtime).read_bytes()


def test_a_second_push_of_the_same_contents_pushes_nothing(published, runtime, registry):
    repository, _ = published
    before = {tag: repository.digest(tag) for tag in repository.tags()}
    output = invoke(REPO_ROOT, registry, "push", "--runtime", runtime.id)
    assert "unchanged" in output
    assert {tag: repository.digest(tag) for tag in repository.tags()} == before


def test_a_changed_shim_is_republished(published, runtime, registry, docker_client, tmp_path):
    """A copy of the checkout, with one shim file changed, built under its own image names."""
    repository, _ = published
    before = repository.digest(runtime.version)
    copy = tmp_path / "checkout"
    tracked = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "ls-files", "-z"], capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, tracked.split("\0")):
        if (REPO_ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, copy / name)
    shim = copy / "bootstrap" / "python" / "bootstrap.py"
    shim.write_text(shim.read_text() + "\n# a change that must be republished\n")
    git = ["git", "-C", str(copy), "-c", "user.name=test", "-c", "user.email=test@invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "changed shim"], check=True)
    prefix = f"{matrix.IMAGE_PREFIX}changed-"
    try:
        invoke(copy, registry, "build", "--runtime", runtime.id, prefix=prefix)
        changes = (copy / "build" / f"{prefix}{runtime.id}" / "changes.txt").read_text()
        assert changes.startswith("first build")  # the copy has no earlier build of its own
        output = invoke(copy, registry, "push", "--runtime", runtime.id, prefix=prefix)
        assert "unchanged" not in output
        assert "1 change(s) since the published SBOM:\n  changed klr-shim-python " in output
        after = repository.digest(runtime.version)
        assert after != before
        built = copy / "build" / f"{prefix}{runtime.id}" / "sbom.cdx.json"
        assert repository.sbom_of(after) == built.read_bytes()
        assert not sbom.same_contents(
            json.loads(built.read_bytes()), json.loads(sbom.sbom_file(runtime).read_bytes())
        )
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(f"{prefix}{runtime.id}")
