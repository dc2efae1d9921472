"""Sends a plan of events to a Segment-compatible host with the official
Python library (segment-analytics-python), then prints a JSON summary.

usage: send.py PLAN.json HOST WRITE_KEY [gzip]
"""

import json
import sys
from datetime import datetime

from segment.analytics.client import Client

plan_path, host, write_key = sys.argv[1:4]
use_gzip = sys.argv[4:5] == ["gzip"]
with open(plan_path) as f:
    plan = json.load(f)

errors = []


def on_error(error, items):
    errors.append("%s (%d events)" % (error, len(items)))


client = Client(
    write_key, host=host, on_error=on_error, max_retries=20, upload_size=100, gzip=use_gzip
)
for item in plan:
    ts = datetime.fromisoformat(item["timestamp"].replace("Z", "+00:00"))
    common = dict(anonymous_id=item["anonymousId"], timestamp=ts, message_id=item["messageId"])
    if item["type"] == "track":
        client.track(event=item["event"], properties=item.get("properties", {}), **common)
    elif item["type"] == "page":
        client.page(name=item["name"], properties=item.get("properties", {}), **common)
    elif item["type"] == "identify":
        client.identify(user_id=item["userId"], traits=item.get("traits", {}), **common)
    else:
        raise SystemExit("unknown type in plan: %r" % item["type"])
client.flush()
client.shutdown()
print(json.dumps({"sent": len(plan), "errors": errors}))
