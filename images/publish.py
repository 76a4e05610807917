"""Publishing: push klr-<id> as <registry>/<owner>/klr-<id> under its tags, with its SBOM as an
OCI artifact that refers to the image; or nothing, when the SBOM published for the image's
version describes the same contents.

The image goes through the engine (docker push); the SBOM through the registry's HTTP API
(the OCI distribution spec), as a manifest whose `subject` is the image's manifest. Registries
without the referrers API (distribution 2.8, Debian's docker-registry) find it by the spec's
referrers tag schema: an image index tagged sha256-<hex of the image manifest's digest>, where
OCI 1.1 clients (oras discover) look when a registry has no referrers API.
"""

import base64
import datetime
import hashlib
import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import Path

import docker
import requests

from images import UserError, sbom
from images.matrix import Publish, Runtime

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPES = (
    OCI_MANIFEST,
    OCI_INDEX,
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
# The OCI 1.1 empty config of an artifact: the two bytes "{}".
EMPTY_CONFIG = b"{}"
EMPTY_CONFIG_TYPE = "application/vnd.oci.empty.v1+json"
REQUEST_TIMEOUT_SECONDS = 120
DOCKER_CONFIG = Path.home() / ".docker" / "config.json"


def today() -> str:
    """The dated tag of this build day, YYYYMMDD in UTC, so every machine agrees."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y%m%d")


@dataclass(frozen=True)
class Manifest:
    body: bytes
    media_type: str
    digest: str


class Registry:
    """One repository of a registry, through its HTTP API, with the token handshake that
    registries such as GHCR ask for (credentials from `docker login`'s config.json)."""

    def __init__(self, registry: str, name: str):
        host = registry.rsplit(":", 1)[0]
        # Docker's own rule: plain HTTP for a registry on the loopback, HTTPS elsewhere.
        self.base = f"{'http' if _loopback(host) else 'https'}://{registry}/v2/{name}"
        self.registry, self.session = registry, requests.Session()

    def _request(self, method: str, url: str, **kwargs) -> requests.Response:
        url = url if url.startswith("http") else self.base + url
        response = self.session.request(method, url, timeout=REQUEST_TIMEOUT_SECONDS, **kwargs)
        challenge = response.headers.get("WWW-Authenticate", "")
        if response.status_code == 401 and challenge.startswith("Bearer "):
            params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
            realm = params.pop("realm")
            token = self.session.get(
                realm, params=params, auth=self._credentials(), timeout=REQUEST_TIMEOUT_SECONDS
            )
            token.raise_for_status()
            grant = token.json()
            self.session.headers["Authorization"] = (
                f"Bearer {grant.get('token') or grant['access_token']}"
            )
            response = self.session.request(method, url, timeout=REQUEST_TIMEOUT_SECONDS, **kwargs)
        return response

    def _credentials(self) -> tuple[str, str] | None:
        try:
            auth = json.loads(DOCKER_CONFIG.read_text())["auths"][self.registry]["auth"]
        except (OSError, ValueError, KeyError):
            return None
        user, _, password = base64.b64decode(auth).decode().partition(":")
        return user, password

    def manifest(self, reference: str) -> Manifest | None:
        """The manifest a tag or digest names, or None when the registry has none."""
        response = self._request(
            "GET", f"/manifests/{reference}", headers={"Accept": ", ".join(MANIFEST_TYPES)}
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        digest = response.headers.get("Docker-Content-Digest") or _digest(response.content)
        return Manifest(response.content, response.headers["Content-Type"], digest)

    def put_manifest(self, reference: str, body: bytes, media_type: str) -> str:
        response = self._request(
            "PUT", f"/manifests/{reference}", data=body, headers={"Content-Type": media_type}
        )
        response.raise_for_status()
        return _digest(body)

    def blob(self, digest: str) -> bytes:
        response = self._request("GET", f"/blobs/{digest}")
        response.raise_for_status()
        if _digest(response.content) != digest:
            raise UserError(f"{self.base}: blob {digest} came back with other contents")
        return response.content

    def put_blob(self, data: bytes) -> str:
        """Upload a blob (one monolithic PUT) unless the registry has it; its digest."""
        digest = _digest(data)
        if self._request("HEAD", f"/blobs/{digest}").status_code == 200:
            return digest
        started = self._request("POST", "/blobs/uploads/")
        started.raise_for_status()
        location = started.headers["Location"]
        if location.startswith("/"):
            location = self.base.split("/v2/")[0] + location
        done = self._request(
            "PUT",
            location,
            params={"digest": digest},
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        done.raise_for_status()
        return digest


def _loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def referrers_tag(digest: str) -> str:
    """The OCI referrers tag schema's tag of a manifest's referrers: sha256-<hex>."""
    return digest.replace(":", "-", 1)


def published_sbom(registry: Registry, tags: list[str]) -> dict | None:
    """The SBOM published for the first of the tags the registry has, if any."""
    image = next(filter(None, map(registry.manifest, tags)), None)
    index = image and registry.manifest(referrers_tag(image.digest))
    if not index:
        return None
    for descriptor in json.loads(index.body).get("manifests", ()):
        if descriptor.get("artifactType") == sbom.MEDIA_TYPE:
            artifact = json.loads(registry.manifest(descriptor["digest"]).body)
            return json.loads(registry.blob(artifact["layers"][0]["digest"]))
    return None


def push_sbom(registry: Registry, subject: Manifest, document: bytes) -> tuple[str, str]:
    """Push the SBOM as an artifact whose subject is the image manifest, and list it in the
    subject's referrers index; the digests of the artifact and of the index."""
    layer = registry.put_blob(document)
    config = registry.put_blob(EMPTY_CONFIG)
    artifact = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": sbom.MEDIA_TYPE,
        "config": {"mediaType": EMPTY_CONFIG_TYPE, "digest": config, "size": len(EMPTY_CONFIG)},
        "layers": [
            {
                "mediaType": sbom.MEDIA_TYPE,
                "digest": layer,
                "size": len(document),
                "annotations": {"org.opencontainers.image.title": "sbom.cdx.json"},
            }
        ],
        "subject": {
            "mediaType": subject.media_type,
            "digest": subject.digest,
            "size": len(subject.body),
        },
    }
    body = json.dumps(artifact).encode()
    digest = registry.put_manifest(_digest(body), body, OCI_MANIFEST)
    tag = referrers_tag(subject.digest)
    existing = registry.manifest(tag)
    others = [
        d
        for d in (json.loads(existing.body).get("manifests", ()) if existing else ())
        if d.get("digest") != digest
    ]
    descriptor = {
        "mediaType": OCI_MANIFEST,
        "digest": digest,
        "size": len(body),
        "artifactType": sbom.MEDIA_TYPE,
    }
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [*others, descriptor]}
    index_body = json.dumps(index).encode()
    return digest, registry.put_manifest(tag, index_body, OCI_INDEX)


def push(
    client: docker.APIClient, runtime: Runtime, publish: Publish, date: str
) -> list[tuple[str, str]]:
    """Push the image under each of its tags and its SBOM beside it, unless the registry's
    SBOM for the row's version describes the same contents; (reference, digest) rows."""
    try:
        labels = client.inspect_image(runtime.image)["Config"]["Labels"] or {}
    except docker.errors.ImageNotFound:
        raise UserError(
            f"{runtime.image} is not built; run ./invoke build --runtime {runtime.id} first"
        ) from None
    exact = labels.get("org.opencontainers.image.version")
    path = sbom.sbom_file(runtime)
    if not exact or not path.exists():
        raise UserError(
            f"{runtime.image} has no {'SBOM ' + str(path) if exact else 'version label'}; "
            f"it was built by another checkout or an older KLR: run ./invoke build --runtime {runtime.id}"
        )
    document = path.read_bytes()
    built = json.loads(document)
    if built["metadata"]["component"]["version"] != exact:
        raise UserError(
            f"{path} is not the SBOM of {runtime.image} (version {exact}); "
            f"run ./invoke build --runtime {runtime.id} again"
        )
    repository = publish.repository(runtime)
    tags = publish.tags(runtime, exact, date)
    registry = Registry(publish.registry, repository.split("/", 1)[1])
    try:
        published = published_sbom(registry, [runtime.version, "latest"])
        if published and sbom.same_contents(published, built):
            return [(f"{repository}:{runtime.version}", "unchanged")]
        if published:
            changes = sbom.changes(published, built)
            print(f"{repository}: {len(changes)} change(s) since the published SBOM:", flush=True)
            print("".join(f"  {line}\n" for line in changes), end="", flush=True)
        else:
            print(f"{repository}: no SBOM published for :{runtime.version} yet", flush=True)
        pushed = [
            (f"{repository}:{tag}", _push_tag(client, runtime, repository, tag)) for tag in tags
        ]
        image = registry.manifest(tags[0])
        artifact, index = push_sbom(registry, image, document)
    except (requests.RequestException, KeyError, ValueError) as e:
        raise UserError(
            f"publishing to {publish.registry} failed: {e}; check that the registry is "
            f"reachable, that you are logged in (docker login {publish.registry}) and "
            "KLR_REGISTRY/KLR_OWNER"
        ) from None
    return [
        *pushed,
        (f"{repository} (its SBOM)", artifact),
        (f"{repository}:{referrers_tag(image.digest)} (the referrers tag)", index),
    ]


def _push_tag(client: docker.APIClient, runtime: Runtime, repository: str, tag: str) -> str:
    """docker push of one tag; the digest of the manifest pushed."""
    ref = f"{repository}:{tag}"
    print(f"Pushing {ref}", flush=True)
    digest = ""
    try:
        client.tag(runtime.image, repository, tag)
        for event in client.push(repository, tag=tag, stream=True, decode=True):
            if "error" in event:
                raise docker.errors.APIError(event["error"])
            digest = event.get("aux", {}).get("Digest", digest)
    except docker.errors.APIError as e:
        raise UserError(
            f"pushing {ref} failed: {e.explanation or e}; check that the registry is reachable, "
            f"that you are logged in (docker login {repository.split('/')[0]}) and KLR_REGISTRY/KLR_OWNER"
        ) from None
    return digest
