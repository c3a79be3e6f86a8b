import time


def sleepy(event, context):
    time.sleep(0.2)  # long enough that K concurrent invokes need K instances
    return {"statusCode": 200, "body": "slept"}
