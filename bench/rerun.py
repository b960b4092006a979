"""No-change re-run cost of site.yml, as a ratio to a one-task play.

Both plays run against the same target, interleaved round by round, so
machine noise hits both alike; the ratio is what to compare across
commits, not the seconds.
"""

import argparse
import statistics
import subprocess
import sys
import time


def timed(cmd):
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"benchmark command failed: {' '.join(cmd)}")
    return elapsed, proc.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inventory", default="inventories/local")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    site = ["ansible-playbook", "-i", args.inventory, "playbooks/site.yml"]
    floor = ["ansible-playbook", "-i", args.inventory, "bench/one-task.yml"]

    # Bring the host to the converged state first: only no-change runs count.
    timed(site)
    site_times, floor_times = [], []
    for _round in range(args.rounds):
        elapsed, out = timed(site)
        if " changed=0 " not in out:
            raise SystemExit("site.yml changed something on a re-run: not idempotent, nothing to measure")
        site_times.append(elapsed)
        floor_times.append(timed(floor)[0])

    site_median = statistics.median(site_times)
    floor_median = statistics.median(floor_times)
    print(f"rounds: {args.rounds} (medians, seconds are for orientation only)")
    print(f"  site.yml no-change re-run : {site_median:6.2f} s")
    print(f"  one-task play             : {floor_median:6.2f} s")
    print(f"  ratio re-run / one-task   : {site_median / floor_median:6.2f}")


if __name__ == "__main__":
    main()
