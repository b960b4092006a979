"""Guardrails on the fleet the other tests left: at their defaults the
disk, memory and session-store rules find nothing; with thresholds set
low for the test each one fires, and the watchdog gives a gateway over
its memory budget a planned restart. The thresholds go back to the
inventory's when the file ends (test_to_the_operator.py runs after it)."""

import json

import pytest

from fleet_checks import main_pids, readyz, ports, run_playbook, why

from test_oversight import CODER, audit

GUARDRAILS = {"disk-low", "memory-over-budget", "session-store-large"}
LOW = {"oversight_disk_min_free_percent": 100, "oversight_memory_budget_percent": 1,
       "oversight_session_store_max_mb": 0.01, "watchdog_memory_budget_percent": 1}
HOLD = "/var/lib/agentfleet/hold"


@pytest.fixture(scope="module", autouse=True)
def thresholds_put_back():
    """The low thresholds end with this file: the watchdog that cron runs
    with a 1 % memory budget would restart every gateway under the tests
    after it (seen: `agentfleet status` caught one mid-restart)."""
    yield
    result = run_playbook("--tags", "oversight,watchdog")
    assert result.returncode == 0, why(result)


def free_percent(host, path):
    """Free share of path's filesystem for unprivileged users, as df sees it."""
    blocks, available = host.run_test(f"stat -f -c '%b %a' {path}").stdout.split()
    return 100.0 * int(available) / int(blocks)


def test_guardrails_stay_quiet_at_their_defaults(host, endpoint):
    report = audit(host)
    found = [f for f in report["findings"] if f["rule"] in GUARDRAILS]
    assert not [f for f in found if f["rule"] != "disk-low"], found
    # The disk is the machine's: a finding exactly where it is below 10 %.
    low = sorted(p for p in ("/", "/home", "/var/lib/agentfleet") if free_percent(host, p) < 10)
    assert sorted(f["evidence"]["path"] for f in found) == low, found


def test_each_guardrail_fires_past_a_low_threshold(host, endpoint):
    result = run_playbook("--tags", "oversight,watchdog", "-e", json.dumps(LOW))
    assert result.returncode == 0, why(result)
    report = audit(host)
    found = [f for f in report["findings"] if f["rule"] in GUARDRAILS]
    running = {a["name"] for a in report["agents"] if a["active"] == "active"}
    assert running == {"coordinator", CODER, "reviewer"}, report["agents"]
    assert sorted(f["evidence"]["path"] for f in found if f["rule"] == "disk-low") == [
        "/", "/home", "/var/lib/agentfleet"]
    assert {f["agent"] for f in found if f["rule"] == "memory-over-budget"} == running
    assert {f["agent"] for f in found if f["rule"] == "session-store-large"} == running
    for item in found:
        assert item["new"] and item["severity"] == audit_severity(item["rule"])


def audit_severity(rule):
    return "critical" if rule == "disk-low" else "warning"


def test_the_watchdog_restarts_a_gateway_over_its_memory_budget(host, endpoint):
    pids = main_pids(host)
    host.run_test(f"mkdir -p -m 0700 {HOLD} && echo test > {HOLD}/coordinator && echo test > {HOLD}/reviewer")
    try:
        run = host.run("/opt/agentfleet/bin/agentfleet-watchdog")
    finally:
        host.run_test(f"rm -f {HOLD}/coordinator {HOLD}/reviewer")
    assert run.rc == 0, run.stdout + run.stderr
    incident = json.loads(host.file("/var/lib/agentfleet/watchdog/incidents.jsonl").content_string.splitlines()[-1])
    assert incident["agent"] == CODER and incident["symptom"].startswith("memory ") and "of MemoryMax" in incident["symptom"]
    assert incident["action"] == "restart" and incident["result"] == "recovered", incident
    after = main_pids(host)
    assert after[CODER] != pids[CODER] and {k: v for k, v in after.items() if k != CODER} == {
        k: v for k, v in pids.items() if k != CODER}
    assert readyz(host, ports(host, [CODER])[CODER]).get("ready") is True
