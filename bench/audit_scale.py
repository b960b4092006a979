"""Wall time of one oversight audit for 48 agents against 6, side by side.

On the local target (make demo), a synthetic fleet of 48 agents is laid
out for one agent's user beside the real one: a gateway user unit each
(installed, not started), openclaw.json with its last good copy and
change log, the constitution files with their rendered record, HANDOFF.md
and a copy of a real gateway log (the state directory's logs/). Round by round, the installed
agentfleet-audit command audits the first 6 and then all 48 of them,
timed inside the container: once from an empty state (a first audit reads
every log whole) and once more right after (the timer's steady state: it
reads only what the logs gained since). The ratio of the medians is what matters: an audit must
not grow with the fleet faster than necessary.
"""

import argparse
import json
import statistics
import subprocess

from settle import CONTAINER, settle

# Runs inside the target as root: lay out the synthetic fleet, then time
# the audit command for each fleet size.
IN_TARGET = r'''
import json, os, pwd, shutil, subprocess, sys, time
sizes, rounds = json.loads(sys.argv[1]), int(sys.argv[2])
real = json.load(open("/etc/agentfleet/oversight.json"))
model = next(a for a in real["agents"] if a["role"] != "coordinator")
# Every synthetic agent under the model agent's own user: one user
# manager, so this times the audit's reading, not 48 managers.
user = pwd.getpwnam(model["user"])
home, root = user.pw_dir, "/var/tmp/agentfleet-bench-audit"
units = os.path.join(home, ".config/systemd/user")
unit_text = open(os.path.join(units, model["unit"])).read()
shutil.rmtree(root, ignore_errors=True)
os.makedirs(root)
agents = []
for i in range(max(sizes)):
    name = "bench%02d" % i
    state = os.path.join(root, ".openclaw-" + name)
    shutil.copytree(model["state_dir"], state, ignore=shutil.ignore_patterns("agents", "cache", "tmp", "media", "*.lock"))
    unit = "openclaw-gateway-%s.service" % name
    with open(os.path.join(units, unit), "w") as handle:
        handle.write(unit_text.replace("--profile %s " % model["name"], "--profile %s " % name))
    rendered = os.path.join(real["constitution_state_dir"], "rendered", model["name"] + ".json")
    record = json.load(open(rendered))
    record["files"] = {p.replace(model["workspace"], state + "/workspace"): s for p, s in record["files"].items()}
    os.makedirs(root + "/law/rendered", exist_ok=True)
    json.dump(record, open("%s/law/rendered/%s.json" % (root, name), "w"))
    agents.append(dict(model, name=name, unit=unit, port=40000 + i, state_dir=state,
                       config=state + "/openclaw.json", workspace=state + "/workspace"))
subprocess.run(["chown", "-R", "%d:%d" % (user.pw_uid, user.pw_gid), root], check=True)
subprocess.run(["runuser", "-u", user.pw_name, "--", "env", "XDG_RUNTIME_DIR=/run/user/%d" % user.pw_uid,
                "systemctl", "--user", "daemon-reload"], check=True)
configs = {}
for size in sizes:
    config = dict(real, agents=agents[:size], report_dir="%s/reports-%d" % (root, size),
                  constitution_state_dir=root + "/law", repositories={}, secrets_file="",
                  coordinator={}, reviewer={})
    configs[size] = "%s/audit-%d.json" % (root, size)
    json.dump(config, open(configs[size], "w"))
times = {kind: {size: [] for size in sizes} for kind in ("first", "next")}
for _ in range(rounds):
    for size in sizes:
        shutil.rmtree("%s/reports-%d" % (root, size), ignore_errors=True)
        # first: no state, every log read whole; next: the timer's steady
        # state, the previous audit's state kept.
        for kind in ("first", "next"):
            start = time.monotonic()
            proc = subprocess.run(["/opt/agentfleet/bin/agentfleet-audit", "--config", configs[size]],
                                  capture_output=True, text=True)
            times[kind][size].append(time.monotonic() - start)
            report = json.load(open("%s/reports-%d/latest.json" % (root, size)))
            down = sum(1 for f in report["findings"] if f["rule"] == "agent-down")
            if proc.returncode != 0 or len(report["agents"]) != size or down != size:
                sys.exit("audit of %d agents went wrong (rc %d, %d agents, %d down): %s" % (
                    size, proc.returncode, len(report["agents"]), down, proc.stderr))
for i in range(max(sizes)):
    os.unlink(os.path.join(units, "openclaw-gateway-bench%02d.service" % i))
subprocess.run(["runuser", "-u", user.pw_name, "--", "env", "XDG_RUNTIME_DIR=/run/user/%d" % user.pw_uid,
                "systemctl", "--user", "daemon-reload"], check=True)
shutil.rmtree(root)
print(json.dumps(times))
'''


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=6)
    parser.add_argument("--large", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    sizes = [args.small, args.large]
    settle()
    proc = subprocess.run(["docker", "exec", "-i", CONTAINER, "python3", "-", json.dumps(sizes), str(args.rounds)],
                          input=IN_TARGET, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit("benchmark failed in %s: %s%s" % (CONTAINER, proc.stdout[-2000:], proc.stderr[-2000:]))
    times = json.loads(proc.stdout.strip().splitlines()[-1])
    print("oversight audit, %d rounds side by side (median wall time of agentfleet-audit in the target):" % args.rounds)
    for kind, what in (("next", "as the timer runs it (the previous audit's state kept: new log lines only)"),
                       ("first", "first audit on a host (no state: every gateway log read whole)")):
        small, large = (statistics.median(times[kind][str(s)]) for s in sizes)
        print("  %s:" % what)
        print("    %2d agents %.3f s, %2d agents %.3f s: ratio %.2f" % (args.small, small, args.large, large, large / small))
    print("  goal for the timer's audit: ratio at most 2.0 for %.0fx the agents" % (args.large / args.small))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
