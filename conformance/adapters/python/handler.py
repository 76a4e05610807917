"""One echo route behind each of Powertools' resolvers: what the library made of the request."""

import base64

from aws_lambda_powertools.event_handler import (
    ALBResolver,
    APIGatewayHttpResolver,
    APIGatewayRestResolver,
    LambdaFunctionUrlResolver,
    Response,
)


def header(event, name):
    """A header's value, in headers or (ALB with multi-value headers) multiValueHeaders."""
    for key, value in event.resolved_headers_field.items():
        if key.lower() == name:
            return ",".join(value) if isinstance(value, list) else value
    return None


def echo(app):
    event = app.current_event
    if event.is_base64_encoded:
        body = base64.b64decode(event.body or "")
    else:
        body = (event.body or "").encode()
    cookies = getattr(event, "cookies", None)  # payload 2.0 has its own field
    if cookies is None:
        cookies = [cookie for cookie in (header(event, "cookie") or "").split("; ") if cookie]
    return Response(
        status_code=201,
        content_type="application/json",
        headers={"X-Adapter": "powertools"},
        body={
            "method": event.http_method,
            "path": event.path,
            "query": event.resolved_query_string_parameters,
            "header": header(event, "x-test"),
            "largeHeader": len(header(event, "x-large") or ""),
            "cookies": cookies,
            "body": base64.b64encode(body).decode(),
        },
    )


def resolver(cls):
    app = cls()
    app.route(".+", method=["GET", "POST", "PUT", "DELETE", "PATCH"])(lambda: echo(app))
    return lambda event, context: app.resolve(event, context)


rest = resolver(APIGatewayRestResolver)
http = resolver(APIGatewayHttpResolver)
url = resolver(LambdaFunctionUrlResolver)
alb = resolver(ALBResolver)
