"""Access-tracking endpoint: authenticate, validate, normalize, then store or forward.

Request:  POST /events  with header `x-api-key: <key>` and a JSON body such as
          {"type": "page_view", "url": "https://Example.com/a?b=1", "user_id": "u-1",
           "timestamp": "2026-11-22T10:00:00+01:00", "properties": {"ref": "news"}}
          or {"events": [...]} for up to 100 events at once.
Response: 202 {"accepted": n, "ids": [...]}; 400 with the first problem per event; 401 without
          a key; 403 with an unknown key.
"""

import datetime
import hashlib
import json
import os
import urllib.parse
import urllib.request
import uuid

EVENT_TYPES = {"page_view", "click", "signup", "purchase", "custom"}
MAX_EVENTS = 100
MAX_PROPERTIES = 50

# Parsed once per instance (init), as the keys only change with a deploy.
API_KEYS = dict(
    pair.split("=", 1) for pair in os.environ.get("API_KEYS", "").split(",") if "=" in pair
)


def _response(status, body):
    return {"statusCode": status, "headers": {"content-type": "application/json"},
            "body": json.dumps(body)}


class Invalid(Exception):
    pass


def _normalize_url(raw):
    if not isinstance(raw, str) or len(raw) > 2048:
        raise Invalid("url must be a string of at most 2048 characters")
    parts = urllib.parse.urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Invalid(f"url must be an absolute http(s) URL, got {raw!r}")
    return urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc.lower(), parts.path or "/", parts.query, "")
    )


def _normalize_time(raw, now):
    if raw is None:
        return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    try:
        moment = datetime.datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"timestamp must be ISO 8601, got {raw!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    moment = moment.astimezone(datetime.timezone.utc)
    if moment > now + datetime.timedelta(minutes=5):
        raise Invalid("timestamp is in the future")
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def normalize(raw, client, now):
    if not isinstance(raw, dict):
        raise Invalid("each event must be a JSON object")
    kind = str(raw.get("type", "")).strip().lower()
    if kind not in EVENT_TYPES:
        raise Invalid(f"type must be one of {sorted(EVENT_TYPES)}, got {raw.get('type')!r}")
    user = raw.get("user_id")
    if user is not None and (not isinstance(user, str) or not 0 < len(user) <= 128):
        raise Invalid("user_id must be a string of 1 to 128 characters")
    properties = raw.get("properties") or {}
    if not isinstance(properties, dict) or len(properties) > MAX_PROPERTIES:
        raise Invalid(f"properties must be an object with at most {MAX_PROPERTIES} keys")
    return {
        "id": str(uuid.uuid4()),
        "client": client,
        "type": kind,
        "url": _normalize_url(raw.get("url")),
        "user": hashlib.sha256(user.encode()).hexdigest()[:16] if user else None,
        "timestamp": _normalize_time(raw.get("timestamp"), now),
        "properties": {str(k)[:64]: v for k, v in properties.items()},
    }


def _store(records):
    forward = os.environ.get("FORWARD_URL")
    lines = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
    if forward:
        request = urllib.request.Request(forward, data=lines.encode(), method="POST",
                                         headers={"content-type": "application/x-ndjson"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            answer.read()
        return
    sink = os.environ.get("SINK_DIR", "/tmp/unkai-tracker")
    os.makedirs(sink, exist_ok=True)
    day = records[0]["timestamp"][:10]
    with open(os.path.join(sink, f"events-{day}.jsonl"), "a", encoding="utf-8") as out:
        out.write(lines)


def track(event, context):
    headers = event.get("headers") or {}
    key = headers.get("x-api-key")
    if not key:
        return _response(401, {"message": "missing x-api-key header"})
    client = API_KEYS.get(key)
    if client is None:
        return _response(403, {"message": "unknown API key"})
    try:
        body = json.loads(event.get("body") or "")
    except ValueError:
        return _response(400, {"message": "body must be JSON"})
    raw_events = body.get("events") if isinstance(body, dict) and "events" in body else [body]
    if not isinstance(raw_events, list) or not 0 < len(raw_events) <= MAX_EVENTS:
        return _response(400, {"message": f"events must be a list of 1 to {MAX_EVENTS} items"})
    now = datetime.datetime.now(datetime.timezone.utc)
    records, errors = [], []
    for index, raw in enumerate(raw_events):
        try:
            records.append(normalize(raw, client, now))
        except Invalid as problem:
            errors.append({"index": index, "message": str(problem)})
    if errors:
        return _response(400, {"message": "invalid events", "errors": errors})
    _store(records)
    print(f"accepted {len(records)} event(s) from {client}")
    return _response(202, {"accepted": len(records), "ids": [r["id"] for r in records]})
