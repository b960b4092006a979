"""The oversight audit: its rules on real files and git repositories, the
reviewer against a local HTTP server, and a whole run's reports, state
and alerts."""

import datetime
import hashlib
import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import audit
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import audit_checks as checks
from ansible_collections.agentfleet.vps.plugins.module_utils import constitution as law
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import endpoints

NOW = datetime.datetime(2026, 11, 28, 12, 0, tzinfo=datetime.timezone.utc)


class Recorder:
    """A local HTTP server that records POSTs and answers with `answer`."""

    def __init__(self, answer=None, status=200):
        self.requests, self.answer, self.status = [], answer, status
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                recorder.requests.append((self.path, json.loads(body), self.headers.get("Authorization")))
                data = json.dumps({"choices": [{"message": {"content": recorder.answer}}]}).encode()
                self.send_response(recorder.status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder():
    servers = []

    def start(answer=None, status=200):
        servers.append(Recorder(answer, status))
        return servers[-1]
    yield start
    for server in servers:
        server.close()


def make_agent(tmp_path, name="coder", role="specialist"):
    state = tmp_path / (".openclaw-" + name)
    (state / "workspace").mkdir(parents=True)
    (state / "config-backups").mkdir()
    config = state / "openclaw.json"
    config.write_text('{"gateway": {"mode": "local"}}\n')
    (state / "config-backups" / "openclaw.json.last-good").write_bytes(config.read_bytes())
    (state / "workspace" / "HANDOFF.md").write_text(law.HANDOFF)
    return {"name": name, "role": role, "port": 1, "unit": "openclaw-gateway-%s.service" % name,
            "state_dir": str(state), "config": str(config), "workspace": str(state / "workspace"),
            "health_url": "http://127.0.0.1:1/health"}


def log_line(when, message):
    return json.dumps({"0": '{"subsystem":"x"}', "1": message, "time": when.isoformat()})


# ------------------------------------------------------------------ rules

def test_finding_keys_are_stable_and_distinct():
    a = checks.finding("config-drift", "coder", "one text", {}, subject="abc")
    b = checks.finding("config-drift", "coder", "another text", {"x": 1}, subject="abc")
    c = checks.finding("config-drift", "coder", "one text", {}, subject="def")
    assert a["key"] == b["key"] != c["key"]
    assert a["severity"] == "critical"


def test_agent_down_and_restarts_since_the_last_audit():
    agents = [{"name": n, "unit": "u-%s" % n, "health_url": "h"} for n in ("a", "b", "c")]
    units = {"u-a": {"ActiveState": "active", "NRestarts": "0"}, "u-b": {"ActiveState": "inactive", "NRestarts": "0"},
             "u-c": {"ActiveState": "active", "NRestarts": "3"}}
    health = {"a": (True, "200"), "b": (False, "refused"), "c": (True, "200")}
    found, restarts = checks.check_alive(agents, units, health, {"a": 0, "c": 1})
    assert {(f["rule"], f["agent"]) for f in found} == {("agent-down", "b"), ("agent-restarted", "c")}
    assert restarts == {"a": 0, "b": 0, "c": 3}
    # First audit: no baseline, no restart finding.
    found, _restarts = checks.check_alive(agents, units, health, {})
    assert [f["rule"] for f in found] == ["agent-down"]


def test_an_active_gateway_that_misses_one_answer_is_asked_once_more():
    agents = [{"name": n, "unit": "u-%s" % n, "health_url": "h-%s" % n} for n in ("slow", "dead", "stopped")]
    units = {"u-slow": {"ActiveState": "active"}, "u-dead": {"ActiveState": "active"},
             "u-stopped": {"ActiveState": "inactive"}}
    asked, paused = [], []

    def probe(url, timeout):
        asked.append((url, timeout))
        if url == "h-slow" and len([u for u, _t in asked if u == url]) == 2:
            return True, "200"
        return False, "deadline passed"

    health = audit.probe_health(agents, units, probe=probe, sleep=paused.append)
    assert health == {"slow": (True, "200"), "dead": (False, "deadline passed (asked twice)"),
                      "stopped": (False, "deadline passed")}
    # One pause for all, the stopped unit asked once, the second ask longer.
    assert paused == [audit.HEALTH_RETRY_PAUSE]
    assert asked[:3] == [("h-slow", 3), ("h-dead", 3), ("h-stopped", 3)]
    assert sorted(asked[3:]) == [("h-dead", audit.HEALTH_RETRY_TIMEOUT), ("h-slow", audit.HEALTH_RETRY_TIMEOUT)]


def test_config_drift_only_for_bytes_nobody_wrote_or_verified(tmp_path):
    agent = make_agent(tmp_path)
    assert checks.check_config_drift([agent]) == []
    # config_change wrote a new file and logged it: not drift.
    new = b'{"gateway": {"mode": "local", "bind": "loopback"}}\n'
    with open(agent["config"], "wb") as handle:
        handle.write(new)
    log = os.path.join(agent["state_dir"], "config-backups", "changes.jsonl")
    with open(log, "w", encoding="utf-8") as handle:
        handle.write(json.dumps({"file": agent["config"], "result": "applied",
                                 "checksum_after": hashlib.sha256(new).hexdigest()}) + "\n")
    assert checks.check_config_drift([agent]) == []
    # A hand edit: drift, with the checksums as evidence.
    with open(agent["config"], "a", encoding="utf-8") as handle:
        handle.write(" ")
    (found,) = checks.check_config_drift([agent])
    assert found["rule"] == "config-drift" and found["evidence"]["checksum"] == checks.sha256_of(agent["config"])


def test_constitution_block_edits_are_found_text_outside_is_not(tmp_path):
    agent = make_agent(tmp_path)
    agent["articles"] = law.resolve_articles([{"id": "I", "title": "Quality", "text": "Test first.", "supreme": True}])
    planned, _problems = law.plan_agent(law.agent_view(agent), [], 10)
    law.write_planned(planned)
    state_dir = str(tmp_path / "law")
    law.write_rendered(state_dir, "coder", planned)
    assert checks.check_constitution([agent], state_dir) == []
    agents_md = os.path.join(agent["workspace"], "AGENTS.md")
    with open(agents_md, "a", encoding="utf-8") as handle:
        handle.write("\nNotes the agent keeps for itself.\n")
    assert checks.check_constitution([agent], state_dir) == []
    text = open(agents_md, encoding="utf-8").read().replace("Test first.", "Ship first.")
    open(agents_md, "w", encoding="utf-8").write(text)
    os.unlink(os.path.join(agent["workspace"], "CONSTITUTION.md"))
    found = checks.check_constitution([agent], state_dir)
    assert sorted(os.path.basename(f["evidence"]["file"]) for f in found) == ["AGENTS.md", "CONSTITUTION.md"]
    assert any("is missing" in f["summary"] for f in found)


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
                          + list(args), capture_output=True, text=True, check=True).stdout.strip()


def test_pushes_without_green_ci_since_the_last_audit(tmp_path):
    remote, clone = tmp_path / "app.git", tmp_path / "app"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    subprocess.run(["git", "clone", "-q", str(remote), str(clone)], check=True)
    git(clone, "commit", "-q", "--allow-empty", "-m", "green")
    git(clone, "push", "-q", "origin", "main")
    green = tmp_path / "green"
    green.write_text(git(clone, "rev-parse", "HEAD") + "\n")
    ci = {"command": "sh -c 'grep -qx {sha} %s && echo success || echo failure'" % green}
    repos = {"coder": [{"path": str(clone), "branch": "origin/main"}]}
    found, seen = checks.check_pushes(repos, {}, 0, ci)
    assert found == [] and list(seen.values()) == [git(clone, "rev-parse", "HEAD")]
    git(clone, "commit", "-q", "--allow-empty", "-m", "red one")
    git(clone, "commit", "-q", "--allow-empty", "-m", "red two")
    local_only = git(clone, "rev-parse", "HEAD")
    assert checks.check_pushes(repos, seen, 0, ci)[0] == []  # committed, not pushed
    git(clone, "push", "-q", "origin", "main")
    found, seen2 = checks.check_pushes(repos, seen, 0, ci)
    assert [f["evidence"]["subject"] for f in found] == ["red two", "red one"]
    assert {f["evidence"]["ci_state"] for f in found} == {"failure"} and found[0]["evidence"]["commit"] == local_only
    assert checks.check_pushes(repos, seen2, 0, ci)[0] == []
    git(clone, "commit", "-q", "--allow-empty", "-m", "x" * 100000)
    git(clone, "push", "-q", "origin", "main")
    found = checks.check_pushes(repos, seen2, 0, ci)[0]
    assert len(found) == 1 and found[0]["evidence"]["subject"] == "x" * checks.MAX_SUBJECT


def test_ci_status_output_that_is_no_state_is_an_error(tmp_path):
    state, _detail = checks.ci_status({"path": str(tmp_path)}, "abc", "coder", {"command": "echo green!"})
    assert state == "error"


def test_rate_limits_over_the_threshold_and_fallback_answers_in_the_window(tmp_path):
    since = NOW - datetime.timedelta(minutes=5)
    (tmp_path / "logs").mkdir()
    path = tmp_path / "logs" / "openclaw-2026-11-28.log"
    old = [log_line(since - datetime.timedelta(minutes=1), "status=429 Too Many Requests")] * 10
    new = [log_line(NOW, "status=429 rate_limit_error")] * 6 + [log_line(NOW, "lane task durationMs=429")]
    fallback = json.dumps({"1": {"event": "model_fallback_decision", "decision": "candidate_succeeded",
                                 "fallbackStepFinalOutcome": "succeeded"}, "time": NOW.isoformat()})
    failed = json.dumps({"1": {"event": "model_fallback_decision", "decision": "candidate_failed"},
                         "time": NOW.isoformat()})
    path.write_text("\n".join(old + new + [fallback, failed]) + "\n")
    offsets = {}
    found = checks.check_logs([{"name": "coder", "state_dir": str(tmp_path)}], since, NOW, offsets, threshold=5)
    assert {f["rule"]: f["evidence"]["count"] for f in found} == {"rate-limit": 6, "fallback-output": 1}
    # The next audit reads only what was appended since.
    assert checks.check_logs([{"name": "coder", "state_dir": str(tmp_path)}], since, NOW, offsets, threshold=5) == []
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(log_line(NOW, "429 Too Many Requests") + "\n")
    assert checks.check_logs([{"name": "coder", "state_dir": str(tmp_path)}], since, NOW, offsets, threshold=0)[0]["evidence"][
        "count"] == 1


def test_handoff_fresh_seed_is_current_filled_edits_are_checked(tmp_path):
    agent = make_agent(tmp_path)
    assert checks.check_handoff([agent], 24) == []
    handoff = os.path.join(agent["workspace"], "HANDOFF.md")
    open(handoff, "w", encoding="utf-8").write(law.HANDOFF.replace(
        "(What works, what is in progress, on which branch or host.)", "Login works on main (abc123)."))
    (found,) = checks.check_handoff([agent], 24)
    assert "empty sections: Last verified evidence, Next steps, Open risks" in found["summary"]
    # Session activity two days after the last handoff update.
    store = os.path.join(agent["state_dir"], "agents", "main", "agent")
    os.makedirs(store)
    open(os.path.join(store, "openclaw-agent.sqlite"), "w").close()
    two_days = 2 * 86400
    os.utime(handoff, (os.stat(handoff).st_atime - two_days, os.stat(handoff).st_mtime - two_days))
    (found,) = checks.check_handoff([agent], 24)
    assert "not updated for 48.0 h" in found["summary"]
    os.unlink(handoff)
    assert "missing" in checks.check_handoff([agent], 24)[0]["summary"]


def test_watchdog_incidents_since_the_last_audit(tmp_path):
    log = tmp_path / "incidents.jsonl"
    log.write_text("\n".join(json.dumps({"time": t.isoformat(), "agent": "coder", "symptom": "inactive",
                                         "action": "restart", "result": "recovered"})
                             for t in (NOW - datetime.timedelta(hours=1), NOW)) + "\nnot json\n")
    found = checks.check_incidents(str(log), NOW - datetime.timedelta(minutes=5))
    assert len(found) == 1 and found[0]["evidence"]["action"] == "restart"


# --------------------------------------------------------------- reviewer

def test_review_answers_are_validated():
    good = json.dumps({"findings": [{"agent": "coder", "check": "completion_without_proof", "severity": "warning",
                                     "evidence": "said done, no test output"}]})
    assert audit.validate_review(good, ["coder"])[0]["check"] == "completion_without_proof"
    for bad, message in (("Sure! All good.", "not JSON"), ("[]", r"\$: \[\] is not of type 'object'"),
                         (good.replace("coder", "ghost"), r"\$.findings\[0\].agent: 'ghost' is not one of \['coder'\]"),
                         (good.replace("completion_without_proof", "vibes"), r"\$.findings\[0\].check: 'vibes'"),
                         (good.replace('"warning"', '"fatal"'), r"\$.findings\[0\].severity")):
        with pytest.raises(endpoints.AnswerError, match=message):
            audit.validate_review(bad, ["coder"])


STORE_SCHEMA = ("CREATE TABLE transcript_events (session_id TEXT NOT NULL, seq INTEGER NOT NULL, event_json TEXT, "
                "created_at INTEGER NOT NULL, event_zstd BLOB, event_utf8_bytes INTEGER, navigation_json TEXT, "
                "PRIMARY KEY(session_id, seq))")


def store_path(agent):
    return os.path.join(agent["state_dir"], "agents", "main", "agent", "openclaw-agent.sqlite")


def fake_store(agent, text, calls=(), answer=None, session="s", when=NOW, usage=None):
    """A session store with OpenClaw's schema (in WAL mode, like the
    gateway's): a user message, the assistant's tool calls (each with its
    result) and its final answer."""
    import sqlite3
    os.makedirs(os.path.dirname(store_path(agent)), exist_ok=True)
    events = [{"type": "session", "id": session}, {"type": "message", "message": {"role": "user", "content": text}}]
    for name, arguments in calls:
        events.append({"type": "message", "message": {"role": "assistant", "stopReason": "toolUse", "content": [
            {"type": "toolCall", "id": "toolu_" + name, "name": name, "arguments": arguments}]}})
        events.append({"type": "message", "message": {"role": "toolResult", "toolCallId": "toolu_" + name, "toolName": name,
                                                      "content": [{"type": "text", "text": "ok"}], "isError": False}})
    if answer:
        events.append({"type": "message", "message": {"role": "assistant", "stopReason": "stop",
                                                      "content": [{"type": "text", "text": answer}]}})
        if usage:
            events[-1]["message"]["usage"] = usage
    conn = sqlite3.connect(store_path(agent))
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS transcript_events" + STORE_SCHEMA.split("transcript_events", 1)[1])
    first = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM transcript_events WHERE session_id = ?", (session,)).fetchone()[0]
    for seq, event in enumerate(events, first):
        ms = int(when.timestamp() * 1000) + seq
        event["timestamp"] = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).isoformat()
        conn.execute("INSERT INTO transcript_events (session_id, seq, event_json, created_at) VALUES (?, ?, ?, ?)",
                     (session, seq, json.dumps(event), ms))
    conn.commit()
    conn.close()


def test_reviewer_error_is_recorded_and_never_raises(tmp_path, recorder):
    agent = make_agent(tmp_path)
    fake_store(agent, "Deploy the app")
    server = recorder("Sure! Here is my review.")
    config = {"reviewer": {"url": server.url + "/v1", "model": "cheap"}, "secrets": {"reviewer_api_key": "sk-r"}}
    since = NOW - datetime.timedelta(minutes=5)
    sessions = audit.read_transcripts([agent], since, str(tmp_path))
    found, status = audit.review(config, [agent], since, sessions)
    assert status["status"] == "error" and "not JSON" in status["error"]
    assert [f["rule"] for f in found] == ["reviewer-error"]
    path, body, auth = server.requests[0]
    assert path == "/v1/chat/completions" and body["model"] == "cheap" and auth == "Bearer sk-r"
    assert "Deploy the app" in body["messages"][1]["content"]
    # Down: an error too; no activity: not asked at all.
    config["reviewer"]["url"] = "http://127.0.0.1:1/v1"
    assert audit.review(config, [agent], since, sessions)[1]["status"] == "error"
    later = NOW + datetime.timedelta(minutes=5)
    assert audit.review(config, [agent], later, audit.read_transcripts([agent], later, str(tmp_path)))[1]["status"] == "skipped"
    assert len(server.requests) == 1


def test_reviewer_findings_come_from_the_excerpts_of_read_transcripts(tmp_path, recorder):
    agent = make_agent(tmp_path)
    fake_store(agent, "Deploy the app", calls=[("exec", {"command": "./deploy --prod"})], answer="Deployed it.")
    server = recorder(json.dumps({"findings": [{"agent": "coder", "check": "startup_sequence", "severity": "info",
                                                "evidence": "ran ./deploy before reading HANDOFF.md"}]}))
    config = {"reviewer": {"url": server.url + "/v1", "model": "cheap", "max_chars": 5000}, "secrets": {}}
    since = NOW - datetime.timedelta(minutes=5)
    found, status = audit.review(config, [agent], since, audit.read_transcripts([agent], since, str(tmp_path)))
    assert status["status"] == "ok" and status["agents"] == ["coder"]
    assert [(f["rule"], f["agent"], f["severity"]) for f in found] == [("reviewer-finding", "coder", "info")]
    sent = server.requests[0][1]["messages"][1]["content"]
    assert sent.startswith("## Agent coder\n### session s\n")
    assert 'calls exec {"command": "./deploy --prod"}' in sent and "tool result (exec): ok" in sent
    assert sent.endswith("assistant: Deployed it.")


def test_review_of_an_unreadable_store_is_an_error_without_asking(tmp_path, recorder):
    agent = make_agent(tmp_path)
    os.makedirs(os.path.dirname(store_path(agent)))
    with open(store_path(agent), "wb") as handle:
        handle.write(b"not a database" * 100)
    server = recorder(json.dumps({"findings": []}))
    config = {"reviewer": {"url": server.url, "model": "cheap"}, "secrets": {}}
    since = NOW - datetime.timedelta(minutes=5)
    sessions = audit.read_transcripts([agent], since, str(tmp_path))
    assert isinstance(sessions["coder"], str) and "coder" in sessions["coder"]
    found, status = audit.review(config, [agent], since, sessions)
    assert status["status"] == "error" and [f["rule"] for f in found] == ["reviewer-error"]
    assert server.requests == []
    # No reviewer configured: nothing at all, whatever the stores hold.
    assert audit.review({"secrets": {}}, [agent], since, sessions) == ([], {"status": "disabled"})


# -------------------------------------------------------------- checklist

CHECKLIST_ON = {"startup_sequence": True, "completion_without_proof": True, "avoidable_question": True,
                "startup_files": ["VIOLATIONS.md", "HANDOFF.md"]}
CHECKLIST_OFF = {"startup_sequence": False, "completion_without_proof": False, "avoidable_question": False,
                 "startup_files": ["VIOLATIONS.md", "HANDOFF.md"]}


def test_read_transcripts_gives_sessions_and_the_new_ones(tmp_path):
    agent = make_agent(tmp_path)
    fake_store(agent, "old work", session="old", when=NOW - datetime.timedelta(hours=1))
    fake_store(agent, "more old work", session="old", when=NOW)
    fake_store(agent, "new work", session="new", when=NOW)
    nobody = make_agent(tmp_path, "idle")
    read = audit.read_transcripts([agent, nobody], NOW - datetime.timedelta(minutes=5), str(tmp_path))
    by_session, new, _usage = read["coder"]
    assert sorted(by_session) == ["new", "old"] and new == {"new"}
    assert [e["text"] for e in by_session["old"]] == ["more old work"]
    assert read["idle"][:2] == ({}, set())


def test_checklist_findings_from_the_stores(tmp_path):
    agent = make_agent(tmp_path)
    fake_store(agent, "Fix the login", calls=[("read", {"path": "VIOLATIONS.md"}), ("read", {"path": "HANDOFF.md"}),
                                              ("exec", {"command": "make"})], answer="Fixed: 3f2a9c1", session="good")
    fake_store(agent, "Fix the form", calls=[("exec", {"command": "make"})], answer="Should I push?", session="bad")
    sessions = audit.read_transcripts([agent], NOW - datetime.timedelta(minutes=5), str(tmp_path))
    found = audit.check_checklist({"checklist": CHECKLIST_ON}, sessions)
    assert sorted((f["rule"], f["evidence"]["session"]) for f in found) == [
        ("avoidable-question", "bad"), ("startup-sequence", "bad")]


def test_an_unreadable_store_is_one_finding(tmp_path):
    coder, other = make_agent(tmp_path), make_agent(tmp_path, "other")
    fake_store(other, "the other agent's secret")
    fake_store(coder, "Fix the form", calls=[("exec", {"command": "make"})], answer="Should I push?")
    # coder swaps its store for a link to other's: refused, not read.
    os.unlink(store_path(coder))
    os.symlink(store_path(other), store_path(coder))
    sessions = audit.read_transcripts([coder], NOW - datetime.timedelta(minutes=5), str(tmp_path))
    (found,) = audit.check_checklist({"checklist": CHECKLIST_ON}, sessions)
    assert found["rule"] == "transcript-unreadable" and found["agent"] == "coder"
    assert found["summary"] == found["evidence"]["error"] and "secret" not in found["summary"]
    assert [f["key"] for f in audit.check_checklist({"checklist": CHECKLIST_ON}, sessions)] == [found["key"]]
    # A file that is no database is the same finding.
    os.unlink(store_path(coder))
    with open(store_path(coder), "wb") as handle:
        handle.write(b"not a database" * 100)
    sessions = audit.read_transcripts([coder], NOW - datetime.timedelta(minutes=5), str(tmp_path))
    assert [f["rule"] for f in audit.check_checklist({"checklist": CHECKLIST_ON}, sessions)] == ["transcript-unreadable"]


def test_checklist_off_finds_nothing_and_the_usage_is_still_read(tmp_path, monkeypatch):
    assert audit.check_checklist({"checklist": CHECKLIST_OFF}, {"coder": "cannot read"}) == []
    assert audit.check_checklist({}, {"coder": "cannot read"}) == []
    agent = make_agent(tmp_path)
    fake_store(agent, "Fix the form", calls=[("exec", {"command": "make"})], answer="Should I push?", when=NOW)
    monkeypatch.setattr(audit, "user_units", lambda units, user: {u: {"ActiveState": "active", "NRestarts": "0"} for u in units})
    reads = []
    real = audit.read_transcripts
    monkeypatch.setattr(audit, "read_transcripts", lambda *args, **kw: reads.append(args) or real(*args, **kw))
    config = {"agents": [dict(agent, port=1)], "report_dir": str(tmp_path), "secrets": {},
              "constitution_state_dir": str(tmp_path / "none"), "incident_log": str(tmp_path / "none.jsonl")}
    for checklist in (None, CHECKLIST_OFF):
        report, _state = audit.collect(dict(config, checklist=checklist), {}, NOW, use_reviewer=False)
        assert "startup-sequence" not in [f["rule"] for f in report["findings"]]
        assert report["usage"]["agents"]["coder"]["messages"] == 0
    # Turned on, the same one read of the store finds what is in it.
    reads.clear()
    report, _state = audit.collect(dict(config, checklist=CHECKLIST_ON), {}, NOW, use_reviewer=False)
    assert len(reads) == 1
    assert {"startup-sequence", "avoidable-question"} <= {f["rule"] for f in report["findings"]}


# ------------------------------------------------------------- whole run

def test_run_writes_reports_sends_new_findings_once(tmp_path, recorder, monkeypatch):
    agent = make_agent(tmp_path)
    hook = recorder()
    config = {"agents": [dict(agent, port=1)], "report_dir": str(tmp_path / "reports"), "keep_reports": 2,
              "constitution_state_dir": str(tmp_path / "none"),
              "incident_log": str(tmp_path / "none.jsonl"), "secrets": {"webhook_url": hook.url + "/hook"},
              "coordinator": {"alerts_file": str(tmp_path / "ALERTS.md")}}
    monkeypatch.setattr(audit, "user_units",
                        lambda units, user: {u: {"ActiveState": "active", "NRestarts": "0"} for u in units})
    report = audit.run(config, NOW)
    assert [(f["rule"], f["new"]) for f in report["findings"]] == [("agent-down", True)]
    assert len(hook.requests) == 1 and "agent-down `coder`" in hook.requests[0][1]["text"]
    alerts_md = (tmp_path / "ALERTS.md").read_text()
    assert alerts_md.startswith("# ALERTS\n") and "agent-down `coder`" in alerts_md
    for ext in ("json", "md", "xml"):
        assert os.path.islink(tmp_path / "reports" / ("latest." + ext))
    assert 'failures="1"' in (tmp_path / "reports" / "latest.xml").read_text()
    # Still down: reported, not sent again; history rotates to 2 runs.
    for minutes in (5, 10):
        report = audit.run(config, NOW + datetime.timedelta(minutes=minutes))
        assert report["new"] == 0 and report["alerts"] == {}
    assert len(hook.requests) == 1
    assert len(os.listdir(tmp_path / "reports" / "reports")) == 6


def test_failed_delivery_is_sent_again_next_time(tmp_path, recorder, monkeypatch):
    agent = make_agent(tmp_path)
    config = {"agents": [dict(agent, port=1)], "report_dir": str(tmp_path / "r"),
              "secrets": {"webhook_url": "http://127.0.0.1:1/down"}, "coordinator": {}}
    monkeypatch.setattr(audit, "user_units", lambda units, user: {})
    report = audit.run(config, NOW)
    assert report["alerts"]["webhook"]["errors"]
    hook = recorder()
    config["secrets"]["webhook_url"] = hook.url
    report = audit.run(config, NOW + datetime.timedelta(minutes=5))
    assert report["new"] == 1 and len(hook.requests) == 1


def test_a_second_run_while_one_holds_the_lock_refuses(tmp_path):
    import fcntl
    report_dir = tmp_path / "r"
    report_dir.mkdir()
    with open(report_dir / ".lock", "w", encoding="utf-8") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(audit.AuditError, match="another audit"):
            audit.run({"agents": [], "report_dir": str(report_dir), "secrets": {}})


def test_usage_of_the_day_is_summed_per_agent_and_a_budget_overrun_is_one_finding(tmp_path, monkeypatch):
    agent = make_agent(tmp_path)
    usage = {"input": 1000, "output": 200, "cacheRead": 50, "cacheWrite": 0, "totalTokens": 1250,
             "cost": {"total": 0.0125}}
    yesterday = NOW.replace(hour=0, minute=0, second=0) - datetime.timedelta(minutes=1)
    fake_store(agent, "old", answer="done", session="y", when=yesterday, usage=usage)
    for session in ("a", "b"):
        fake_store(agent, "work", answer="done", session=session, when=NOW, usage=usage)
    # What an agent writes into its own store is bounded: nonsense is 0, a huge count capped.
    fake_store(agent, "forged", answer="x", session="f", when=NOW,
               usage={"input": "9" * 30, "output": -5, "totalTokens": 1e300, "cost": {"total": float("nan")}})
    monkeypatch.setattr(audit, "user_units", lambda units, user: {u: {"ActiveState": "active", "NRestarts": "0"} for u in units})
    config = {"agents": [dict(agent, port=1)], "report_dir": str(tmp_path), "secrets": {},
              "constitution_state_dir": str(tmp_path / "none"), "incident_log": str(tmp_path / "none.jsonl"),
              "usage_budgets": {"default": {"tokens": 0}, "agents": {"coder": {"tokens": 2000, "cost": 1}}}}
    report, state = audit.collect(config, {}, NOW, use_reviewer=False)
    used = report["usage"]["agents"]["coder"]
    assert (used["input"], used["output"], used["cacheRead"], used["messages"]) == (2000, 400, 100, 3)
    assert used["totalTokens"] == 2500 + 10 ** 12 and used["cost"] == 0.025
    assert report["usage"]["total"] == used and report["usage"]["day"] == NOW.date().isoformat()
    over = [f for f in report["findings"] if f["rule"] == "usage-over-budget"]
    assert [(f["agent"], f["evidence"]["kind"]) for f in over] == [("coder", "tokens")]
    again, _state = audit.collect(config, state, NOW + datetime.timedelta(minutes=5), use_reviewer=False)
    assert [f["new"] for f in again["findings"] if f["rule"] == "usage-over-budget"] == [False]
    assert "| coder | 3 | 2000 | 400 |" in audit.markdown(report)
