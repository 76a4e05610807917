"""Function URL mode (EVENT_TYPE=FUNCTION_URL): payload 2.0 as Lambda Function URLs send it.

The event and the answer are HTTP API's (klr/modes/http_api.py), with a Function URL's
`requestContext`: apiId is the URL's id and domainName `<url-id>.lambda-url.<region>.on.aws`,
`authentication` null and no `authorizer`, as for a URL with auth type NONE. A function error,
a timeout or a result that cannot be sent is a Function URL's 502.
"""

from __future__ import annotations

import base64
import hashlib

from klr.config import Settings
from klr.http import Response
from klr.modes import Forwarding, json_response
from klr.modes.http_api import HttpApiMode


class FunctionUrlMode(HttpApiMode):
    service = "Function URL"

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.url_id = url_id(settings)
        self.domain_name = f"{self.url_id}.lambda-url.{settings.region}.on.aws"

    def api_fields(self, origin: Forwarding) -> dict:
        return {
            "apiId": self.url_id,
            "authentication": None,
            "domainName": self.domain_name,
            "domainPrefix": self.url_id,
        }

    def failure(self, timed_out: bool = False) -> Response:
        return json_response(502, {"message": "Internal Server Error"})


def url_id(settings: Settings) -> str:
    """32 lower-case letters and digits, the same for the same function, as Lambda makes them."""
    name = f"{settings.account_id}:{settings.region}:{settings.function_name}".encode()
    return base64.b32encode(hashlib.sha256(name).digest()).decode().lower()[:32]
