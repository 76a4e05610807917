"""Publishing: tag the local klr-<id> images as <registry>/<owner>/klr-<id> and push them."""

import datetime

import docker

from images import UserError
from images.matrix import Publish, Runtime


def today() -> str:
    """The dated tag of this build day, YYYYMMDD in UTC, so every machine agrees."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y%m%d")


def push(client: docker.APIClient, runtime: Runtime, publish: Publish, date: str) -> list[str]:
    """Push the image under each of its tags; the references pushed."""
    try:
        client.inspect_image(runtime.image)
    except docker.errors.ImageNotFound:
        raise UserError(
            f"{runtime.image} is not built; run ./invoke build --runtime {runtime.id} first"
        ) from None
    repository = publish.repository(runtime)
    pushed = []
    for tag in publish.tags(date):
        ref = f"{repository}:{tag}"
        print(f"Pushing {ref}", flush=True)
        try:
            client.tag(runtime.image, repository, tag)
            for event in client.push(repository, tag=tag, stream=True, decode=True):
                if "error" in event:
                    raise docker.errors.APIError(event["error"])
        except docker.errors.APIError as e:
            raise UserError(
                f"pushing {ref} failed: {e.explanation or e}; check that the registry is reachable, "
                f"that you are logged in (docker login {publish.registry}) and KLR_REGISTRY/KLR_OWNER"
            ) from None
        pushed.append(ref)
    return pushed
