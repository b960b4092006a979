"""The `agentfleet` command on records laid out as the overseers keep
them (reports, incident log, ledger, backup manifests, root's last good
config) in tmp_path; unit states and /readyz answers are given."""

import datetime
import io
import json
import os

import pytest

from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import fleetctl

NOW = datetime.datetime(2026, 12, 3, 12, 0, 0, tzinfo=datetime.timezone.utc)
ESC = "\x1b]0;owned\x07\x1b[2J"


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(data if isinstance(data, str) else json.dumps(data))


@pytest.fixture
def records(tmp_path):
    reports = tmp_path / "oversight"
    agents = []
    for name, port in (("coordinator", 18800), ("coder", 19000)):
        store = tmp_path / "config" / name
        write(str(store / "openclaw.json.last-good"),
              {"agents": {"defaults": {"model": {"primary": "anthropic/claude-sonnet-4-5"}}}})
        agents.append({"name": name, "port": port, "unit": "openclaw-gateway-%s.service" % name,
                       "user": "openclaw-" + name, "role": "coordinator" if name == "coordinator" else "specialist",
                       "store_dir": str(store)})
    finding = {"key": "k1", "rule": "handoff-stale", "severity": "warning", "agent": "coder",
               "summary": "HANDOFF.md says " + ESC + "\nFAKE LINE", "new": True}
    earlier = dict(finding, key="k0", rule="config-drift", summary="older")
    write(str(reports / "reports" / "audit-20261202T235500Z.json"),
          {"time": "2026-12-02T23:55:00+00:00", "findings": [earlier]})
    write(str(reports / "reports" / "audit-20261203T100000Z.json"),
          {"time": "2026-12-03T10:00:00+00:00", "findings": [finding]})
    latest = {"time": "2026-12-03T11:55:00+00:00", "host": "vps", "findings": [finding],
              "counts": {"warning": 1}, "usage": {"day": "2026-12-03", "agents": {
                  "coder": {"messages": 2, "input": 30, "output": 12, "totalTokens": 42, "cost": 0.5}}}}
    write(str(reports / "reports" / "audit-20261203T115500Z.json"), latest)
    os.symlink("reports/audit-20261203T115500Z.json", str(reports / "latest.json"))
    incidents = tmp_path / "incidents.jsonl"
    write(str(incidents), "\n".join(json.dumps(i) for i in (
        {"time": "2026-11-01T00:00:00+00:00", "agent": "coder", "symptom": "old", "action": "restart", "result": "recovered"},
        {"time": "2026-12-03T09:00:00+00:00", "agent": "coder", "symptom": "down " + ESC, "action": "restart",
         "result": "recovered"})) + "\nnot json\n")
    law = tmp_path / "constitution"
    write(str(law / "ledger.jsonl"), json.dumps({"id": "v1", "agent": "coder", "time": "2026-12-03T08:00:00+00:00",
                                                 "what": "skipped tests", "changed": "now runs them",
                                                 "severity": "major"}) + "\n")
    backups = tmp_path / "backups"
    write(str(backups / "coder" / "20261203T030000Z.tar.gz"), "archive")
    write(str(backups / "coder" / "20261203T030000Z.json"),
          {"archive": "20261203T030000Z.tar.gz", "created": "2026-12-03T03:00:00+00:00", "size": 7,
           "sha256": "x", "trigger": "service"})
    return {"agents": agents, "report_dir": str(reports), "incident_log": str(incidents),
            "constitution_state_dir": str(law), "backups": {"dir": str(backups)}}


UNITS = {"openclaw-gateway-coordinator.service": {"ActiveState": "active", "SubState": "running", "NRestarts": "0"},
         "openclaw-gateway-coder.service": {"ActiveState": "failed", "SubState": "failed", "NRestarts": "3"}}


def ready(port, timeout):
    return port == 18800, "readyz of %d" % port


def test_status_says_unit_readiness_model_last_incident_and_last_finding(records):
    found = {a["name"]: a for a in fleetctl.status(records, NOW, units=UNITS, ready=ready)}
    assert found["coordinator"]["ready"] is True and found["coordinator"]["active"] == "active"
    coder = found["coder"]
    assert coder["ready"] is False and coder["active"] == "failed" and coder["restarts"] == "3"
    assert coder["model"] == "anthropic/claude-sonnet-4-5"
    assert coder["last_incident"]["time"] == "2026-12-03T09:00:00+00:00"
    assert coder["last_finding"]["rule"] == "handoff-stale"
    assert found["coordinator"]["last_incident"] is None and found["coordinator"]["last_finding"] is None


def test_sitrep_holds_only_today(records, monkeypatch):
    monkeypatch.setattr(fleetctl, "unit_states", lambda config, agents: UNITS)
    monkeypatch.setattr(fleetctl.config_txn, "readyz", ready)
    rep = fleetctl.sitrep(records, NOW)
    assert [f["key"] for f in rep["findings"]] == ["k1"]
    assert rep["findings"][0]["reports"] == 2 and rep["findings"][0]["first_seen"] == "2026-12-03T10:00:00+00:00"
    assert [i["symptom"][:4] for i in rep["incidents"]] == ["down"]
    assert [v["id"] for v in rep["violations"]] == ["v1"]
    assert rep["usage"]["agents"]["coder"]["totalTokens"] == 42
    assert rep["backups"]["coder"]["count"] == 1 and rep["backups"]["coder"]["age_hours"] == 9.0
    assert rep["backups"]["coordinator"] == {"count": 0, "newest": None, "created": None, "age_hours": None,
                                             "size": None, "trigger": None}


def test_yesterdays_usage_is_not_shown_as_today(records):
    newest = os.path.join(records["report_dir"], "reports", "audit-20261203T115500Z.json")
    with open(newest, encoding="utf-8") as handle:
        latest = json.load(handle)
    latest["usage"]["day"] = "2026-12-02"
    write(newest, latest)
    rep = fleetctl.sitrep(dict(records, agents=[]), NOW)
    assert rep["usage"] is None and "no audit of today yet" in "\n".join(fleetctl.text_sitrep(rep))


def test_text_escapes_what_an_agent_wrote(records, monkeypatch):
    monkeypatch.setattr(fleetctl, "unit_states", lambda config, agents: UNITS)
    monkeypatch.setattr(fleetctl.config_txn, "readyz", ready)
    text = "\n".join(fleetctl.text_sitrep(fleetctl.sitrep(records, NOW)))
    assert "\x1b" not in text and "\x07" not in text
    # The finding's own line break does not start a line of its own.
    assert not any(line.startswith("FAKE LINE") for line in text.splitlines())
    assert "handoff-stale coder" in text and "skipped tests" in text and "20261203T030000Z.tar.gz" in text


def test_incidents_and_violations_filter_by_agent_and_days(records):
    assert len(fleetctl.incidents(records, NOW, days=60)) == 2
    assert len(fleetctl.incidents(records, NOW, days=7)) == 1
    assert fleetctl.incidents(records, NOW, days=60, agent="coordinator") == []
    assert [v["id"] for v in fleetctl.violations(records, NOW, agent="coder")] == ["v1"]


def test_a_missing_record_is_empty_not_an_error(tmp_path):
    config = {"agents": [], "report_dir": str(tmp_path / "none"), "incident_log": str(tmp_path / "none.jsonl"),
              "constitution_state_dir": str(tmp_path / "none"), "backups": {"dir": ""}}
    rep = fleetctl.sitrep(config, NOW)
    assert rep["findings"] == [] and rep["incidents"] == [] and rep["violations"] == [] and rep["usage"] is None


def test_a_linked_report_is_not_followed(records, tmp_path):
    secret = tmp_path / "secret.json"
    write(str(secret), {"findings": [{"key": "s", "summary": "root's secret"}]})
    os.symlink(str(secret), os.path.join(records["report_dir"], "reports", "audit-20261203T110000Z.json"))
    assert "s" not in [f["key"] for f in fleetctl.findings_of_day(records, "20261203")]


def test_audit_starts_the_service_and_shows_its_report(records):
    calls = []

    class Done:
        returncode, stderr = 0, ""

    def runner(argv, **kwargs):
        calls.append(argv)
        return Done()
    report = fleetctl.run_audit(records, runner=runner)
    assert calls == [["systemctl", "start", "agentfleet-audit.service"]] and report["time"] == "2026-12-03T11:55:00+00:00"
    Done.returncode, Done.stderr = 1, "Job failed"
    with pytest.raises(RuntimeError, match="exited 1: Job failed"):
        fleetctl.run_audit(records, runner=runner)


def test_main_refuses_anyone_but_root(monkeypatch, capsys):
    monkeypatch.setattr(fleetctl.os, "geteuid", lambda: 1001)
    assert fleetctl.main(["status"]) == 2
    assert "run it as root" in capsys.readouterr().err


def test_main_prints_json(records, tmp_path, monkeypatch):
    path = tmp_path / "oversight.json"
    write(str(path), records)
    monkeypatch.setattr(fleetctl.os, "geteuid", lambda: 0)
    out = io.StringIO()
    assert fleetctl.main(["--config", str(path), "violations", "--json"], out=out) == 0
    assert [v["id"] for v in json.loads(out.getvalue())] == ["v1"]


def test_an_unreadable_newest_report_is_said_not_shown_clean(records, monkeypatch):
    monkeypatch.setattr(fleetctl, "MAX_REPORT", 64)
    report = fleetctl.latest_report(records)
    assert report == {"unreadable": "audit-20261203T115500Z.json"}
    assert "too large or not JSON" in fleetctl.text_audit(report)[0]
    assert [f["rule"] for f in fleetctl.findings_of_day(records, "20261203")] == ["report-unreadable"] * 2


@pytest.mark.parametrize("content", ["[]", '{"agents": []}', '{"agents": {"defaults": {"model": 7}}}',
                                     "[" * 100000 + "]" * 100000])
def test_a_last_good_config_of_any_shape_has_no_model_and_no_crash(records, content):
    write(os.path.join(records["agents"][1]["store_dir"], "openclaw.json.last-good"), content)
    assert fleetctl.planned_model(records["agents"][1]) is None


def test_days_are_bounded_and_a_missing_config_is_a_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(fleetctl.os, "geteuid", lambda: 0)
    with pytest.raises(SystemExit):
        fleetctl.main(["incidents", "--days", "99999999999999"])
    assert "give 1 to 3650 days" in capsys.readouterr().err
    assert fleetctl.main(["--config", str(tmp_path / "none.json"), "status"], out=io.StringIO()) == 1
    assert "does not exist" in capsys.readouterr().err
