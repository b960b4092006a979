"""Two VPS hosts in one `fleet` group, each with its own fleet: both are
deployed; a bad value for the first host ends the rollout there, and the
second host is not touched (its files and gateway PIDs stay the same)."""

import json
import os
import sys
from pathlib import Path

import pytest
import testinfra
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))

from fleet_checks import home_of, readyz, run_playbook, state_dir, unit, user_of, user_systemctl, why  # noqa: E402

HERE = Path(__file__).resolve().parents[1]
HOSTS = ["agentfleet-molecule-multihost-one", "agentfleet-molecule-multihost-two"]


def host_vars(name):
    with open(HERE / "host_vars" / f"{name}.yml", encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def plan(name):
    """(agent, port) of a host's fleet, as its host_vars lay the ports out."""
    data = host_vars(name)
    base, stride = data.get("agents_port_base", 18800), data.get("agents_port_stride", 200)
    return [(agent["name"], base + stride * index) for index, agent in enumerate(data["fleet_agents"])]


@pytest.fixture(scope="module")
def hosts():
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    return {name: testinfra.get_host(f"ansible://{name}?ansible_inventory={inventory}") for name in HOSTS}


def watched(host):
    """What a site.yml run would rewrite on a host: each agent's units,
    config and constitution files, oversight and watchdog settings."""
    paths = []
    for agent, port in plan(host.backend.host):
        paths += [f"{home_of(agent)}/.config/systemd/user", f"{state_dir(agent)}/openclaw.json",
                  f"{state_dir(agent)}/workspace/*.md"]
    return " ".join(paths + ["/etc/agentfleet"])


def fingerprint(host):
    """Checksums of every file a deploy writes, and the gateways' PIDs."""
    sums = host.run(f"find {watched(host)} -type f -print0 | sort -z | xargs -0 sha256sum")
    assert sums.rc == 0, sums.stderr
    return sums.stdout, main_pids_of(host)


# systemd's "Started UNIT." journal message (SD_MESSAGE_UNIT_STARTED); a
# unit whose start job ends at once, as the gateways', logs no "Starting".
UNIT_STARTED = "39f53479d3a045ac8e11786248231fbf"


def main_pids_of(host):
    names = [agent for agent, port in plan(host.backend.host)]
    # Each agent's gateway, from that agent's own user manager.
    pids = {name: user_systemctl(host, name, "show", "-p", "MainPID", unit(name)).stdout.strip() for name in names}
    assert all(pid.startswith("MainPID=") and pid != "MainPID=0" for pid in pids.values()), pids
    return pids


def test_each_host_runs_its_own_fleet(hosts):
    for name, host in hosts.items():
        # Every gateway unit on the host, in whichever home it is: each
        # agent's own, in its own user's home, and no other.
        listed = host.run("find /home -mindepth 5 -maxdepth 5 -path '/home/*/.config/systemd/user/*' "
                          "-name 'openclaw-gateway-*' -printf '%P\\n'").stdout.split()
        expected = sorted(f"{user_of(agent)}/.config/systemd/user/{unit(agent)}" for agent, port in plan(name))
        assert sorted(listed) == expected, name
        for agent, port in plan(name):
            assert readyz(host, port).get("ready") is True, (name, agent, port)


def first_start(host, name):
    """When agent name's user manager first started its gateway, in
    microseconds of the monotonic clock (its journal's first "Started").
    A first start that OpenClaw refused and the role started again does
    not move it, as it moves the unit's ActiveEnterTimestamp."""
    uid = host.user(user_of(name)).uid
    out = host.run_test(f"journalctl -o json --no-pager _UID={uid} USER_UNIT={unit(name)} "
                        f"MESSAGE_ID={UNIT_STARTED}").stdout
    stamps = [int(json.loads(line)["__MONOTONIC_TIMESTAMP"]) for line in out.splitlines() if line.strip()]
    assert stamps, f"no start of {unit(name)} in the journal of {host.backend.host}"
    return min(stamps)


def test_one_batch_of_hosts_starts_its_first_gateways_together(hosts):
    """converge.yml deploys both hosts in one batch (fleet_serial: 2): each
    host's first group of new gateways starts at the same time as the
    other's, not after the other host's whole play (100 s and more here,
    one host after the other). Measured at the first start each user
    manager logged: CI16 saw one host's gateway enter active 91 s after
    the other's, from the same task, after a start OpenClaw refused and
    the role repeated. The containers share the kernel, so their
    monotonic clocks compare."""
    started = [first_start(host, "coordinator") for host in hosts.values()]
    assert abs(started[0] - started[1]) < 60_000_000, started


def test_bad_value_for_host_one_stops_the_rollout(hosts, tmp_path):
    before = {name: fingerprint(host) for name, host in hosts.items()}
    # A bad value for the first host only, next to a change for every host
    # (the memory limit lands in each unit file): had the rollout gone on
    # to host two, its units would have changed and its gateways restarted.
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump({"fleet": {"hosts": {HOSTS[0]: {"watchdog_interval": 90}}}}))
    result = run_playbook("-i", str(bad), "-e", "agents_memory_max=1536M")
    assert result.returncode != 0
    assert "watchdog_interval" in result.stdout
    assert HOSTS[1] not in result.stdout, "the rollout reached host two"
    after = {name: fingerprint(host) for name, host in hosts.items()}
    assert after[HOSTS[1]] == before[HOSTS[1]]
    assert after[HOSTS[0]] == before[HOSTS[0]]

    # Had the rollout gone on, host two would have changed: check mode on
    # host two alone, with the same change, says so (and changes nothing).
    preview = run_playbook("--check", "--limit", HOSTS[1], "-e", "agents_memory_max=1536M")
    assert preview.returncode == 0, why(preview)
    stats = json.loads(preview.stdout)["stats"]
    assert set(stats) == {HOSTS[1]} and stats[HOSTS[1]]["changed"] > 0, stats
    assert fingerprint(hosts[HOSTS[1]]) == before[HOSTS[1]]


def test_host_two_is_debian_13_reached_over_ssh(hosts):
    two = hosts[HOSTS[1]]
    assert two.file("/etc/os-release").contains('^VERSION_ID="13"')
    # This test's own commands arrive as the login user, through sudo.
    assert two.run("printenv SUDO_USER").stdout.strip() == "admin"
    logins = two.run("journalctl -u ssh.service --no-pager -o cat").stdout
    assert "Accepted publickey for admin" in logins
    one = hosts[HOSTS[0]]
    assert one.file("/etc/os-release").contains('^VERSION_ID="12"')
