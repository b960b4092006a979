"""Waiting for a quiet target before a timed run.

A gateway start costs 40-60 s of CPU, much of it after /readyz already
answers (the database check, the model catalog, plugin services). A timed
run that shares the two cores with that measures the start, not the
thing timed; every benchmark here waits for the target to go quiet first.
"""

import subprocess
import time

CONTAINER = "agentfleet-local"


def settle(container=CONTAINER, limit=300, quiet=15.0):
    """Wait until container's processes use less than `quiet` % of one core
    in two samples running (docker stats, about 2 s each), at most limit
    seconds. Returns the seconds waited."""
    start = time.monotonic()
    calm = 0
    while calm < 2 and time.monotonic() - start < limit:
        out = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.CPUPerc}}", container],
                             capture_output=True, text=True, check=True).stdout.strip().rstrip("%")
        calm = calm + 1 if float(out or 0) < quiet else 0
    return time.monotonic() - start
