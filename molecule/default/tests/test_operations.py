"""Behaviour of the running fleet: crash recovery, targeted restarts,
secrets kept out of output, drift put back, agents removed. Runs after
test_default.py; the tests in this file depend on their order. The
reboot test is in the hostile scenario (two gateways, not six)."""

import json
import shlex

from fleet_checks import (agent_names, all_ready, fleet_agents, home_of, main_pids, ports, readyz, run_playbook, state_dir,
                          task_results, unit_file, unit_props, user_of, wait_until, why)


def test_killed_agent_is_back_within_45s_and_others_untouched(host):
    before = main_pids(host)
    victim = "coder"
    host.run(f"kill -9 {before[victim]}")

    def back():
        props = unit_props(host, victim)
        return props["ActiveState"] == "active" and props["MainPID"] not in ("0", before[victim])

    assert wait_until(back, timeout=45, interval=1), unit_props(host, victim)
    after = main_pids(host)
    assert {n: p for n, p in after.items() if n != victim} == {n: p for n, p in before.items() if n != victim}
    assert wait_until(lambda: readyz(host, ports(host)[victim]).get("ready") is True, timeout=120)


def test_model_edit_restarts_only_that_agent(host):
    assert wait_until(lambda: all_ready(host), timeout=120)
    before = main_pids(host)
    agents = fleet_agents()
    for agent in agents:
        if agent["name"] == "reviewer":
            agent["model"]["primary"] = "anthropic/claude-opus-4-5"
    # The agents role alone (every role's checks still run): the other
    # roles have nothing to do with a model edit.
    result = run_playbook("--tags", "agents", "-e", json.dumps({"fleet_agents": agents}))
    assert result.returncode == 0, why(result)

    written = task_results(result.stdout, "Write every agent's files, validating each changed openclaw.json first")
    assert written["changed_agents"] == ["reviewer"]
    assert written["changed_paths"] == [f"{state_dir('reviewer')}/openclaw.json"]
    restarted = task_results(result.stdout, "Restart changed agents")
    assert restarted["restarted"] == ["openclaw-gateway-reviewer.service"]

    after = main_pids(host)
    assert after["reviewer"] != before["reviewer"]
    assert {n: p for n, p in after.items() if n != "reviewer"} == {n: p for n, p in before.items() if n != "reviewer"}
    config = json.loads(host.file(f"{state_dir('reviewer')}/openclaw.json").content_string)
    assert config["agents"]["defaults"]["model"]["primary"] == "anthropic/claude-opus-4-5"
    ready = task_results(result.stdout, "Wait until every gateway answers /readyz")
    assert ready["last_good_moved"] == ["reviewer"]
    stats = json.loads(result.stdout)["stats"]
    # The file write, the one restart, and the reviewer's verified last good config.
    assert sum(s["changed"] for s in stats.values()) == 3

    # Back to the inventory as committed, for the tests that follow.
    result = run_playbook("--tags", "agents")
    assert result.returncode == 0, why(result)


def test_secrets_never_in_verbose_output(host):
    assert wait_until(lambda: all_ready(host), timeout=120)
    agents = fleet_agents()
    new_key = "sk-ant-rotated-secondary-key-1111111111111"
    for agent in agents:
        if agent["name"] == "qa":
            agent["credentials"] = {"anthropic": ["sk-ant-local-test-primary-0000000000000000", new_key]}
    result = run_playbook("-e", json.dumps({"fleet_agents": agents}), verbosity=3)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    # The run did write the secret: the check below covers a real write.
    assert new_key in host.file(f"{state_dir('qa')}/gateway.env").content_string
    secrets = {new_key, "sk-ant-local-test-primary-0000000000000000", "sk-ant-local-test-secondary-000000000000000"}
    for name in agent_names():
        env = host.file(f"{state_dir(name)}/gateway.env").content_string
        secrets.update(line.split("=", 1)[1].strip('"') for line in env.splitlines() if line.startswith("OPENCLAW_GATEWAY_TOKEN="))
    assert len(secrets) == 3 + len(agent_names())
    leaked = sorted(s for s in secrets if s in output)
    assert not leaked, f"{len(leaked)} secret value(s) appear in the -vvv output"
    result = run_playbook("--tags", "agents")
    assert result.returncode == 0, why(result)


def test_root_files_that_drifted_are_put_back_and_in_place_cost_no_call(host):
    """The audit's and the watchdog's files: the runtime's read has their
    checksums, keyed by a secret of the run, so a re-run sends them only
    when one differs (content or mode)."""
    installs = ("Install the audit code, the agentfleet-audit command, its config, secrets and units",
                "Install the watchdog code, the agentfleet-watchdog command, its config, secrets and schedule")
    read_task = "Read the system, the agent users, the installed runtime and packages"
    secrets = ["/etc/agentfleet/watchdog-secrets.json", "/etc/agentfleet/oversight-secrets.json"]
    code = "/opt/agentfleet/oversight/lib/ansible_collections/agentfleet/vps/plugins/module_utils/audit.py"
    kept = {path: (host.file(path).content_string, host.file(path).mode) for path in secrets + [code]}
    host.run_test(f"echo ' ' >> {secrets[0]} && chmod 0644 {secrets[1]} && echo '# drift' >> {code}")
    fixed = run_playbook("--tags", "oversight,watchdog")
    # Put back by hand should the play fail: the tests after this one need them.
    for path, (content, mode) in kept.items():
        if fixed.returncode != 0:
            host.run(f"printf %s {shlex.quote(content)} > {path} && chmod {mode:o} {path}")
    assert fixed.returncode == 0, why(fixed)
    assert [task_results(fixed.stdout, name).get("changed") for name in installs] == [True, True]
    assert {path: (host.file(path).content_string, host.file(path).mode) for path in kept} == kept
    again = run_playbook("--tags", "oversight,watchdog")
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
    assert wait_until(lambda: all_ready(host), timeout=120)
    quiet = run_playbook("--tags", "agents")
    assert quiet.returncode == 0, why(quiet)
    assert [task_results(quiet.stdout, name).get("skipped") for name in (ready_task, auth_task)] == [True, True]
    # The fleet table's READY column then comes from the read.
    table = task_results(quiet.stdout, "Show the fleet")["msg"]
    assert [line.split()[-1] for line in table[1:1 + len(agent_names())]] == ["yes"] * len(agent_names()), table

    # The coder's last good config drifts in root's store; the qa agent
    # empties its own auth store (it owns that file).
    last_good = "/var/lib/agentfleet/config/coder/openclaw.json.last-good"
    host.run_test(f"echo ' ' >> {last_good}")
    store = f"{state_dir('qa')}/agents/main/agent/openclaw-agent.sqlite"
    host.run_test(f"runuser -u {user_of('qa')} -- python3 -c "
                  f"\"import sqlite3; c = sqlite3.connect('{store}'); c.execute('DELETE FROM auth_profile_store'); c.commit()\"")
    fixed = run_playbook("--tags", "agents")
    assert fixed.returncode == 0, why(fixed)
    assert task_results(fixed.stdout, ready_task)["last_good_moved"] == ["coder"]
    assert task_results(fixed.stdout, auth_task)["changed_agents"] == ["qa"]
    assert host.file(last_good).content_string == host.file(f"{state_dir('coder')}/openclaw.json").content_string

    again = run_playbook("--tags", "agents")
    assert again.returncode == 0, why(again)
    assert [task_results(again.stdout, name).get("skipped") for name in (ready_task, auth_task)] == [True, True]
    assert sum(s["changed"] for s in json.loads(again.stdout)["stats"].values()) == 0


def test_unclaimed_units_are_reported_and_absent_agents_removed(host):
    assert wait_until(lambda: all_ready(host), timeout=300)
    before = main_pids(host)
    without_qa = [a for a in fleet_agents() if a["name"] != "qa"]
    result = run_playbook("--tags", "agents", "-e", json.dumps({"fleet_agents": without_qa}))
    assert result.returncode == 0, why(result)
    assert "openclaw-gateway-qa.service is not claimed by any fleet_agents entry" in result.stdout
    assert unit_props(host, "qa")["ActiveState"] == "active"  # reported, not touched

    removed = without_qa + [{"name": "qa", "state": "absent", "purge": True}]
    result = run_playbook("--tags", "agents", "-e", json.dumps({"fleet_agents": removed}))
    assert result.returncode == 0, why(result)
    # purge: its user goes with its whole home, and no process of it is left.
    assert not host.user(user_of("qa")).exists
    assert not host.file(home_of("qa")).exists
    assert not host.file(f"/var/lib/systemd/linger/{user_of('qa')}").exists
    assert not host.file(f"/proc/{before['qa']}").exists
    assert not host.file(unit_file("qa")).exists
    assert not host.file(state_dir("qa")).exists
    others = [n for n in agent_names() if n != "qa"]
    assert main_pids(host, others) == {n: p for n, p in before.items() if n != "qa"}
