"""Building, inspecting and removing the klr-* images through the engine's API.

Builds use the classic builder, the one the Docker SDK drives. Each build's context is made
here and holds only what its Dockerfile copies: the recipe (images/Dockerfile with the
language's part inserted), the entrypoint script, the runtime server, the language's shim and
the row's downloads.
"""

import collections
import datetime
import io
import json
import tarfile
import time
from dataclasses import dataclass

import docker

from images import REPO_ROOT, downloads, report, sbom
from images.functions import TEST_LABELS
from images.matrix import BASE_REPOSITORY, IMAGE_PREFIX, MATRIX_FILE, Publish, Runtime

TEMPLATE = MATRIX_FILE.parent / "Dockerfile"
LANGUAGE_MARKER = "# KLR-LANGUAGE\n"

# Output lines kept to explain a failed build when only step lines were shown.
FAILURE_CONTEXT_LINES = 40
STEP_LINE_WIDTH = 110


@dataclass
class Result:
    """One line of a build summary: an image and how its build went."""

    image: str
    what: str
    seconds: float | None = None
    size_mb: float | None = None
    outcome: str = "built"
    failed: bool = False
    changes: str = "-"

    HEADERS = ("image", "contents", "size MB", "seconds", "result", "changes since last build")

    @classmethod
    def unavailable(cls, runtime: Runtime) -> "Result":
        return cls(runtime.image, _contents(runtime), outcome=f"unavailable: {runtime.unavailable}")

    def row(self) -> tuple[str, str, str | None, str | None, str, str]:
        return (
            self.image,
            self.what,
            report.megabytes(self.size_mb),
            report.seconds(self.seconds),
            self.outcome,
            self.changes,
        )


def build(
    client: docker.APIClient, runtime: Runtime, publish: Publish, verbose: bool = False
) -> Result:
    """Build klr-<id> from its row, printing step lines (or everything when verbose); then
    its SBOM and change list in build/<image>/, and its labels in a last step of their own."""
    print(f"Building {runtime.image} ({runtime.language} {runtime.version})", flush=True)
    started = time.monotonic()
    recent: collections.deque[str] = collections.deque(maxlen=FAILURE_CONTEXT_LINES)
    error, built = "", ""
    try:
        for event in client.build(
            fileobj=context(runtime),
            custom_context=True,
            buildargs=runtime.build_args,
            # klr.runtime here too: `invoke clean` finds the untagged layers by it.
            labels=klr_labels(runtime),
            rm=True,
            decode=True,
        ):
            error = event.get("error", error)
            built = event.get("aux", {}).get("ID", built)
            for line in event.get("stream", "").splitlines():
                recent.append(line)
                if verbose:
                    print(f"  [{runtime.id}] {line}", flush=True)
                elif line.startswith("Step "):
                    print(f"  [{runtime.id}] {_shortened(line)}", flush=True)
    except docker.errors.APIError as e:
        error = e.explanation or str(e)
    result = Result(runtime.image, _contents(runtime), time.monotonic() - started)
    if error:
        if not verbose:
            print("\n".join(f"  [{runtime.id}] {line}" for line in recent))
        print(f"  [{runtime.id}] FAILED: {error.strip()}", flush=True)
        result.outcome, result.failed = f"FAILED: {error.strip().splitlines()[-1]}", True
    else:
        exact, lines = label(client, runtime, publish, built)
        result.what = f"{runtime.language} {exact}"
        result.seconds = time.monotonic() - started
        result.changes = sbom.summary(lines)
        result.size_mb = size_mb(client, runtime.image)
    return result


def klr_labels(runtime: Runtime) -> dict[str, str]:
    return {"klr.runtime": runtime.id, "klr.version": runtime.version}


def label(
    client: docker.APIClient, runtime: Runtime, publish: Publish, built: str
) -> tuple[str, list[str]]:
    """Write the SBOM of the built layers, then tag them as <image>:latest with the OCI labels,
    added by a build of their own that makes no layer: the revision and the exact version
    change more often than any layer, and there they invalidate no layer's cache. The exact
    version and the change lines."""
    files = sbom.image_files(client, built, ["/var/lib/dpkg/status", "/etc/debian_version"])
    packages = sbom.installed_packages(files["/var/lib/dpkg/status"])
    debian_version = files["/etc/debian_version"].strip()
    exact = sbom.exact_version(runtime, packages, debian_version)
    revision = sbom.git_revision()
    lines = sbom.write(runtime, sbom.document(runtime, exact, packages, debian_version, revision))
    base = client.inspect_image(runtime.base_image)
    # `created` is the later of the commit's time and the base's, not the clock's, so that a
    # rebuild of the same commit on the same base gives the same labels and stays cached.
    created = max(
        sbom.git_commit_time(), datetime.datetime.fromisoformat(base["Created"])
    ).astimezone(datetime.UTC)
    oci = {
        "source": publish.source,
        "revision": revision,
        "created": created.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "version": exact,
        "licenses": sbom.LICENSE,
        "title": runtime.published_name,
        "description": (
            f"AWS Lambda's {runtime.language} {runtime.version} runtime ({exact}) for "
            f"unchanged Lambda functions, on Debian {runtime.suite}"
        ),
        "base.name": runtime.base_image,
        "base.digest": base["Id"],
    }
    labels = {f"org.opencontainers.image.{k}": v for k, v in oci.items()}
    recipe = f"FROM {built}\nLABEL " + " ".join(
        f"{json.dumps(k)}={json.dumps(v)}" for k, v in sorted(labels.items())
    )
    for event in client.build(
        fileobj=io.BytesIO(recipe.encode()), tag=f"{runtime.image}:latest", rm=True, decode=True
    ):
        if "error" in event:
            raise docker.errors.APIError(f"labelling {runtime.image}: {event['error']}")
    return exact, lines


def dockerfile(runtime: Runtime) -> str:
    """images/Dockerfile with images/<language>/Dockerfile in place of its marker line."""
    template = TEMPLATE.read_text()
    assert LANGUAGE_MARKER in template, f"{TEMPLATE} lost its {LANGUAGE_MARKER!r} line"
    return template.replace(LANGUAGE_MARKER, runtime.dockerfile.read_text())


def context(runtime: Runtime) -> io.BytesIO:
    """The build context, as the tar archive the engine takes."""
    shim = REPO_ROOT / "bootstrap" / runtime.language
    # shim/ holds what the image runs (bootstrap and its script); shim-sources/ the whole
    # folder, for a recipe that compiles the shim in a stage of its own (Java).
    runs = sorted(shim.glob("bootstrap*")) if shim.is_dir() else []
    files = {
        "images/aws-custom-runtime": REPO_ROOT / "images" / "aws-custom-runtime",
        "klr": REPO_ROOT / "klr",
        **{f"shim/{path.name}": path for path in runs},
        **({"shim-sources": shim} if shim.is_dir() else {}),
        **{f"downloads/{path.name}": path for path in map(downloads.fetch, runtime.downloads)},
    }
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        recipe = dockerfile(runtime).encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(recipe)
        tar.addfile(info, io.BytesIO(recipe))
        # Folders the recipe copies, though they may be empty: downloads/, and shim/ for go and
        # provided, where the function brings its own bootstrap.
        for folder in ("downloads", "shim", "shim-sources"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, path in files.items():
            tar.add(path, name, filter=_without_bytecode)
    archive.seek(0)
    return archive


def _without_bytecode(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if "__pycache__" in info.name or info.name.endswith(".pyc") else info


def _contents(runtime: Runtime) -> str:
    return f"{runtime.language} {runtime.version}"


def _shortened(line: str, width: int = STEP_LINE_WIDTH) -> str:
    # Multi-line RUN steps arrive as one long line; the start says which step it is.
    line = " ".join(line.split())
    return line if len(line) <= width else line[: width - 3] + "..."


def size_mb(client: docker.APIClient, image: str) -> float | None:
    """The image's size in MB, or None when it is not in the engine."""
    try:
        return client.inspect_image(image)["Size"] / 1e6
    except docker.errors.ImageNotFound:
        return None


def clean(client: docker.APIClient, publish: Publish) -> tuple[int, int]:
    """Remove KLR test containers, then every klr-* and klr-base image; the counts removed."""
    containers = client.containers(
        all=True, filters={"label": [f"{k}={v}" for k, v in TEST_LABELS.items()]}
    )
    for container in containers:
        client.remove_container(container["Id"], force=True)
    published = f"{publish.registry}/{publish.owner}/"
    tags = [
        tag
        for img in client.images()
        for tag in img.get("RepoTags") or ()
        if tag.removeprefix(published).startswith(IMAGE_PREFIX)
    ]
    dangling = client.images(quiet=True, filters={"dangling": True, "label": "klr.runtime"})
    # Bases last: the runtime images are built on them.
    for ref in sorted(tags, key=lambda t: t.startswith(f"{BASE_REPOSITORY}:")) + dangling:
        client.remove_image(ref, force=True)
    return len(containers), len(tags) + len(dangling)
