"""playbooks/upgrade.yml against real gateways, in order: 2026.9.5 (this
scenario's pin) to the collection's pinned 2026.9.6, then back to 2026.9.5
with the snapshots, a move whose second agent cannot start on the old
version and is rolled back."""

import base64
import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))

from fleet_checks import (ROOT, agent_names, finish_playbook, fleet_agents, home_of, readyz, run_playbook,  # noqa: E402
                          start_playbook, started_at, state_dir, task_results, unit, unit_file, unit_props, user_of,
                          user_systemctl, wait_until, why)

OLD = "2026.9.5"
with open(ROOT / "roles/fleet/defaults/main.yml", encoding="utf-8") as handle:
    NEW = yaml.safe_load(handle)["fleet_openclaw_version"]
PREFIX = "/opt/agentfleet"
# Specialists in inventory order, the coordinator last.
ORDER = ["coder", "reviewer", "coordinator"]
DROP_IN = f"{home_of('reviewer')}/.config/systemd/user/{unit('reviewer')}.d/refuse-new.conf"
HOLD = "/var/lib/agentfleet/hold"
PLANTED = f"{state_dir('coder')}/state/planted-link"
SHADOW = []
SNAPSHOTS = "/var/lib/agentfleet/upgrade"


def ports():
    return {agent["name"]: 18800 + 200 * index for index, agent in enumerate(fleet_agents())}


def running(host, name):
    """OpenClaw versions the live gateway has mapped (its command line is
    renamed to `openclaw-gateway`), its unit's ExecStart names, and its
    config's lastTouchedVersion says."""
    pid = unit_props(host, name)["MainPID"]
    mapped = host.run(f"grep -o '/opt/agentfleet/openclaw/[^/]*/' /proc/{pid}/maps | sort -u").stdout
    execstart = host.run(f"grep ^ExecStart= {unit_file(name)}").stdout
    config = host.file(f"{state_dir(name)}/openclaw.json").content_string
    return ({v for v in (OLD, NEW) if f"/openclaw/{v}/" in mapped},
            {v for v in (OLD, NEW) if f"/openclaw/{v}/" in execstart},
            {v for v in (OLD, NEW) if f'"lastTouchedVersion": "{v}"' in config})


def assert_fleet_on(host, version):
    assert host.file(f"{PREFIX}/openclaw/current").linked_to == f"{PREFIX}/openclaw/{version}"
    for name, port in ports().items():
        assert running(host, name) == ({version}, {version}, {version}), name
        assert readyz(host, port).get("ready") is True, name


def pids(host):
    return {name: unit_props(host, name)["MainPID"] for name in agent_names()}


def test_the_fleet_starts_on_the_scenario_pin(host):
    assert_fleet_on(host, OLD)


def test_upgrade_moves_specialists_first_and_the_coordinator_last(host):
    # The coder plants a link to a root-only file in what the snapshot
    # saves (tar and rm run as the coder's user: saved as a link, never
    # followed; restored the same way, twice, by the last test).
    planted = host.run(f"runuser -u {user_of('coder')} -- ln -s /etc/shadow {PLANTED}")
    assert planted.rc == 0, planted.stderr
    SHADOW.append(host.file("/etc/shadow").sha256sum)
    proc = start_playbook("-e", f"fleet_openclaw_version={NEW}", playbook="upgrade.yml")
    try:
        # The coder stopped for its snapshot: a watchdog run (root's, as
        # cron starts it) leaves every agent the play holds alone and says
        # why; no incident, no restart.
        assert wait_until(lambda: host.file(f"{HOLD}/coder").exists and (
            unit_props(host, "coder")["ActiveState"] != "active" or host.file(f"{SNAPSHOTS}/coder").exists), 600)
        run = host.run("/opt/agentfleet/bin/agentfleet-watchdog")
        assert run.rc == 0, run.stdout + run.stderr
        assert "0 incident(s)" in run.stdout, run.stdout
        held = run.stdout.split("left alone, deliberate work (nothing changed for them): ", 1)[1]
        for name in ORDER:
            assert f"{name} (held by a playbook ({HOLD}/{name}): upgrade.yml is moving it" in held, run.stdout
        assert not host.file("/var/lib/agentfleet/watchdog/incidents.jsonl").exists
    finally:
        result = finish_playbook(proc)
    assert result.returncode == 0, why(result)
    assert_fleet_on(host, NEW)
    starts = {name: started_at(host, name) for name in ORDER}
    assert sorted(ORDER, key=starts.get) == ORDER
    for name in ORDER:
        assert host.file(f"/var/lib/agentfleet/upgrade/{name}/{OLD}.tar").is_file
    listing = host.check_output(f"tar -tvf {SNAPSHOTS}/coder/{OLD}.tar state/planted-link")
    assert listing.startswith("l") and listing.endswith("state/planted-link -> /etc/shadow"), listing
    assert host.run(f"{PREFIX}/bin/openclaw --version").stdout.startswith(f"OpenClaw {NEW}")


def test_a_second_run_downloads_nothing_and_changes_nothing(host):
    result = run_playbook("-e", f"fleet_openclaw_version={NEW}", playbook="upgrade.yml")
    assert result.returncode == 0
    stats = json.loads(result.stdout)["stats"]
    assert all(s["changed"] == 0 for s in stats.values()), stats
    assert task_results(result.stdout, "Install OpenClaw (when missing)").get("skipped") is True


def test_site_yml_refuses_the_older_pin_while_the_agents_run_the_newer(host):
    # The inventory still pins the old version: deploying it would start
    # every agent on a build that refuses their databases.
    before = pids(host)
    result = run_playbook()
    assert result.returncode != 0
    assert f"fleet_openclaw_version={OLD} is older than the OpenClaw that" in result.stdout
    assert pids(host) == before
    assert_fleet_on(host, NEW)


def test_going_back_needs_the_snapshots(host):
    before = pids(host)
    refused = run_playbook("-e", f"fleet_openclaw_version={OLD}", playbook="upgrade.yml")
    assert refused.returncode != 0
    assert "agents_upgrade_restore_snapshots=true" in refused.stdout
    assert pids(host) == before
    assert_fleet_on(host, NEW)


@pytest.fixture
def reviewer_refuses_the_old_version(host):
    """An injected start failure: reviewer's gateway exits before it starts
    whenever its unit runs the old OpenClaw."""
    # The gateway's sandbox hides the home: the check gets the unit
    # directory bound in, read-only.
    content = ("[Service]\nBindReadOnlyPaths=%%h/.config/systemd/user\n"
               "ExecStartPre=/bin/sh -c '! grep -q /openclaw/%s/ %%h/.config/systemd/user/%%n'\n" % OLD)
    encoded = base64.b64encode(content.encode()).decode()
    written = host.run(f"mkdir -p {Path(DROP_IN).parent} && echo {encoded} | base64 -d > {DROP_IN}"
                       f" && chown -R {user_of('reviewer')} {Path(DROP_IN).parent}")
    assert written.rc == 0, written.stderr
    assert user_systemctl(host, "reviewer", "daemon-reload").rc == 0
    yield
    host.run(f"rm -rf {Path(DROP_IN).parent}")
    user_systemctl(host, "reviewer", "daemon-reload")


def test_a_failed_move_back_restores_the_snapshots_then_puts_every_agent_back(host, reviewer_refuses_the_old_version):
    """Back to the old version with the snapshots, the reviewer unable to
    start on it: the coder moves back (its snapshot of the old version
    restored), the reviewer fails, and both go forward again onto the
    snapshots taken as they left the new version. One run shows the
    downgrade's restore and the rollback; a successful move is the
    upgrade above (same tasks)."""
    before = pids(host)
    result = run_playbook("-e", f"fleet_openclaw_version={OLD}", "-e", "agents_upgrade_restore_snapshots=true",
                          playbook="upgrade.yml")
    assert result.returncode != 0
    assert task_results(result.stdout, "Install the OpenClaw npm package").get("skipped") is True
    assert task_results(result.stdout, "Snapshot of the databases: restore coder").get("changed") is True
    failure = task_results(result.stdout, "Fail with what went wrong")["msg"]
    assert failure.startswith(f"reviewer did not run on OpenClaw {OLD}")
    assert "rolled back: coder, reviewer run OpenClaw " + NEW in failure
    assert "journal lines" in failure and unit("reviewer") in failure
    for name in ("coder", "reviewer"):
        assert host.file(f"{SNAPSHOTS}/{name}/{NEW}.tar").is_file, name
    assert_fleet_on(host, NEW)
    # The coordinator was never moved; the coder went back and forward again.
    after = pids(host)
    assert after["coordinator"] == before["coordinator"]
    assert after["coder"] != before["coder"]
    # The planted link came back as a link (twice); what it points at is untouched.
    assert host.file(PLANTED).is_symlink and host.check_output(f"stat -c %U {PLANTED}") == user_of("coder")
    assert host.file("/etc/shadow").sha256sum == SHADOW[0] and host.file("/etc/shadow").user == "root"
