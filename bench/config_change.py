"""Cost of one validated config change, as ratios measured side by side.

Against the local target (make demo), round by round, for one agent:
  * playbooks/config_change.yml switching the model (schema + `openclaw
    config validate`, backup, atomic write; the gateway hot-reloads it,
    verified by its logged verdict and /readyz);
  * the same model switch with -e apply=restart (our restart of the unit
    instead of the gateway's reload);
  * config_change.yml setting or dropping gateway.controlUi.basePath, a
    key the gateway says it must restart for (it restarts itself in place,
    and the play waits for its "gateway ready" and /readyz);
  * a plain `systemctl --user restart`, then waiting for /readyz (what an
    operator must do anyway to know the agent is back).
Medians are compared as ratios; the seconds mean little on a noisy host.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from settle import CONTAINER, settle

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Each agent runs as its own user, fleet_user-NAME.
USER_PREFIX = "openclaw-"


def timed(argv, expect=None):
    """Seconds argv took; with expect, fails unless its output says so
    (how config_change.yml applied the change)."""
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-2000:])
        raise SystemExit("benchmark command failed: %s" % " ".join(argv))
    if expect and expect not in proc.stdout:
        raise SystemExit("%s: %r not in its output, nothing to measure:\n%s" % (" ".join(argv), expect, proc.stdout[-3000:]))
    return time.monotonic() - start


def in_target(script):
    return ["docker", "exec", CONTAINER, "bash", "-c", script]


def main_pid(user, unit):
    show = "runuser -u %s -- env XDG_RUNTIME_DIR=/run/user/$(id -u %s) systemctl --user show -p MainPID --value %s" % (
        user, user, unit)
    return subprocess.run(in_target(show), capture_output=True, text=True, check=True).stdout.strip()


def restarted(user, unit, argv):
    """Seconds argv took; fails unless the unit really got a new process."""
    before = main_pid(user, unit)
    elapsed = timed(argv)
    after = main_pid(user, unit)
    if after in ("0", before):
        raise SystemExit("%s was not restarted (MainPID %s -> %s): nothing to measure" % (unit, before, after))
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inventory", default="inventories/local")
    parser.add_argument("--agent", default="coder")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    user = USER_PREFIX + args.agent
    config = "/home/%s/.openclaw-%s/openclaw.json" % (user, args.agent)
    current = json.loads(subprocess.run(in_target("cat " + config), capture_output=True, text=True, check=True).stdout)
    original = current["agents"]["defaults"]["model"]["primary"]
    port = current["gateway"]["port"]
    other = "anthropic/claude-haiku-4-5" if original != "anthropic/claude-haiku-4-5" else "anthropic/claude-sonnet-4-5"
    unit = "openclaw-gateway-%s.service" % args.agent
    # reset-failed as config_change does, so the start limit never decides.
    systemctl = ("runuser -u {u} -- env XDG_RUNTIME_DIR=/run/user/$(id -u {u}) systemctl --user reset-failed {n} && "
                 "runuser -u {u} -- env XDG_RUNTIME_DIR=/run/user/$(id -u {u}) systemctl --user restart {n}").format(
                     u=user, n=unit)
    wait_ready = ("for i in $(seq 600); do curl -sf --max-time 2 http://127.0.0.1:%d/readyz | grep -q '\"ready\":true'"
                  " && exit 0; sleep 0.1; done; exit 1" % port)

    def change(merge, *extra):
        return ["ansible-playbook", "-i", args.inventory, "playbooks/config_change.yml",
                "-e", "agent=" + args.agent, "-e", json.dumps({"merge": merge})] + list(extra)

    def model(name):
        return {"agents": {"defaults": {"model": {"primary": name}}}}

    def base_path(value):
        return {"gateway": {"controlUi": {"basePath": value}}}

    def same_process(argv, expect):
        """Seconds argv took; fails unless the gateway kept its process."""
        before = main_pid(user, unit)
        elapsed = timed(argv, expect)
        if main_pid(user, unit) != before:
            raise SystemExit("%s: the gateway was restarted by systemd, not reloaded" % " ".join(argv))
        return elapsed

    times = {"hot": [], "ours": [], "restart_key": [], "restart_ready": []}
    waits = []
    try:
        for index in range(args.rounds):
            # Each round switches to the other model and back, so both runs
            # change something; each starts from a quiet target.
            waits.append(settle())
            times["hot"].append(same_process(change(model(other)), "(hot-reload)"))
            waits.append(settle())
            times["ours"].append(restarted(user, unit, change(model(original), "-e", "apply=restart")))
            # The gateway restarts itself in place; the play waits for it.
            waits.append(settle())
            times["restart_key"].append(same_process(change(base_path("/bench" if index % 2 == 0 else None)),
                                                     "(gateway-restart)"))
            waits.append(settle())
            times["restart_ready"].append(restarted(user, unit, in_target(systemctl + " && " + wait_ready)))
            print("round %d: %s" % (index + 1, ", ".join("%s %.2f s" % (k, v[-1]) for k, v in times.items())),
                  flush=True)
    finally:
        timed(change({"agents": {"defaults": {"model": {"primary": original}}}, "gateway": {"controlUi": {"basePath": None}}}))

    med = {key: statistics.median(values) for key, values in times.items()}
    ready = med["restart_ready"]
    print("one config change of agent %s, %d rounds interleaved, medians" % (args.agent, args.rounds))
    print("  model switch, the gateway's hot reload          %6.2f s" % med["hot"])
    print("  model switch, -e apply=restart (our restart)    %6.2f s" % med["ours"])
    print("  a key the gateway must restart for              %6.2f s" % med["restart_key"])
    print("  systemctl --user restart, then wait for /readyz %6.2f s" % ready)
    print("ratio model switch / restart and ready:           %6.2f  (goal <= 0.30)" % (med["hot"] / ready))
    print("ratio restart key / restart and ready:            %6.2f  (goal <= 1.15)" % (med["restart_key"] / ready))
    print("ratio model switch with apply=restart / restart and ready: %6.2f" % (med["ours"] / ready))
    print("waited for the target to settle before timed runs: %.0f s in all, at most %.0f s once"
          % (sum(waits), max(waits)))


if __name__ == "__main__":
    main()
