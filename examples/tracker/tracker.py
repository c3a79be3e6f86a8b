"""Access tracking as a pipeline: the endpoint answers fast and hands the work to a queue.

track (POST /events): authenticate, validate, normalize, then enqueue the records (SQS
          SendMessageBatch through boto3; the platform gives the function its endpoint).
          Request: header `x-api-key: <key>` and a JSON body such as
          {"type": "page_view", "url": "https://Example.com/a?b=1", "user_id": "u-1",
           "timestamp": "2026-11-22T10:00:00+01:00", "properties": {"ref": "news"}}
          or {"events": [...]} for up to 100 events at once.
          Response: 202 {"accepted": n, "ids": [...]}; 400 with the first problem per event;
          401 without a key; 403 with an unknown key.
store     (queue tracker-events, batches of 10): append each record to the day's JSON Lines
          file in SINK_DIR, or POST them to FORWARD_URL. A record that is not a valid
          normalized event is reported in `batchItemFailures`; after 3 receives the queue
          moves it to the dead-letter queue tracker-dead-letters.
compact   (nightly): rewrite each finished day's file without duplicates (delivery is at
          least once), sorted by time, as compacted-<day>.jsonl.
"""

import datetime
import glob
import hashlib
import json
import os
import urllib.parse
import urllib.request
import uuid

import boto3

EVENT_TYPES = {"page_view", "click", "signup", "purchase", "custom"}
MAX_EVENTS = 100
MAX_PROPERTIES = 50

# Parsed once per instance (init), as the keys only change with a deploy.
API_KEYS = dict(
    pair.split("=", 1) for pair in os.environ.get("API_KEYS", "").split(",") if "=" in pair
)
QUEUE = os.environ.get("QUEUE", "tracker-events")
RECORD_KEYS = {"id", "client", "type", "url", "user", "timestamp", "properties"}
_sqs = None


def _queue_url():
    """The SQS client and the queue's URL, made once per instance."""
    global _sqs
    if _sqs is None:
        client = boto3.client("sqs")
        _sqs = (client, client.get_queue_url(QueueName=QUEUE)["QueueUrl"])
    return _sqs


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
        moment = moment.replace(tzinfo=datetime.UTC)
    moment = moment.astimezone(datetime.UTC)
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
    """Append records to the sink (grouped by day), or forward them."""
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
    by_day = {}
    for r in records:
        by_day.setdefault(r["timestamp"][:10], []).append(json.dumps(r, separators=(",", ":")))
    for day, day_lines in by_day.items():
        with open(os.path.join(sink, f"events-{day}.jsonl"), "a", encoding="utf-8") as out:
            out.write("".join(line + "\n" for line in day_lines))


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
    now = datetime.datetime.now(datetime.UTC)
    records, errors = [], []
    for index, raw in enumerate(raw_events):
        try:
            records.append(normalize(raw, client, now))
        except Invalid as problem:
            errors.append({"index": index, "message": str(problem)})
    if errors:
        return _response(400, {"message": "invalid events", "errors": errors})
    sqs, url = _queue_url()
    for start in range(0, len(records), 10):
        chunk = records[start : start + 10]
        answer = sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "MessageBody": json.dumps(r)} for i, r in enumerate(chunk)],
        )
        if answer.get("Failed"):
            raise RuntimeError(f"queue refused {answer['Failed']}")
    print(f"accepted {len(records)} event(s) from {client}")
    return _response(202, {"accepted": len(records), "ids": [r["id"] for r in records]})


def store(event, context):
    """Queue consumer: store the valid records, report the others as failed items."""
    good, failed = [], []
    for message in event["Records"]:
        try:
            record = json.loads(message["body"])
            if not isinstance(record, dict) or set(record) != RECORD_KEYS:
                raise ValueError("not a normalized event")
            datetime.datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
            good.append(record)
        except (ValueError, TypeError, AttributeError, KeyError) as problem:
            print(f"poison message {message['messageId']}: {problem}")
            failed.append({"itemIdentifier": message["messageId"]})
    if good:
        _store(good)
    return {"batchItemFailures": failed}


def compact(event, context):
    """Nightly: one sorted, de-duplicated file per finished day."""
    sink = os.environ.get("SINK_DIR", "/tmp/unkai-tracker")
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    if event.get("all_days"):
        today = "9999-12-31"
    done = []
    for path in sorted(glob.glob(os.path.join(sink, "events-*.jsonl"))):
        day = os.path.basename(path)[len("events-") : -len(".jsonl")]
        if day >= today:
            continue  # still being written
        unique = {}
        with open(path, encoding="utf-8") as source:
            for line in source:
                if line.strip():
                    record = json.loads(line)
                    unique[record["id"]] = record
        target = os.path.join(sink, f"compacted-{day}.jsonl")
        with open(target + ".tmp", "w", encoding="utf-8") as out:
            for record in sorted(unique.values(), key=lambda r: (r["timestamp"], r["id"])):
                out.write(json.dumps(record, separators=(",", ":")) + "\n")
        os.replace(target + ".tmp", target)
        os.remove(path)
        done.append({"day": day, "records": len(unique)})
    print(f"compacted {done}")
    return {"compacted": done}
