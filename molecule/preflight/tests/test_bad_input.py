"""Every bad inventory fails before anything on the host changes.

The instance is fresh (no converge): the agents' users, /opt/agentfleet and
the package lists do not exist or are untouched. After the failing runs,
nothing under the watched trees may be newer than a marker written before
them, and the host must still have no user of any agent.

The cases only read the host, so they run side by side (a few at a time)
once, before the first test; each test then checks its own run. The case
with a listener of another program runs alone: its port would be seen by
every other case's port check.
"""

import copy
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
MARKER = "/tmp/preflight-marker"
WATCHED = "/etc /opt /home /usr /var/lib /var/spool /srv"


def default_agents():
    with open(ROOT / "inventories/local/group_vars/fleet.yml", encoding="utf-8") as handle:
        return yaml.safe_load(handle)["fleet_agents"]


def run_site(extra_vars=None, options=()):
    """site.yml against this scenario's instance, run on the controller."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    argv = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(ROOT / "playbooks/site.yml"), *options]
    if extra_vars:
        argv += ["-e", json.dumps(extra_vars)]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)


def fleet_users(host):
    """Users the fleet would own: an agent's (openclaw-NAME), or the
    shared one of earlier releases (openclaw)."""
    names = [line.split(":", 1)[0] for line in host.check_output("getent passwd").splitlines()]
    return [name for name in names if name == "openclaw" or name.startswith("openclaw-")]


def changed_since_marker(host):
    found = host.run(f"find {WATCHED} -xdev -newer {MARKER} -print")
    assert found.rc == 0, found.stderr
    return found.stdout.split()


def with_agent(agent_name, **changes):
    agents = default_agents()
    for agent in agents:
        if agent["name"] == agent_name:
            agent.update(changes)
    return agents


def twenty_apart():
    agents = default_agents()
    for index, agent in enumerate(agents):
        agent["port"] = 48520 + 20 * index
    return agents


def duplicate():
    agents = default_agents()
    agents.append(copy.deepcopy(agents[1]))
    return agents


CASES = {
    "duplicate-name": ({"fleet_agents": duplicate()},
                       ["the name 'coder' is used by more than one agent"]),
    "invalid-profile-name": ({"fleet_agents": with_agent("coder", name="Coder_1")},
                             ["'Coder_1' is not a valid OpenClaw profile name"]),
    "ports-20-apart": ({"fleet_agents": twenty_apart()},
                       ["port clash", "agent 'coordinator' uses ports 48520-48630", "agent 'coder' uses ports 48540-48650"]),
    "port-used-on-host": ({"fleet_agents": default_agents()},
                          ["port clash", "agent 'coder' needs ports 19000-19110 but port 19050 is already in use"]),
    "missing-provider-key": ({"fleet_agents": with_agent("coder", model={"primary": "anthropic/claude-sonnet-4-5",
                                                                         "fallbacks": ["xai/grok-4"]})},
                             ["agent 'coder'", "'xai/grok-4' needs a key for provider 'xai'"]),
    "unsupported-node": ({"fleet_node_version": "22.12.0"},
                         ["fleet_node_version=22.12.0 is not supported", "24.16.0"]),
    "unknown-role": ({"fleet_agents": with_agent("coder", role="boss")},
                     ["role", "coordinator, specialist", "boss"]),
    "audit-interval-too-short": ({"oversight_interval": "30s"},
                                 ["oversight_interval=30s is not allowed", "at least 60 seconds"]),
    "audit-repository-of-unknown-agent": ({"oversight_repositories": {"ghost": [{"path": "/srv/app"}]},
                                           "oversight_ci_command": "true"},
                                          ["oversight_repositories names agents ghost", "present: coordinator, coder"]),
    "start-batch-zero": ({"agents_start_batch": 0},
                         ["agents_start_batch=0 must be 1 or more"]),
    "watchdog-interval-out-of-range": ({"watchdog_interval": 90},
                                       ["watchdog_interval=90 (whole minutes, 1 to 60)"]),
    "watchdog-llm-without-model": ({"watchdog_llm_url": "http://127.0.0.1:9/v1"},
                                   ["watchdog_llm_url=http://127.0.0.1:9/v1 needs", "watchdog_llm_model"]),
    "webhook-not-http": ({"oversight_webhook_url": "file:///etc/shadow"},
                         ["oversight_webhook_url must be an http(s) URL"]),
}


ALONE = "port-used-on-host"


@pytest.fixture(scope="module", autouse=True)
def fresh_host(host):
    assert fleet_users(host) == [], "the preflight scenario needs a host that was never converged"
    assert not host.file("/opt/agentfleet").exists


@pytest.fixture(scope="module")
def side_by_side(host):
    """The runs of every case but ALONE, and what changed on the host
    while they ran."""
    names = [name for name in sorted(CASES) if name != ALONE]
    host.run(f"touch {MARKER}; sleep 1")
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(names, pool.map(lambda name: run_site(CASES[name][0]), names)))
    return results, changed_since_marker(host)


def run_alone(host, extra_vars):
    # Something that is not ours listens inside coder's range.
    listener = host.run("setsid python3 -m http.server 19050 --bind 127.0.0.1 >/dev/null 2>&1 & "
                        "for i in $(seq 50); do ss -Htln | grep -q ':19050 ' && exit 0; sleep 0.1; done; exit 1")
    assert listener.rc == 0
    host.run(f"touch {MARKER}; sleep 1")
    try:
        result = run_site(extra_vars)
    finally:
        host.run("pkill -f 'http.server 19050'")
    return result, changed_since_marker(host)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_before_the_host_changes(host, side_by_side, case):
    extra_vars, expected = CASES[case]
    if case == ALONE:
        result, changed = run_alone(host, extra_vars)
    else:
        result, changed = side_by_side[0][case], side_by_side[1]
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    for text in expected:
        assert text in output, f"{text!r} not in:\n{output[-3000:]}"
    assert changed == []
    assert fleet_users(host) == []
    assert not host.file("/opt/agentfleet").exists


def test_change_detection_sees_a_real_change(host):
    """Control for the check above: a write under a watched tree is found."""
    host.run(f"touch {MARKER}; sleep 1; touch /etc/agentfleet-probe")
    try:
        assert "/etc/agentfleet-probe" in changed_since_marker(host)
    finally:
        host.run("rm -f /etc/agentfleet-probe")
