"""Burns about 1 ms of CPU per call; bench/cpu_bound.py writes `calibration.py` beside it."""

try:
    from calibration import ITERATIONS
except ImportError:  # run without the bench: an uncalibrated default
    ITERATIONS = 20_000


def burn(iterations):
    total = 0
    for i in range(iterations):
        total += i * i
    return total


def cpu(event, context):
    return {"statusCode": 200, "body": str(burn(ITERATIONS) % 10)}
