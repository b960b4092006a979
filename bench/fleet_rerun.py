"""Cost of a no-change re-run of site.yml, as ratios measured side by side.

Against one target (the local target by default), round by round:
  * site.yml with the inventory's fleet (6 agents, started),
  * site.yml with 48 agents (the 6 plus 42 more, units installed and
    enabled but not started: agents_start=false),
  * a one-task play (connection and one module call, the floor),
  * the 6-agent re-run and the one-task play again over SSH, as an
    operator reaches a VPS (sshd of the same target, a sudo user with a
    key this benchmark makes in .cache/ssh; pipelining on),
  * the SSH re-run once more with the mitogen strategy (the optional
    accelerator the README describes; pip-installed into .cache/ by this
    benchmark, never needed by the collection),
  * with --compare REV, the 6-agent re-run of REV's own site.yml and
    roles (a git worktree in .cache/) through the docker connection: the
    README's before and after table.
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
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import yaml
from settle import CONTAINER, settle

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECAP = re.compile(r"changed=(\d+)")


def run(argv, env=None, cwd=ROOT):
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False,
                          env=dict(os.environ, **env) if env else None)
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


MITOGEN = "0.3.54"
MITOGEN_DIR = os.path.join(ROOT, ".cache", "mitogen-" + MITOGEN)


def mitogen_env():
    """The README's recipe: mitogen from PyPI, its strategy by environment."""
    if not os.path.isdir(os.path.join(MITOGEN_DIR, "ansible_mitogen")):
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", MITOGEN_DIR, "mitogen==" + MITOGEN], check=True)
    return {"ANSIBLE_STRATEGY_PLUGINS": os.path.join(MITOGEN_DIR, "ansible_mitogen", "plugins", "strategy"),
            "ANSIBLE_STRATEGY": "mitogen_linear"}


SSH_KEY = os.path.join(ROOT, ".cache", "ssh", "bench_ed25519")
SSH_SETUP = """set -e
id admin >/dev/null 2>&1 || useradd -m -s /bin/bash admin
echo 'admin ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/admin && chmod 0440 /etc/sudoers.d/admin
install -d -m 0700 -o admin -g admin /home/admin/.ssh
cat > /home/admin/.ssh/authorized_keys && chown admin:admin /home/admin/.ssh/authorized_keys
systemctl enable --now ssh >/dev/null 2>&1
"""


def ssh_inventory(inventory, workdir):
    """An inventory for the same target reached over SSH as a sudo user."""
    if not os.path.exists(SSH_KEY):
        os.makedirs(os.path.dirname(SSH_KEY), exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "agentfleet-bench", "-f", SSH_KEY], check=True)
    with open(SSH_KEY + ".pub", encoding="utf-8") as handle:
        subprocess.run(["docker", "exec", "-i", CONTAINER, "bash", "-c", SSH_SETUP], input=handle.read(), text=True, check=True)
    address = subprocess.run(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", CONTAINER],
                             capture_output=True, text=True, check=True).stdout.strip()
    os.symlink(os.path.join(ROOT, inventory, "group_vars"), os.path.join(workdir, "group_vars"))
    hosts = {"fleet": {"hosts": {CONTAINER: {
        "ansible_host": address, "ansible_user": "admin", "ansible_ssh_private_key_file": SSH_KEY,
        # a new container each time: its host key is new too (mitogen reads this, not the ssh options)
        "ansible_host_key_checking": False,
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"}}}}
    with open(os.path.join(workdir, "hosts.yml"), "w", encoding="utf-8") as handle:
        yaml.safe_dump(hosts, handle)
    return workdir


def worktree(rev):
    """A checkout of rev beside this one, its collections/ link pointing at
    itself; its ansible.cfg is used by running from there."""
    sha = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    path = os.path.join(ROOT, ".cache", "bench-" + sha)
    if not os.path.isdir(path):
        subprocess.run(["git", "worktree", "add", "--detach", path, sha], cwd=ROOT, capture_output=True, check=True)
    return sha, path, {"ANSIBLE_CONFIG": os.path.join(path, "ansible.cfg")}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inventory", default="inventories/local")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--compare", metavar="REV", help="also time REV's no-change re-run (6 agents, docker connection)")
    args = parser.parse_args()

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(big_fleet(args.inventory, args.size), handle)
        big_vars = handle.name
    small = ["ansible-playbook", "-i", args.inventory, "playbooks/site.yml"]
    big = small + ["-e", "@" + big_vars]
    floor = ["ansible-playbook", "-i", args.inventory, "bench/one-task.yml"]
    ssh_dir = tempfile.mkdtemp(prefix="agentfleet-bench-ssh-")
    ssh = ssh_inventory(args.inventory, ssh_dir)
    ssh_small = ["ansible-playbook", "-i", ssh, "playbooks/site.yml"]
    ssh_floor = ["ansible-playbook", "-i", ssh, "bench/one-task.yml"]
    mitogen = mitogen_env()
    before = worktree(args.compare) if args.compare else None
    before_argv = ["ansible-playbook", "-i", os.path.join(ROOT, args.inventory), "playbooks/site.yml"]

    try:
        # Converge both shapes first: only no-change runs are timed.
        run(small)
        run(big)
        manager_mb, managers = manager_rss_mb(args.inventory, "openclaw-")
        times = {"small": [], "big": [], "floor": [], "ssh_small": [], "ssh_floor": [], "ssh_mitogen": []}
        waits = []
        for _round in range(args.rounds):
            for key, argv in (("small", small), ("big", big)):
                # Fleet-wide files (the constitution's fleet.json, the
                # audit's agent list) differ between the two fleets: switch
                # untimed first, then time the no-change re-run.
                run(argv)
                waits.append(settle())
                elapsed, changed = run(argv)
                if changed:
                    raise SystemExit("a %s re-run changed %d things: not idempotent, nothing to measure" % (key, changed))
                times[key].append(elapsed)
            times["floor"].append(run(floor)[0])
            # Back to the 6-agent fleet's files, untimed, before the SSH runs.
            run(small)
            waits.append(settle())
            elapsed, changed = run(ssh_small)
            if changed:
                raise SystemExit("a re-run over SSH changed %d things: not idempotent, nothing to measure" % changed)
            times["ssh_small"].append(elapsed)
            times["ssh_floor"].append(run(ssh_floor)[0])
            if before:
                # REV's run first, untimed: it may write a file differently.
                run(before_argv, before[2], cwd=before[1])
                elapsed, changed = run(before_argv, before[2], cwd=before[1])
                if changed:
                    raise SystemExit("a re-run of %s changed %d things: nothing to compare" % (before[0], changed))
                times.setdefault("before", []).append(elapsed)
                run(small)
                waits.append(settle())
            elapsed, changed = run(ssh_small, mitogen)
            if changed:
                raise SystemExit("a re-run with mitogen changed %d things: not idempotent, nothing to measure" % changed)
            times["ssh_mitogen"].append(elapsed)
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
        shutil.rmtree(ssh_dir)

    med = {key: statistics.median(values) for key, values in times.items()}
    print("no-change re-run of playbooks/site.yml, %d rounds interleaved, medians" % args.rounds)
    print("  6 agents (started)                  %6.2f s" % med["small"])
    print("  %d agents (installed, not started)  %6.2f s" % (args.size, med["big"]))
    print("  one-task play                       %6.2f s" % med["floor"])
    if before:
        print("  6 agents, %s (--compare)       %6.2f s (ratio %.2f to the one-task play; now / then %.2f)"
              % (before[0], med["before"], med["before"] / med["floor"], med["small"] / med["before"]))
    print("ratio %d agents / 6 agents:       %5.2f   (goal: at most 1.2)" % (args.size, med["big"] / med["small"]))
    print("  over SSH: 6 agents                  %6.2f s" % med["ssh_small"])
    print("  over SSH: one-task play             %6.2f s" % med["ssh_floor"])
    print("ratio 6-agent re-run / one task:  %5.2f   (goal: at most 6; docker connection)" % (med["small"] / med["floor"]))
    print("ratio 6-agent re-run / one task:  %5.2f   (goal: at most 6; SSH)" % (med["ssh_small"] / med["ssh_floor"]))
    print("  over SSH with mitogen %s: 6 agents %6.2f s (optional; ratio %.2f to the one-task play)"
          % (MITOGEN, med["ssh_mitogen"], med["ssh_mitogen"] / med["ssh_floor"]))
    print("user manager of an agent's own user: %.1f MB resident (median of %d)" % (manager_mb, managers))
    print("waited for the target to settle before timed runs: %.0f s in all, at most %.0f s once"
          % (sum(waits), max(waits)))


if __name__ == "__main__":
    main()
