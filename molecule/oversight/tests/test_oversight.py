"""The oversight audit against real gateways, in the order of the issue:
a clean fleet, four injected problems, no repeated alerts, a broken
reviewer. The tests depend on their order."""

import datetime
import hashlib
import json
import time

from conftest import REVIEWER_MODEL
from fleet_checks import (FakeEndpoint, as_user, home_of, run_playbook, state_dir, task_results, unit, user_systemctl,
                          wait_until, why)

REPORTS = "/var/lib/agentfleet/oversight"
ALERTS = f"{state_dir('coordinator')}/workspace/ALERTS.md"
CODER = "coder-1"
CODER_CONFIG = f"{state_dir(CODER)}/openclaw.json"
# The coder's repository, in its own user's home (prepare.yml).
REPO = f"{home_of(CODER)}/src/app"
EXPECTED = {("agent-down", "reviewer"), ("config-drift", CODER), ("push-without-green-ci", CODER),
            ("rate-limit", CODER), ("fallback-output", CODER)}
STATE = {}


def requests(host, path):
    return [r for r in FakeEndpoint(host, 18999).requests(path) if r["path"] == path]


def audit(host):
    """One audit by the timer's own service, as the timer starts it."""
    started = host.run_test("systemctl start agentfleet-audit.service")
    assert started.rc == 0, started.stderr + host.run("journalctl -u agentfleet-audit -n 30 --no-pager").stdout
    return json.loads(host.file(f"{REPORTS}/latest.json").content_string)


def pairs(report):
    return {(f["rule"], f["agent"]) for f in report["findings"]}


def as_agent(host, name, command):
    """The command as agent name's user; it must succeed."""
    result = as_user(host, name, command)
    assert result.rc == 0, (name, command, result.stdout, result.stderr)
    return result


def transcript_events(host, agent):
    """created_at of every transcript event in the agent's session store."""
    store = f"{state_dir(agent)}/agents/main/agent/openclaw-agent.sqlite"
    out = host.run(f"python3 -c \"import sqlite3; c = sqlite3.connect('file:{store}?mode=ro', uri=True); "
                   "print(*[r[0] for r in c.execute('SELECT created_at FROM transcript_events')])\"")
    return [int(x) for x in out.stdout.split()]


def test_clean_fleet_no_findings_and_the_timer_ran_by_itself(host, endpoint):
    timer = host.run_test("systemctl show agentfleet-audit.timer -p ActiveState,UnitFileState,LastTriggerUSec").stdout
    props = dict(line.split("=", 1) for line in timer.splitlines())
    assert props["ActiveState"] == "active" and props["UnitFileState"] == "enabled"
    assert props["LastTriggerUSec"] not in ("", "n/a", "0")
    # Reports written before any test started an audit: the timer's.
    own = sorted(host.file(f"{REPORTS}/reports").listdir())
    assert [n for n in own if n.endswith(".json")], own
    first = json.loads(host.file(f"{REPORTS}/reports/{own[0]}").content_string)
    assert first["findings"] == [], first["findings"]

    report = audit(host)
    assert report["findings"] == [] and report["new"] == 0
    assert {a["name"]: a["active"] for a in report["agents"]} == {
        "coordinator": "active", CODER: "active", "reviewer": "active"}
    for ext in ("json", "md", "xml"):
        assert host.file(f"{REPORTS}/latest.{ext}").is_symlink
    assert 'failures="0"' in host.file(f"{REPORTS}/latest.xml").content_string

    result = run_playbook(playbook="audit.yml")
    assert result.returncode == 0, why(result)
    assert task_results(result.stdout, "Run every oversight check")["findings"] == []


def test_five_problems_are_five_findings_sent_once_each(host, endpoint):
    user_systemctl(host, "reviewer", "stop", unit("reviewer"))
    as_agent(host, CODER, "python3 -c 'import json; p = \"%s\"; d = json.load(open(p)); "
                          "d[\"agents\"][\"defaults\"][\"bootstrapMaxChars\"] = 19999; "
                          "open(p, \"w\").write(json.dumps(d, indent=2))'" % CODER_CONFIG)
    as_agent(host, CODER, f"cd {REPO} && git -c user.name=coder -c user.email=coder@example.invalid "
                          "commit -q --allow-empty -m 'hotfix pushed while CI is red' && git push -q origin main")
    pushed = as_agent(host, CODER, f"git -C {REPO} rev-parse HEAD").stdout.strip()
    now = datetime.datetime.now(datetime.timezone.utc)
    line = json.dumps({"0": '{"subsystem":"provider-transport-fetch"}',
                       "1": "[model-fetch] error provider=anthropic model=claude-sonnet-4-5 status=429 "
                            "message=429 Too Many Requests: rate_limit_error",
                       "time": now.isoformat(timespec="milliseconds")})
    fallback = json.dumps({"1": {"event": "model_fallback_decision", "decision": "candidate_succeeded",
                                 "fallbackStepFromModel": "anthropic/claude-sonnet-4-5",
                                 "fallbackStepToModel": "anthropic/claude-haiku-4-5"},
                           "time": now.isoformat(timespec="milliseconds")})
    # Into the file the coder's own gateway writes (its logging.file), the
    # way a rate-limited turn would leave them there.
    log = f"{state_dir(CODER)}/logs/openclaw-{now.date().isoformat()}.log"
    assert host.file(log).exists, "the gateway does not log where the audit reads"
    as_agent(host, CODER, "for i in 1 2 3 4 5 6 7 8; do echo '%s' >> %s; done; echo '%s' >> %s" % (
        line, log, fallback, log))
    alerts_before = host.file(ALERTS).content_string if host.file(ALERTS).exists else ""
    events_before = max(transcript_events(host, "coordinator") or [0])

    # The module first: the same checks, read-only, and fail_on fails the
    # play; in check mode too. The timer's audit below still sees all four
    # as new.
    result = run_playbook("-e", "fail_on=critical", "--check", playbook="audit.yml")
    assert result.returncode != 0
    module = task_results(result.stdout, "Run every oversight check")
    assert module["failed"] and "3 finding(s) of severity critical or worse" in module["msg"]
    assert {(f["rule"], f["agent"]) for f in module["findings"]} == EXPECTED
    assert all(f["new"] for f in module["findings"]) and not requests(host, "/webhook")

    report = audit(host)
    assert pairs(report) == EXPECTED, report["findings"]
    assert all(f["new"] for f in report["findings"])
    found = {f["rule"]: f for f in report["findings"]}
    assert found["agent-down"]["evidence"]["ActiveState"] == "inactive"
    drift = found["config-drift"]["evidence"]
    assert drift["checksum"] == hashlib.sha256(host.file(CODER_CONFIG).content).hexdigest()
    assert drift["checksum"] not in drift["known_good"]
    push = found["push-without-green-ci"]["evidence"]
    assert (push["commit"], push["ci_state"], push["branch"]) == (pushed, "failure", "origin/main")
    assert found["rate-limit"]["evidence"]["count"] == 8

    assert found["fallback-output"]["evidence"]["count"] == 1
    # One webhook message per finding.
    hooks = requests(host, "/webhook")
    assert len(hooks) == 5
    for rule, agent in EXPECTED:
        assert sum(f" {rule} `{agent}`:" in h["body"]["text"] for h in hooks) == 1, (rule, agent)
    # The coordinator: ALERTS.md lines, and a system event its gateway took.
    added = host.file(ALERTS).content_string[len(alerts_before):]
    for item in report["findings"]:
        assert f"(finding {item['key']})" in added
    assert report["alerts"]["system_event"]["ok"] is True, report["alerts"]
    assert wait_until(lambda: max(transcript_events(host, "coordinator") or [0]) > events_before, 90), \
        "the coordinator's main session shows no turn after the system event"
    STATE["alerts"] = host.file(ALERTS).content_string


def test_the_next_audit_sends_nothing_new(host, endpoint):
    report = audit(host)
    assert report["new"] == 0 and report["alerts"] == {}
    # Still true, still reported, not sent again (the push and the log
    # lines belong to the previous window).
    assert {("agent-down", "reviewer"), ("config-drift", CODER)} <= pairs(report)
    assert len(requests(host, "/webhook")) == 5
    assert host.file(ALERTS).content_string == STATE["alerts"]


def test_malformed_reviewer_answer_is_a_reviewer_error(host, endpoint):
    endpoint.rules(answers=dict(endpoint.current["answers"],
                                **{REVIEWER_MODEL: "Sure! Here is my review: everything looks *mostly* fine."}))
    # Real session activity for the reviewer to read: a system event makes
    # the coder's gateway run a turn.
    before = max(transcript_events(host, CODER) or [0])
    port = {a["name"]: a["port"] for a in json.loads(host.file("/etc/agentfleet/oversight.json").content_string)[
        "agents"]}[CODER]
    as_agent(host, CODER, f"set -a; . {state_dir(CODER)}/gateway.env; /opt/agentfleet/bin/openclaw --profile {CODER} "
                          f"system event --text 'Summarise the state of the app repository' --mode now --port {port} --json")
    assert wait_until(lambda: max(transcript_events(host, CODER) or [0]) > before, 90)
    time.sleep(1)

    report = audit(host)
    assert report["reviewer"]["status"] == "error" and "not JSON" in report["reviewer"]["error"]
    assert ("reviewer-error", "-") in pairs(report)
    assert {("agent-down", "reviewer"), ("config-drift", CODER)} <= pairs(report)
    asked = requests(host, "/v1/chat/completions")
    asked = [r for r in asked if r["model"] == REVIEWER_MODEL]
    assert asked and asked[-1]["body"]["model"] == REVIEWER_MODEL
    assert asked[-1]["authorization"] == "Bearer sk-fake-reviewer-key"
    assert f"## Agent {CODER}" in asked[-1]["body"]["messages"][1]["content"]
    hooks = requests(host, "/webhook")
    assert len(hooks) == 6 and "reviewer-error" in hooks[-1]["body"]["text"]
