"""Cost of a no-change re-run of site.yml, as ratios measured side by side.

Against one target (the local target by default), round by round:
  * site.yml with the inventory's fleet (6 agents, started),
  * site.yml with 48 agents (the 6 plus 42 more, units installed and
    enabled but not started: agents_start=false),
  * a one-task play (connection and one module call, the floor).
Every timed site.yml run must report changed=0; each is preceded by an
untimed run of the same fleet, since fleet-wide files differ between the
two fleets. Medians are compared as
ratios; machine noise hits all three alike, so the ratios are what to
compare between commits, not the seconds.
"""

import argparse
import copy
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECAP = re.compile(r"changed=(\d+)")


def run(argv):
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-2000:])
        raise SystemExit("benchmark command failed: %s" % " ".join(argv))
    return elapsed, sum(int(n) for n in RECAP.findall(proc.stdout.split("PLAY RECAP")[-1]))


def big_fleet(inventory, size):
    with open(os.path.join(ROOT, inventory, "group_vars", "fleet.yml"), encoding="utf-8") as handle:
        agents = yaml.safe_load(handle)["fleet_agents"]
    template = next(a for a in agents if a.get("role", "specialist") == "specialist")
    for index in range(len(agents), size):
        extra = copy.deepcopy(template)
        extra["name"] = "bench-%02d" % index
        agents.append(extra)
    return {"fleet_agents": agents, "agents_start": False}


def manager_rss_mb(inventory, prefix):
    """Median resident memory (MB) of the user manager (systemd --user and
    its sd-pam) of each agent user: what an agent's own user costs beyond
    its gateway."""
    proc = subprocess.run(["ansible", "-i", inventory, "fleet", "-b", "-o", "-m", "ansible.builtin.command",
                           "-a", "ps -eo user:40=,rss=,comm="], cwd=ROOT, capture_output=True, text=True, check=True)
    per_user = {}
    for line in proc.stdout.replace("\\n", "\n").splitlines():
        parts = line.split()
        if len(parts) < 3 or parts[-1] not in ("systemd", "(sd-pam)") or not parts[-2].isdigit():
            continue
        if parts[-3].startswith(prefix):
            per_user[parts[-3]] = per_user.get(parts[-3], 0) + int(parts[-2])
    if not per_user:
        raise SystemExit("no user manager of a %s* user found" % prefix)
    return statistics.median(per_user.values()) / 1024, len(per_user)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inventory", default="inventories/local")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=48)
    args = parser.parse_args()

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(big_fleet(args.inventory, args.size), handle)
        big_vars = handle.name
    small = ["ansible-playbook", "-i", args.inventory, "playbooks/site.yml"]
    big = small + ["-e", "@" + big_vars]
    floor = ["ansible-playbook", "-i", args.inventory, "bench/one-task.yml"]

    try:
        # Converge both shapes first: only no-change runs are timed.
        run(small)
        run(big)
        manager_mb, managers = manager_rss_mb(args.inventory, "openclaw-")
        times = {"small": [], "big": [], "floor": []}
        for _round in range(args.rounds):
            for key, argv in (("small", small), ("big", big)):
                # Fleet-wide files (the constitution's fleet.json, the
                # audit's agent list) differ between the two fleets: switch
                # untimed first, then time the no-change re-run.
                run(argv)
                elapsed, changed = run(argv)
                if changed:
                    raise SystemExit("a %s re-run changed %d things: not idempotent, nothing to measure" % (key, changed))
                times[key].append(elapsed)
            times["floor"].append(run(floor)[0])
    finally:
        # Leave the target as the inventory describes it: the extra agents
        # go, units and state directories included.
        with open(big_vars, encoding="utf-8") as handle:
            cleanup = json.load(handle)
        default_names = {a["name"] for a in big_fleet(args.inventory, 0)["fleet_agents"]}
        cleanup["fleet_agents"] = [a if a["name"] in default_names else {"name": a["name"], "state": "absent", "purge": True}
                                   for a in cleanup["fleet_agents"]]
        with open(big_vars, "w", encoding="utf-8") as handle:
            json.dump(cleanup, handle)
        run(big)
        os.unlink(big_vars)

    med = {key: statistics.median(values) for key, values in times.items()}
    print("no-change re-run of playbooks/site.yml, %d rounds interleaved, medians" % args.rounds)
    print("  6 agents (started)                  %6.2f s" % med["small"])
    print("  %d agents (installed, not started)  %6.2f s" % (args.size, med["big"]))
    print("  one-task play                       %6.2f s" % med["floor"])
    print("ratio %d agents / 6 agents:       %5.2f   (goal: at most 2.0)" % (args.size, med["big"] / med["small"]))
    print("ratio 6-agent re-run / one task:  %5.2f" % (med["small"] / med["floor"]))
    print("user manager of an agent's own user: %.1f MB resident (median of %d)" % (manager_mb, managers))


if __name__ == "__main__":
    main()
