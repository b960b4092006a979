"""What site.yml must leave true on a freshly booted host."""

import json

import pytest
import yaml
from fleet_checks import (FLEET_USER, ROOT, agent_names, home_of, readyz, run_playbook, started_at, state_dir, unit,
                          unit_file, unit_props, user_of, user_systemctl, why)

PREFIX = "/opt/agentfleet"
OPENCLAW_VERSION = "2026.9.6"
NODE_VERSION = "24.21.0"


def test_systemd_is_pid1_and_booted(host):
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state in ("running", "degraded"), state
    assert host.process.get(pid=1).comm == "systemd"


@pytest.mark.parametrize("package", ["libpam-systemd", "dbus-user-session"])
def test_user_unit_packages_installed(host, package):
    assert host.package(package).is_installed


def test_service_user_exists_and_is_not_root(host):
    # One user per agent, each in a group of its own; no shared user or group.
    uids = set()
    for name in agent_names():
        user = host.user(user_of(name))
        assert user.exists, name
        assert user.uid != 0, name
        assert user.group == user_of(name) and user.groups == [user_of(name)], (name, user.group, user.groups)
        uids.add(user.uid)
    assert len(uids) == len(agent_names())
    assert not host.user(FLEET_USER).exists
    assert not host.group(FLEET_USER).exists


def test_lingering_enabled(host):
    for name in agent_names():
        assert host.file(f"/var/lib/systemd/linger/{user_of(name)}").exists, name
        out = host.check_output(f"loginctl show-user {user_of(name)} --property=Linger")
        assert out.strip() == "Linger=yes", name


def test_user_manager_runs_without_login(host):
    for name in agent_names():
        uid = host.user(user_of(name)).uid
        assert host.service(f"user@{uid}.service").is_running, name
    # Nobody logged in: the manager is there because of lingering alone.
    assert host.run("loginctl list-sessions --no-legend").stdout.strip() == ""


def test_pinned_node(host):
    out = host.check_output(f"{PREFIX}/node/current/bin/node --version")
    assert out.strip() == f"v{NODE_VERSION}"
    assert host.file(f"{PREFIX}/node/current").linked_to == f"{PREFIX}/node/{NODE_VERSION}"


def test_pinned_openclaw_and_current_link(host):
    assert host.file(f"{PREFIX}/openclaw/current").linked_to == f"{PREFIX}/openclaw/{OPENCLAW_VERSION}"
    for name in agent_names():
        out = host.check_output(f"runuser -u {user_of(name)} -- {PREFIX}/bin/openclaw --version")
        assert OPENCLAW_VERSION in out, name
    assert not host.file(f"{PREFIX}/openclaw/{OPENCLAW_VERSION}.partial").exists


def test_config_schema_exported(host):
    schema = json.loads(host.file(f"{PREFIX}/openclaw/{OPENCLAW_VERSION}/openclaw.schema.json").content_string)
    assert schema["$schema"].startswith("http://json-schema.org/draft-07")
    assert "gateway" in schema["properties"]


@pytest.mark.parametrize("name", agent_names())
def test_agent_unit_active_and_enabled(host, name):
    props = unit_props(host, name)
    assert props["ActiveState"] == "active", props
    assert props["UnitFileState"] == "enabled", props


@pytest.mark.parametrize("name", agent_names())
def test_agent_files_and_modes(host, name):
    home = host.file(home_of(name))
    assert home.mode == 0o700 and home.user == user_of(name)  # no other agent may even list it
    state = host.file(state_dir(name))
    assert state.is_directory and state.mode == 0o700 and state.user == user_of(name)
    assert host.file(f"{state_dir(name)}/workspace").is_directory
    secrets = host.file(f"{state_dir(name)}/gateway.env")
    assert secrets.mode == 0o600 and secrets.user == user_of(name)
    assert "OPENCLAW_GATEWAY_TOKEN=" in secrets.content_string
    assert "ANTHROPIC_API_KEY_2=" in secrets.content_string  # second key: secondary tier
    config = json.loads(host.file(f"{state_dir(name)}/openclaw.json").content_string)
    assert config["meta"]["lastTouchedVersion"] == OPENCLAW_VERSION
    assert config["gateway"]["mode"] == "local"
    assert config["gateway"]["bind"] == "loopback"
    # The token is a reference to the env file, never inline.
    assert config["gateway"]["auth"]["token"] == {"source": "env", "provider": "default", "id": "OPENCLAW_GATEWAY_TOKEN"}
    # The second key is the same model's second tier: an auth profile
    # whose key stays in the env file.
    assert config["auth"]["order"]["anthropic"] == ["anthropic:key-1", "anthropic:key-2"]
    assert "sk-ant" not in host.file(f"{state_dir(name)}/openclaw.json").content_string


@pytest.mark.parametrize("name", agent_names())
def test_unit_file(host, name):
    text = host.file(unit_file(name)).content_string
    assert "Ansible managed" in text.splitlines()[0]
    for line in ("Restart=on-failure", "RestartSec=30", "RestartPreventExitStatus=78", "StartLimitBurst=10",
                 "MemoryHigh=1843M", "MemoryMax=2G", "OOMScoreAdjust=500", "NoNewPrivileges=yes",
                 "WantedBy=default.target", f"--profile {name} gateway --port",
                 f"/openclaw/{OPENCLAW_VERSION}/lib/node_modules/openclaw/openclaw.mjs"):
        assert line in text
    assert "sk-ant" not in text and "TOKEN=" not in text


def mounts_of(host, name, pid):
    """mount point -> (options, file system type) in the mount namespace
    of agent name's process pid; the last mount on a point is the one it
    sees."""
    result = {}
    # As the agent's user: root here lacks CAP_SYS_PTRACE for its process.
    for line in host.check_output(f"runuser -u {user_of(name)} -- cat /proc/{pid}/mountinfo").splitlines():
        fields = line.split()
        result[fields[4]] = (fields[5].split(","), fields[fields.index("-") + 1])
    return result


@pytest.mark.parametrize("name", agent_names())
def test_the_running_gateway_has_the_unit_s_limits(host, name):
    """What the user manager enforces, read from the live process; the
    memory limits as the manager took them (enforcing them needs the memory
    controller delegated to user@.service, i.e. cgroup v2, which this test
    machine's hybrid cgroup setup does not offer)."""
    props = unit_props(host, name)
    status = host.file(f"/proc/{props['MainPID']}/status").content_string
    assert "NoNewPrivs:\t1" in status, name
    assert host.file(f"/proc/{props['MainPID']}/oom_score_adj").content_string.strip() == "500", name
    # Its sandbox: a user namespace of its own, the system read-only, of
    # the homes only its own state directory (tmpfs over /home).
    assert host.file(f"/proc/{props['MainPID']}/uid_map").content_string.split() != ["0", "0", "4294967295"], name
    mounts = mounts_of(host, name, props["MainPID"])
    assert "ro" in mounts["/"][0] and mounts["/home"][1] == "tmpfs", (name, mounts)
    assert "rw" in mounts[state_dir(name)][0] and "/tmp" in mounts, (name, mounts)
    memory = user_systemctl(host, name, "show", "-p", "MemoryHigh,MemoryMax", unit(name)).stdout.split()
    assert memory == [f"MemoryHigh={1843 << 20}", f"MemoryMax={2 << 30}"], (name, memory)


def test_ports_listening_and_ready(host):
    ports = {}
    for name in agent_names():
        config = json.loads(host.file(f"{state_dir(name)}/openclaw.json").content_string)
        ports[name] = config["gateway"]["port"]
    assert len(set(ports.values())) == len(ports)
    for name, port in ports.items():
        assert host.socket(f"tcp://127.0.0.1:{port}").is_listening, name
        assert readyz(host, port).get("ready") is True, name


def test_first_starts_came_in_groups_each_after_the_last_was_ready(host):
    with open(ROOT / "roles/agents/defaults/main.yml", encoding="utf-8") as handle:
        size = yaml.safe_load(handle)["agents_start_batch"]
    names = agent_names()
    assert len(names) > size, "the fleet must be larger than one group for this check"
    entered = {name: started_at(host, name) for name in names}
    groups = [names[i:i + size] for i in range(0, len(names), size)]
    for earlier, later in zip(groups, groups[1:]):
        # A gateway needs seconds to answer /readyz; one systemctl start of
        # every unit would put all of them within a fraction of a second.
        gap = min(entered[n] for n in later) - max(entered[n] for n in earlier)
        assert gap > 1_000_000, f"{later} entered active {gap} us after {earlier}: {entered}"


def test_watchdog_scheduled_by_default_as_root_and_sees_a_healthy_fleet(host):
    cron_d = host.file("/etc/cron.d/agentfleet-watchdog").content_string
    assert "*/15 * * * * root /opt/agentfleet/bin/agentfleet-watchdog --trigger cron" in cron_d
    for name in agent_names():
        assert "agentfleet" not in host.run(f"crontab -l -u {user_of(name)}").stdout, name
    assert host.service("cron").is_running
    run = host.run("/opt/agentfleet/bin/agentfleet-watchdog")
    assert run.rc == 0, run.stderr
    assert f"{len(agent_names())} healthy, 0 incident(s)" in run.stdout
    watched = json.loads(host.file("/etc/agentfleet/watchdog.json").content_string)["agents"]
    assert sorted(agent["name"] for agent in watched) == sorted(agent_names())
    for secret in ("/etc/agentfleet/watchdog-secrets.json", "/etc/agentfleet/oversight-secrets.json"):
        secrets = host.file(secret)
        assert secrets.mode == 0o600 and secrets.user == "root" and secrets.group == "root", secret
    for state in ("/var/lib/agentfleet/watchdog", "/var/lib/agentfleet/config"):
        assert host.file(state).user == "root" and not host.file(state).mode & 0o007, state


def test_status_playbook_shows_every_agents_gateway(host):
    """playbooks/status.yml, what `make demo` ends with, reads each agent's
    own user manager."""
    result = run_playbook(playbook="status.yml")
    assert result.returncode == 0, why(result)
    assert "agent users not lingering: none" in result.stdout
    for name in agent_names():
        assert f"{unit(name)} loaded active running" in result.stdout, name
