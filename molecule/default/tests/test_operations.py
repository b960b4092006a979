"""Behaviour of the running fleet: agents removed, crash recovery,
targeted restarts, secrets kept out of output, drift put back. Runs after
test_default.py; the tests in this file depend on their order.

The first test removes half of the default fleet; the others work on the
three agents left. An idle gateway keeps costing CPU every minute
(README, "Time budget"), and none of these tests needs six. Each run
passes the fleet as last deployed (`deployed`), so no run puts a removed
agent back or undoes an earlier test's change (each undo would restart
a gateway). The reboot test is in the hostile scenario (two gateways,
not six)."""

import json
import re
import shlex

from fleet_checks import (agent_names, all_ready, fleet_agents, home_of, main_pids, ports, readyz, run_playbook, state_dir,
                          task_results, unit_file, unit_props, user_of, wait_until, why)

# The last three: a port follows its agent's place in fleet_agents.
REMOVED = ["researcher", "reviewer", "qa"]
KEPT = [name for name in agent_names() if name not in REMOVED]
# fleet_agents as the last run of these tests deployed it.
deployed = [agent for agent in fleet_agents() if agent["name"] in KEPT]


def run_deployed(*extra, **options):
    return run_playbook(*extra, "-e", json.dumps({"fleet_agents": deployed}), **options)


def test_unclaimed_units_are_reported_and_absent_agents_removed(host):
    assert wait_until(lambda: all_ready(host), timeout=300)
    before = main_pids(host)
    result = run_deployed("--tags", "agents")
    assert result.returncode == 0, why(result)
    for name in REMOVED:
        assert f"openclaw-gateway-{name}.service is not claimed by any fleet_agents entry" in result.stdout
        assert unit_props(host, name)["ActiveState"] == "active"  # reported, not touched

    # The whole play, as an operator removes agents: every role drops them.
    removed = deployed + [{"name": name, "state": "absent", "purge": True} for name in REMOVED]
    result = run_playbook("-e", json.dumps({"fleet_agents": removed}))
    assert result.returncode == 0, why(result)
    for name in REMOVED:
        # purge: its user goes with its whole home, and no process of it is left.
        assert not host.user(user_of(name)).exists
        assert not host.file(home_of(name)).exists
        assert not host.file(f"/var/lib/systemd/linger/{user_of(name)}").exists
        assert not host.file(f"/proc/{before[name]}").exists
        assert not host.file(unit_file(name)).exists
        assert not host.file(state_dir(name)).exists
    assert main_pids(host, KEPT) == {name: before[name] for name in KEPT}


def test_killed_agent_is_back_within_45s_and_others_untouched(host):
    before = main_pids(host, KEPT)
    victim = "coder"
    host.run(f"kill -9 {before[victim]}")

    def back():
        props = unit_props(host, victim)
        return props["ActiveState"] == "active" and props["MainPID"] not in ("0", before[victim])

    assert wait_until(back, timeout=45, interval=1), unit_props(host, victim)
    after = main_pids(host, KEPT)
    assert {n: p for n, p in after.items() if n != victim} == {n: p for n, p in before.items() if n != victim}
    assert wait_until(lambda: readyz(host, ports(host, KEPT)[victim]).get("ready") is True, timeout=120)


def test_model_edit_and_key_rotation_restart_only_that_agent_and_no_secret_shows_in_vvv(host):
    """One -vvv run of the whole play edits the deployer's model and
    rotates its second key: both land in one restart of that agent alone,
    its new config becomes its last good one, nothing else changes, and
    no secret value of any agent appears in the verbose output (the run
    did write one). -vvv prints the default callback's output, so the
    checks read the host and the recap, not module results."""
    assert wait_until(lambda: all_ready(host, KEPT), timeout=120)
    before = main_pids(host, KEPT)
    files = {name: host.file(f"{state_dir(name)}/openclaw.json").content_string for name in KEPT}
    new_key = "sk-ant-rotated-secondary-key-1111111111111"
    deployer = deployed[KEPT.index("deployer")]
    deployer["model"]["primary"] = "anthropic/claude-opus-4-5"
    deployer["credentials"] = {"anthropic": ["sk-ant-local-test-primary-0000000000000000", new_key]}
    result = run_deployed(verbosity=3)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]

    after = main_pids(host, KEPT)
    assert after["deployer"] != before["deployer"]
    assert {n: p for n, p in after.items() if n != "deployer"} == {n: p for n, p in before.items() if n != "deployer"}
    config = host.file(f"{state_dir('deployer')}/openclaw.json").content_string
    assert json.loads(config)["agents"]["defaults"]["model"]["primary"] == "anthropic/claude-opus-4-5"
    assert host.file("/var/lib/agentfleet/config/deployer/openclaw.json.last-good").content_string == config
    assert {n: host.file(f"{state_dir(n)}/openclaw.json").content_string for n in KEPT if n != "deployer"} == {
        n: c for n, c in files.items() if n != "deployer"}
    # The file write, the one restart, and the deployer's verified last good config.
    recap = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout.split("PLAY RECAP")[-1])
    assert re.findall(r"\bchanged=(\d+)", recap) == ["3"], recap

    assert new_key in host.file(f"{state_dir('deployer')}/gateway.env").content_string
    secrets = {new_key, "sk-ant-local-test-primary-0000000000000000", "sk-ant-local-test-secondary-000000000000000"}
    for name in KEPT:
        env = host.file(f"{state_dir(name)}/gateway.env").content_string
        secrets.update(line.split("=", 1)[1].strip('"') for line in env.splitlines() if line.startswith("OPENCLAW_GATEWAY_TOKEN="))
    assert len(secrets) == 3 + len(KEPT)
    leaked = sorted(s for s in secrets if s in output)
    assert not leaked, f"{len(leaked)} secret value(s) appear in the -vvv output"


def test_root_files_that_drifted_are_put_back_and_in_place_cost_no_call(host):
    """The audit's and the watchdog's files: the runtime's read has their
    checksums, keyed by a secret of the run, so a re-run sends them only
    when one differs (content or mode)."""
    installs = ("Install the audit code, the agentfleet-audit command, its config, secrets and units",
                "Install the watchdog code, the agentfleet-watchdog command, its config, secrets and schedule")
    read_task = "Read the system, the agent users, the installed runtime and packages"
    secrets = ["/etc/agentfleet/watchdog-secrets.json", "/etc/agentfleet/oversight-secrets.json"]
    code = "/opt/agentfleet/oversight/lib/ansible_collections/agentfleet/vps/plugins/module_utils/host_programs/audit.py"
    kept = {path: (host.file(path).content_string, host.file(path).mode) for path in secrets + [code]}
    host.run_test(f"echo ' ' >> {secrets[0]} && chmod 0644 {secrets[1]} && echo '# drift' >> {code}")
    fixed = run_deployed("--tags", "oversight,watchdog")
    # Put back by hand should the play fail: the tests after this one need them.
    for path, (content, mode) in kept.items():
        if fixed.returncode != 0:
            host.run(f"printf %s {shlex.quote(content)} > {path} && chmod {mode:o} {path}")
    assert fixed.returncode == 0, why(fixed)
    assert [task_results(fixed.stdout, name).get("changed") for name in installs] == [True, True]
    assert {path: (host.file(path).content_string, host.file(path).mode) for path in kept} == kept
    again = run_deployed("--tags", "oversight,watchdog")
    assert again.returncode == 0, why(again)
    assert [task_results(again.stdout, name).get("skipped") for name in installs] == [True, True]
    assert sum(s["changed"] for s in json.loads(again.stdout)["stats"].values()) == 0
    # Keyed by a fresh secret each run: the read shows neither the secrets
    # files' sha256 nor the same value twice.
    plain = {path: host.run_test(f"sha256sum {path}").stdout.split()[0] for path in secrets}
    reads = [task_results(out.stdout, read_task)["paths"] for out in (fixed, again)]
    for path in secrets:
        assert plain[path] not in fixed.stdout + again.stdout
        assert None not in (reads[0][path]["sha256"], reads[1][path]["sha256"])
        assert reads[0][path]["sha256"] != reads[1][path]["sha256"]


def test_readiness_and_auth_profiles_cost_no_call_until_the_read_finds_them_off(host):
    """The runtime's read probes each gateway and reads each auth store and
    last good config: a re-run that finds all of it in place skips both
    tasks, and anything off brings back the call that puts it right."""
    ready_task = "Wait until every gateway answers /readyz"
    auth_task = "Store each agent's keys as auth profiles that reference its env file"
    assert wait_until(lambda: all_ready(host, KEPT), timeout=120)
    quiet = run_deployed("--tags", "agents")
    assert quiet.returncode == 0, why(quiet)
    assert [task_results(quiet.stdout, name).get("skipped") for name in (ready_task, auth_task)] == [True, True]
    # The fleet table's READY column then comes from the read.
    table = task_results(quiet.stdout, "Show the fleet")["msg"]
    assert [line.split()[-1] for line in table[1:1 + len(KEPT)]] == ["yes"] * len(KEPT), table

    # The coder's last good config drifts in root's store; the deployer
    # empties its own auth store (it owns that file).
    last_good = "/var/lib/agentfleet/config/coder/openclaw.json.last-good"
    host.run_test(f"echo ' ' >> {last_good}")
    store = f"{state_dir('deployer')}/agents/main/agent/openclaw-agent.sqlite"
    host.run_test(f"runuser -u {user_of('deployer')} -- python3 -c "
                  f"\"import sqlite3; c = sqlite3.connect('{store}'); c.execute('DELETE FROM auth_profile_store'); c.commit()\"")
    fixed = run_deployed("--tags", "agents")
    assert fixed.returncode == 0, why(fixed)
    assert task_results(fixed.stdout, ready_task)["last_good_moved"] == ["coder"]
    assert task_results(fixed.stdout, auth_task)["changed_agents"] == ["deployer"]
    assert host.file(last_good).content_string == host.file(f"{state_dir('coder')}/openclaw.json").content_string

    again = run_deployed("--tags", "agents")
    assert again.returncode == 0, why(again)
    assert [task_results(again.stdout, name).get("skipped") for name in (ready_task, auth_task)] == [True, True]
    assert sum(s["changed"] for s in json.loads(again.stdout)["stats"].values()) == 0
