import boto3  # noqa: F401  (the import is the point: ~150 ms in a fresh interpreter)


def hello(event, context):
    return {"statusCode": 200, "body": "hello"}
