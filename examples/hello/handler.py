"""A Lambda handler: works unchanged on AWS Lambda and on unkai."""

import json
import logging

logger = logging.getLogger()
logger.setLevel(logging.INFO)

# Module-level state is created once per instance (the init phase) and kept while it is warm.
invocations = 0


def hello(event, context):
    global invocations
    invocations += 1
    params = event.get("queryStringParameters") or {}
    name = params.get("name") or event.get("name") or "world"
    logger.info("greeting %s", name)
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(
            {
                "message": f"hello, {name}",
                "request_id": context.aws_request_id,
                "warm_invocations": invocations,
            }
        ),
    }
