import json

import chardet
import dateutil
from dateutil import parser, relativedelta


def endpoint(event, context):
    start = parser.parse(event["start"])
    later = start + relativedelta.relativedelta(months=+1, day=31, weekday=relativedelta.FR(-1))
    body = {
        "lastFridayOfNextMonth": later.date().isoformat(),
        "encoding": chardet.detect(event["text"].encode("utf-8"))["encoding"],
        "installedIn": dateutil.__file__,
    }
    return {"statusCode": 200, "body": json.dumps(body)}
