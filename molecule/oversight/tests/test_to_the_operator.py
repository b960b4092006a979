"""`agentfleet` on the host and playbooks/sitrep.yml, on what every test
before left (file names sort: this runs last): findings of the day,
the watchdog's memory restart, the violation with its amendment, the
usage of the real turns, the timer's backups. Each answer is compared
with the records themselves, read here another way."""

import json
import pathlib

import yaml

from fleet_checks import as_user, ports, readyz, run_playbook, task_results, unit_props, why

from test_oversight import CODER

INVENTORY = pathlib.Path(__file__).parents[1] / "host_vars" / "agentfleet-molecule-oversight.yml"
INCIDENTS = "/var/lib/agentfleet/watchdog/incidents.jsonl"
LEDGER = "/var/lib/agentfleet/constitution/ledger.jsonl"


def agentfleet(host, *args):
    result = host.run("/usr/local/sbin/agentfleet " + " ".join(args))
    assert result.rc == 0, result.stdout + result.stderr
    return result.stdout


def lines_of(host, path):
    return [json.loads(line) for line in host.file(path).content_string.splitlines() if line.strip()]


def fresh_sitrep(host):
    """agentfleet audit, then sitrep, both of one UTC day (once more when
    midnight fell between them)."""
    for dummy in range(2):
        report = json.loads(agentfleet(host, "audit", "--json"))
        rep = json.loads(agentfleet(host, "sitrep", "--json"))
        if report["time"].startswith(rep["day"]):
            return report, rep
    raise AssertionError("the audit and the sitrep kept falling on two days")


def test_status_json_is_the_fleet_as_it_runs(host):
    planned = {a["name"]: a["model"]["primary"] for a in yaml.safe_load(INVENTORY.read_text())["fleet_agents"]}
    status = json.loads(agentfleet(host, "status", "--json"))
    assert [a["name"] for a in status] == list(planned)
    report = json.loads(host.file("/var/lib/agentfleet/oversight/latest.json").content_string)
    incidents = lines_of(host, INCIDENTS)
    listening = ports(host, list(planned))
    for agent in status:
        name = agent["name"]
        assert agent["model"] == planned[name]
        assert agent["ready"] is (readyz(host, listening[name]).get("ready") is True) is True
        assert agent["active"] == unit_props(host, name)["ActiveState"] == "active"
        mine = [i for i in incidents if i["agent"] == name]
        assert agent["last_incident"] == ({k: mine[-1][k] for k in ("time", "symptom", "action", "result")}
                                          if mine else None)
        found = [f for f in report["findings"] if f["agent"] == name]
        assert agent["last_finding"] == ({k: found[0][k] for k in ("rule", "severity", "summary")}
                                         if found else None)
    # The memory test of test_thresholds.py restarted the coder.
    assert [a for a in status if a["name"] == CODER][0]["last_incident"]["symptom"].startswith("memory ")


def test_sitrep_json_shows_findings_incidents_violations_usage_and_backups(host):
    report, rep = fresh_sitrep(host)
    day = rep["day"]
    assert [a["name"] for a in rep["agents"]] == ["coordinator", CODER, "reviewer"]
    # Every finding of the audit just run is among the day's.
    keys = {f["key"] for f in rep["findings"]}
    assert {f["key"] for f in report["findings"]} <= keys
    assert {"disk-low", "memory-over-budget", "session-store-large"} <= {f["rule"] for f in rep["findings"]}
    assert rep["incidents"] == [i for i in lines_of(host, INCIDENTS) if i["time"].startswith(day)]
    assert rep["violations"] == [v for v in lines_of(host, LEDGER) if v["time"].startswith(day)]
    assert rep["usage"] == report["usage"] and rep["usage"]["day"] == day
    kept = json.loads(host.run_test("/opt/agentfleet/bin/agentfleet-backup --list").stdout)
    for name, manifests in kept.items():
        assert rep["backups"][name]["count"] == len(manifests) >= 1
        assert rep["backups"][name]["newest"] == manifests[-1]["archive"]


def test_the_sitrep_playbook_prints_it_on_the_controller(host):
    result = run_playbook(playbook="sitrep.yml")
    assert result.returncode == 0, why(result)
    printed = task_results(result.stdout, "Print the situation report")["msg"]
    text = "\n".join(printed)
    for heading in ("Agents", "Findings today", "Watchdog incidents today", "Violations recorded today",
                    "Usage today", "Backups"):
        assert any(line.startswith(heading) for line in printed), printed
    kept = json.loads(host.run_test("/opt/agentfleet/bin/agentfleet-backup --list").stdout)
    for name, manifests in kept.items():
        assert name in text and manifests[-1]["archive"] in text
    assert "\x1b" not in text


def test_an_agent_cannot_use_it(host):
    result = as_user(host, CODER, "/usr/local/sbin/agentfleet status --json")
    assert result.rc == 2 and "run it as root" in result.stderr and result.stdout == ""
