"""Build logic for KLR's container images; tasks.py is only its command line.

matrix   images/runtimes.toml: the runtimes, loaded and validated
host     the host's prerequisites: a running Docker engine, mmdebstrap
rootfs   the Debian base root filesystems, reproducible, loaded as klr-base:<suite>
downloads  packages from registries (node, npm, pip, Go, JRuby), fetched on the host and checked
build    building, inspecting and removing the klr-* images
sbom     what a built image holds (CycloneDX SBOM), its exact version and what changed
bench    measuring the images serving a function
publish  pushing them, tagged and with their SBOM, to the configured registry
report   the summary tables the tasks print
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


class UserError(Exception):
    """A problem the user can fix: the message says what went wrong and what to do."""
