"""The watchdog against real gateways: a stopped agent, a config the
gateway rejects, a proposed script refused while a second run finds the
lock held, the breaker, an allowed script, and cron with the LLM down.
The tests depend on their order; each leaves every agent ready, except
the breaker's, whose re-armed agent the next test heals (one gateway
start fewer: each costs seconds of CPU, README "Time budget")."""

import json
import shlex

import pytest

from fleet_checks import (FakeEndpoint, home_of, readyz, run_playbook, state_dir, unit_props, user_of, user_systemctl,
                          wait_until, why)

STATE = "/var/lib/agentfleet/watchdog"
STORE = "/var/lib/agentfleet/config"
INCIDENTS = f"{STATE}/incidents.jsonl"
ALERTS = f"{state_dir('coordinator')}/workspace/ALERTS.md"
COMMAND = "/opt/agentfleet/bin/agentfleet-watchdog"
RESTART = json.dumps({"diagnosis": "The gateway process is not running; a restart should bring it back.",
                      "action": "restart"})
SCRIPT_MARK = f"{state_dir('coder')}/GENERATED-SCRIPT-RAN"
SCRIPT = json.dumps({"diagnosis": "Stale state; clean it with a script.", "action": "run_script",
                     "script": f"touch {SCRIPT_MARK}\nrm -f {state_dir('coder')}/openclaw.json\n"})


@pytest.fixture(scope="module")
def llm(host):
    """The LLM endpoint and webhook stand-in, started for these tests and
    stopped after them."""
    fake = FakeEndpoint(host, 18998).start(RESTART)
    yield fake
    fake.stop()


def watchdog(host):
    """One watchdog run as root, as cron runs it."""
    result = host.run(COMMAND)
    assert result.rc == 0, result.stdout + result.stderr
    return result.stdout


def incidents(host):
    return [json.loads(line) for line in host.file(INCIDENTS).content_string.splitlines()] \
        if host.file(INCIDENTS).exists else []


def stop(host, agent):
    assert user_systemctl(host, agent, "stop", f"openclaw-gateway-{agent}.service").rc == 0
    assert unit_props(host, agent)["ActiveState"] == "inactive"


def ports(host):
    config = json.loads(host.file("/etc/agentfleet/watchdog.json").content_string)
    return {agent["name"]: agent["port"] for agent in config["agents"]}


def ready(host, agent):
    return readyz(host, ports(host)[agent]).get("ready") is True


def alert_lines(host):
    return [line for line in host.file(ALERTS).content_string.splitlines() if " watchdog: " in line] \
        if host.file(ALERTS).exists else []


def test_stopped_agent_is_healed_by_a_direct_run(host, llm):
    assert sorted(ports(host)) == ["coder", "coordinator", "reviewer"]
    assert all(ready(host, name) for name in ports(host))
    assert "3 healthy, 0 incident(s)" in watchdog(host)
    assert incidents(host) == [] and llm.requests("/chat/completions") == []
    stop(host, "coder")
    out = watchdog(host)
    assert "coder" in out and "(recovered)" in out, out
    assert ready(host, "coder")
    [incident] = incidents(host)
    assert incident["agent"] == "coder" and incident["result"] == "recovered"
    assert "inactive" in incident["symptom"] and incident["action"] == "restart"
    assert incident["diagnosis"].startswith("The gateway process is not running")
    assert incident["llm"]["used"] and incident["trigger"] == "manual"
    assert "received SIGTERM" in incident["log_excerpt"]
    # What the LLM got: the fast model, the key, the logs, no secrets.
    [asked] = llm.requests("/chat/completions")
    assert asked["body"]["model"] == "fake-fast-model"
    assert asked["authorization"] == "Bearer sk-fake-watchdog-key"
    prompt = asked["body"]["messages"][1]["content"]
    assert "Agent coder" in prompt and "received SIGTERM" in prompt
    env = host.file(f"{state_dir('coder')}/gateway.env").content_string
    token = next(line.split("=", 1)[1] for line in env.splitlines() if line.startswith("OPENCLAW_GATEWAY_TOKEN="))
    assert token.strip("'\"") not in json.dumps(asked) + json.dumps(incident)
    assert len(alert_lines(host)) == 1 and "**coder**" in alert_lines(host)[0]
    assert len(llm.requests("/webhook")) == 1


def test_invalid_json_config_is_restored_from_last_good(host, llm):
    config = f"{state_dir('coder')}/openclaw.json"
    good = host.file(f"{STORE}/coder/openclaw.json.last-good").content_string
    host.run_test(f"runuser -u {user_of('coder')} -- sh -c %s" % shlex.quote(f"printf %s '{{ this is not json' > {config}"))
    assert user_systemctl(host, "coder", "restart", "openclaw-gateway-coder.service").rc == 0
    assert wait_until(lambda: unit_props(host, "coder")["ActiveState"] == "failed", 60)
    status = user_systemctl(host, "coder", "show", "-p", "ExecMainStatus", "openclaw-gateway-coder.service").stdout
    assert status.strip() == "ExecMainStatus=78"
    # The LLM still says restart; the verify catches it and restores.
    out = watchdog(host)
    assert "(recovered)" in out, out
    incident = incidents(host)[-1]
    assert "exit status 78 = invalid config" in incident["symptom"]
    steps = [(s["action"], s["result"]) for s in incident["steps"]]
    assert steps == [("restart", "failed"), ("restore_last_good", "recovered")]
    assert incident["action"] == "restore_last_good" and incident["result"] == "recovered"
    assert "restored last known good" in incident["steps"][1]["detail"]
    assert host.file(config).content_string == good
    assert ready(host, "coder")
    change = json.loads(host.file(f"{STORE}/coder/changes.jsonl")
                        .content_string.splitlines()[-1])
    assert change["user"] == "watchdog" and change["result"] == "restored"


def test_generated_script_is_refused_and_the_ladder_heals_in_one_of_two_runs(host, llm):
    """Two runs at the same moment (cron's and an operator's): one takes
    the lock and heals, the other does nothing."""
    llm.answer(SCRIPT)
    stop(host, "coordinator")
    before = len(incidents(host))
    both = host.run(f"{COMMAND} > /tmp/wd-a 2>&1 & {COMMAND} > /tmp/wd-b 2>&1 & wait; "
                    "cat /tmp/wd-a; echo ===; cat /tmp/wd-b")
    outputs = both.stdout.split("===")
    held = [o for o in outputs if "lock held by another watchdog run" in o]
    acted = [o for o in outputs if "coordinator" in o and "(recovered)" in o]
    assert len(held) == 1 and len(acted) == 1, both.stdout
    assert "this run does nothing" in held[0]
    assert len(incidents(host)) == before + 1
    incident = incidents(host)[-1]
    assert incident["agent"] == "coordinator"
    refused, healed = incident["steps"]
    assert refused["action"] == "run_script" and refused["result"] == "refused"
    assert refused["script"] == json.loads(SCRIPT)["script"] and "not run" in refused["detail"]
    assert healed["action"] == "restart" and healed["result"] == "recovered"
    assert not host.file(SCRIPT_MARK).exists
    assert host.file(f"{state_dir('coder')}/openclaw.json").is_file
    assert ready(host, "coordinator")


def test_breaker_trips_after_three_attempts_and_reset_rearms(host, llm):
    dropin = f"{home_of('reviewer')}/.config/systemd/user/openclaw-gateway-reviewer.service.d"
    broken = "[Service]\nExecStart=\nExecStart=/bin/false\n"
    llm.answer("down")  # the ladder alone: restart, then the last good config
    host.run_test(f"runuser -u {user_of('reviewer')} -- sh -c {shlex.quote(f'mkdir -p {dropin} && cat > {dropin}/zz-broken.conf')} "
                  f"<<'EOF'\n{broken}EOF")
    assert user_systemctl(host, "reviewer", "daemon-reload").rc == 0
    user_systemctl(host, "reviewer", "restart", "openclaw-gateway-reviewer.service")
    before = len(incidents(host))
    for attempt in range(3):
        out = watchdog(host)
        assert "reviewer" in out and "(not_recovered)" in out, (attempt, out)
    failed = incidents(host)[before:]
    assert [i["result"] for i in failed] == ["not_recovered"] * 3
    assert all([s["action"] for s in i["steps"]] == ["restart", "restore_last_good"] for i in failed)
    alerts = len(alert_lines(host))
    out = watchdog(host)
    tripped = incidents(host)[-1]
    assert tripped["agent"] == "reviewer" and tripped["result"] == "breaker_tripped" and tripped["action"] == "none"
    assert len(alert_lines(host)) == alerts + 1 and "breaker_tripped" in alert_lines(host)[-1]
    for attempt in range(2):
        out = watchdog(host)
        assert "left alone (breaker open): reviewer" in out, (attempt, out)
    assert len(incidents(host)) == before + 4 and len(alert_lines(host)) == alerts + 1
    assert json.loads(host.file(f"{STATE}/breaker.json").content_string)["reviewer"]["tripped"]

    # The operator stops the crash loop, fixes the cause and re-arms the
    # breaker. Stopped first: systemd's own restart (RestartSec) would
    # otherwise bring the fixed gateway back during the playbooks below,
    # and the watchdog would have nothing left to heal.
    assert user_systemctl(host, "reviewer", "stop", "openclaw-gateway-reviewer.service").rc == 0
    host.run_test(f"rm -rf {dropin}")
    assert user_systemctl(host, "reviewer", "daemon-reload").rc == 0
    check = run_playbook("-e", "agent=reviewer", "--check", playbook="watchdog_reset.yml")
    assert check.returncode == 0, why(check)
    assert json.loads(host.file(f"{STATE}/breaker.json").content_string)["reviewer"]["tripped"]
    reset = run_playbook("-e", "agent=reviewer", playbook="watchdog_reset.yml")
    assert reset.returncode == 0, why(reset)
    assert [s["changed"] for s in json.loads(reset.stdout)["stats"].values()] == [1]
    assert "reviewer" not in json.loads(host.file(f"{STATE}/breaker.json").content_string)
    again = run_playbook("-e", "agent=reviewer", playbook="watchdog_reset.yml")
    assert [s["changed"] for s in json.loads(again.stdout)["stats"].values()] == [0]
    # Still down: the next run (the next test's) heals it.
    assert unit_props(host, "reviewer")["ActiveState"] != "active"


def test_an_allowed_script_runs_sandboxed(host, llm):
    """With watchdog_allow_generated_scripts (here a copy of the deployed
    config with it on): the script runs in a transient unit that may
    write the agent's state dir and nothing else of the home. The agent is
    the reviewer the breaker test re-armed and left down: this run acting
    on it shows the breaker closed again."""
    config = json.loads(host.file("/etc/agentfleet/watchdog.json").content_string)
    config.update(allow_generated_scripts=True, agents=[a for a in config["agents"] if a["name"] == "reviewer"])
    host.run_test(f"echo {shlex.quote(json.dumps(config))} > /tmp/watchdog-scripts.json && "
                  "chmod 644 /tmp/watchdog-scripts.json")
    inside, outside = f"{state_dir('reviewer')}/SCRIPT-WAS-HERE", f"{home_of('reviewer')}/SCRIPT-ESCAPED"
    llm.answer(json.dumps({"diagnosis": "needs a marker", "action": "run_script",
                           "script": f"touch {inside}\ntouch {outside} || echo home is read-only\n"}))
    stop(host, "reviewer")
    before = len(incidents(host))
    out = host.run_test(f"{COMMAND} --config /tmp/watchdog-scripts.json").stdout
    assert "run_script (recovered)" in out, out
    assert len(incidents(host)) == before + 1 and incidents(host)[-1]["agent"] == "reviewer"
    step = incidents(host)[-1]["steps"][0]
    assert step["action"] == "run_script" and step["script"].startswith(f"touch {inside}")
    # The touch outside the state dir failed (its stderr is not kept; the echo after it is).
    assert step["detail"].startswith("script ran: home is read-only")
    assert host.file(inside).exists and not host.file(outside).exists
    assert ready(host, "reviewer")


def test_cron_fires_the_watchdog(host, llm):
    deployed = run_playbook("--tags", "watchdog", "-e", "watchdog_enabled=true", "-e", "watchdog_interval=1")
    assert deployed.returncode == 0, why(deployed)
    cron_d = host.file("/etc/cron.d/agentfleet-watchdog")
    assert cron_d.user == "root" and not cron_d.mode & 0o022
    assert "*/1 * * * * root /opt/agentfleet/bin/agentfleet-watchdog --trigger cron" in cron_d.content_string
    # With the LLM down: the ladder heals without it.
    llm.answer("down")
    asked = len(llm.requests("/chat/completions"))
    before = len(incidents(host))
    stop(host, "coordinator")
    assert wait_until(lambda: len(incidents(host)) > before and ready(host, "coordinator"), 200, 5)
    incident = incidents(host)[-1]
    assert incident["agent"] == "coordinator" and incident["trigger"] == "cron" and incident["result"] == "recovered"
    assert len(llm.requests("/chat/completions")) > asked
    assert not incident["llm"]["used"] and "503" in incident["diagnosis"]
    assert incident["action"] == "restart"
    logged = host.run("journalctl -t agentfleet-watchdog --no-pager").stdout
    assert "watchdog (cron)" in logged
