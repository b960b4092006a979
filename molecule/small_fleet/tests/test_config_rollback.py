"""config_change against a real gateway (the coder agent), through
playbooks/config_change.yml and playbooks/rollback.yml. The tests depend
on their order: each starts from the state the previous one left."""

import json
import time

import pytest
from fleet_checks import as_user, readyz, run_playbook, state_dir, task_results, unit_props, wait_until, why

AGENT = "coder"
STATE = state_dir(AGENT)
CONFIG = f"{STATE}/openclaw.json"
LAST_GOOD = "/var/lib/agentfleet/config/coder/openclaw.json.last-good"
CHANGE_LOG = "/var/lib/agentfleet/config/coder/changes.jsonl"
CHANGE_TASK = "Change the config, have the gateway apply it and verify it (rolled back by itself on failure)"
# Passes OpenClaw's schema and `config validate`, but the gateway cannot
# bind an address the host does not have, so it never becomes ready.
UNBINDABLE = {"gateway": {"bind": "custom", "customBindHost": "203.0.113.7"}}
# Shared between the ordered tests.
SEEN = {}


def config_bytes(host):
    return host.file(CONFIG).content


def port(host):
    return json.loads(config_bytes(host))["gateway"]["port"]


def ready(host):
    return readyz(host, port(host)).get("ready") is True


def up_since(host, moment):
    """The gateway's server started after moment (time.monotonic() here):
    its uptime is shorter than the time since."""
    return readyz(host, port(host)).get("uptimeMs", float("inf")) / 1000 < time.monotonic() - moment


def change(merge, timeout=40):
    proc = run_playbook("-e", f"agent={AGENT}", "-e", json.dumps({"merge": merge}), "-e", f"timeout={timeout}",
                        playbook="config_change.yml")
    return proc, task_results(proc.stdout, CHANGE_TASK)


def restore(*extra):
    proc = run_playbook("-e", f"agent={AGENT}", "-e", "timeout=60", *extra, playbook="rollback.yml")
    return proc, task_results(proc.stdout, CHANGE_TASK)


def change_log(host):
    return [json.loads(line) for line in host.file(CHANGE_LOG).content_string.splitlines()]


def test_converge_left_a_verified_last_good(host):
    assert ready(host)
    assert host.file(LAST_GOOD).content == config_bytes(host)
    assert [entry["result"] for entry in change_log(host)] == ["applied"]
    SEEN["deployed"] = config_bytes(host)


def test_a_schema_breaking_change_is_rejected_and_touches_nothing(host):
    before, pid = config_bytes(host), unit_props(host, AGENT)["MainPID"]
    proc, result = change({"gateway": {"bind": 42, "bogus": True}})
    assert proc.returncode != 0
    assert result["result"] == "rejected" and result["changed"] is False
    paths = {(e["path"], e["source"]) for e in result["errors"]}
    assert ("$.gateway.bind", "schema") in paths and ("$.gateway", "schema") in paths
    assert ("$.gateway.bind", "command") in paths  # openclaw config validate said so too
    assert config_bytes(host) == before
    assert unit_props(host, AGENT)["MainPID"] == pid
    assert ready(host)


def test_a_port_change_is_refused_before_the_module_runs(host):
    before, lines = config_bytes(host), len(change_log(host))
    proc = run_playbook("-e", f"agent={AGENT}", "-e", json.dumps({"merge": {"gateway": {"port": 20000}}}),
                        playbook="config_change.yml")
    assert proc.returncode != 0
    assert "starts with --port from the fleet plan" in proc.stdout
    assert config_bytes(host) == before and len(change_log(host)) == lines


def test_b_a_change_that_keeps_the_gateway_down_is_rolled_back(host):
    before = config_bytes(host)
    proc, result = change(UNBINDABLE)
    assert proc.returncode != 0
    assert result["result"] == "rolled_back" and result["rolled_back"] is True and result["recovered"] is True
    assert "was rolled back" in result["msg"] and f"127.0.0.1:{port(host)}/readyz" in result["msg"]
    # As soon as the gateway gave up on the port, not after the probe budget.
    assert "/auto-restart (result exit-code, exit status 1); last probe:" in result["msg"]
    assert config_bytes(host) == before
    assert host.file(LAST_GOOD).content == before
    assert ready(host)


def test_c_a_good_change_is_applied_and_becomes_last_good(host):
    before, pid = config_bytes(host), unit_props(host, AGENT)["MainPID"]
    proc, result = change({"agents": {"defaults": {"model": {"primary": "anthropic/claude-opus-4-5"}}}}, timeout=120)
    assert proc.returncode == 0, why(proc)
    assert result["result"] == "applied" and result["changed"] is True
    # The gateway applied it itself: its verdict, and the same process.
    assert result["applied_by"] == "hot-reload"
    assert result["reload"] == "config hot reload applied (agents.defaults.model.primary)"
    assert unit_props(host, AGENT)["MainPID"] == pid
    assert json.loads(config_bytes(host))["agents"]["defaults"]["model"]["primary"] == "anthropic/claude-opus-4-5"
    assert host.file(LAST_GOOD).content == config_bytes(host)
    assert host.file(result["backup"]).content == before
    assert ready(host)
    SEEN["backup_before_c"] = result["backup"]


def test_d_restore_goes_back_to_the_previous_good_version(host):
    backup = SEEN["backup_before_c"]
    proc, result = restore("-e", "backup=" + backup.rsplit("/", 1)[-1])
    assert proc.returncode == 0, why(proc)
    assert result["result"] == "restored"
    assert config_bytes(host) == host.file(backup).content == SEEN["deployed"]
    assert host.file(LAST_GOOD).content == config_bytes(host)
    assert ready(host)


def test_restore_puts_last_good_back_over_a_hand_edit(host):
    # The agent edits its own config, a key the gateway must restart for:
    # it restarts in place and stays up (it used to exit 0, which
    # Restart=on-failure left down).
    pid = unit_props(host, AGENT)["MainPID"]
    edited = json.loads(config_bytes(host))
    edited["agents"]["defaults"]["model"]["primary"] = "anthropic/claude-haiku-4-5"
    edited["gateway"].setdefault("controlUi", {})["basePath"] = "/edited"
    edited_at = time.monotonic()
    assert as_user(host, AGENT, f"printf '%s' '{json.dumps(edited)}' > {CONFIG}").rc == 0
    assert config_bytes(host) != host.file(LAST_GOOD).content
    # A new server (up for less time than since the edit), ready, in the
    # same process.
    assert wait_until(lambda: ready(host) and up_since(host, edited_at), timeout=90)
    assert unit_props(host, AGENT)["MainPID"] == pid and unit_props(host, AGENT)["ActiveState"] == "active"
    restored_at = time.monotonic()
    proc, result = restore()
    assert proc.returncode == 0, why(proc)
    assert result["result"] == "restored"
    # Dropping basePath needs a restart: the gateway says so and restarts
    # itself in place; the play waits for that restart, not for one of its own.
    assert result["applied_by"] == "gateway-restart", result
    assert result["reload"].startswith("config change requires gateway restart (gateway.controlUi.basePath)")
    assert unit_props(host, AGENT)["MainPID"] == pid
    assert up_since(host, restored_at)
    assert config_bytes(host) == host.file(LAST_GOOD).content == SEEN["deployed"]
    assert ready(host)


def test_e_the_change_log_has_one_line_per_attempt(host):
    entries = change_log(host)
    assert [e["result"] for e in entries] == ["applied", "rejected", "rolled_back", "applied", "restored", "restored"]
    assert all(e["file"] == CONFIG and e["time"] and e["user"] for e in entries)
    rejected, rolled_back, applied = entries[1], entries[2], entries[3]
    assert rejected["checksum_before"] == rejected["checksum_after"] and rejected["errors"]
    assert rolled_back["checksum_before"] == rolled_back["checksum_after"] and rolled_back["error"]
    assert applied["checksum_before"] != applied["checksum_after"] and applied["backup"]


@pytest.fixture
def broken_inventory_config(host):
    """site.yml with the unbindable gateway in the coder's inventory config."""
    from fleet_checks import fleet_agents
    agents = fleet_agents()
    for agent in agents:
        if agent["name"] == AGENT:
            agent["config"] = UNBINDABLE
    return json.dumps({"fleet_agents": agents, "agents_ready_timeout": 40})


def test_the_agents_role_rolls_back_its_own_bad_write(host, broken_inventory_config):
    proc = run_playbook("--tags", "agents", "-e", broken_inventory_config)
    assert proc.returncode != 0
    result = task_results(proc.stdout, "Wait until every gateway answers /readyz")
    assert result["rolled_back"][AGENT]["recovered"] is True
    assert "Rolled back to its last good config" in result["msg"]
    # Started again at once when it first exited (not after RestartSec);
    # when it exits again before the timeout, the wait ends there.
    assert "(its gateway had exited and was started again 1 time(s))" in result["msg"]
    assert config_bytes(host) == SEEN["deployed"]
    assert wait_until(lambda: ready(host), timeout=60)
    assert [e["result"] for e in change_log(host)][-2:] == ["applied", "rolled_back"]


def test_a_normal_run_afterwards_changes_nothing(host):
    proc = run_playbook()
    assert proc.returncode == 0, why(proc)
    report = json.loads(proc.stdout)
    assert all(stats["changed"] == 0 for stats in report["stats"].values()), report["stats"]
