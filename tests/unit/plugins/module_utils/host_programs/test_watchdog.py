"""The watchdog's decisions against a scripted host: what it does for a
down agent, what it refuses, when the breaker trips, the lock. Files
(config, last-good, incident log, ALERTS.md) are real, in tmp_path; the
LLM is a local HTTP server."""

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.agentfleet.vps.plugins.module_utils import config_txn
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import audit_checks
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import watchdog as wd
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import watchdog_actions as wd_actions
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import watchdog_diagnosis as wd_diagnosis
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import watchdog_host as wd_host
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import watchdog_llm as wd_llm
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import watchdog_state as wd_state


class ScriptedHost:
    """The systemd user manager and processes the watchdog talks to.
    `heals` says which actions bring the gateway back."""

    def __init__(self, heals=("restart",), state="inactive", substate="dead", status="0"):
        self.heals = set(heals)
        self.props = {"ActiveState": state, "SubState": substate, "Result": "success", "ExecMainStatus": status,
                      "NRestarts": "0", "ActiveEnterTimestampMonotonic": "0", "ControlGroup": "/user.slice/x/app.slice/"
                      "openclaw-gateway-coder.service"}
        self.calls, self.killed, self.clock, self.pending = [], [], 1000.0, None
        self.stray, self.uid, self.gid, self.other_users = {}, 1000, 1000, set()

    def systemctl(self, *args):
        self.calls.append(("systemctl",) + args)
        if args[0] in ("restart", "start"):
            up = self.pending in self.heals
            self.props.update(ActiveState="active" if up else "failed", SubState="running" if up else "failed",
                              ActiveEnterTimestampMonotonic=str(int((self.clock - 500) * 1e6)))
        return 0, "", ""

    def unit(self, unit):
        return dict(self.props)

    def units(self, units):
        return {unit: dict(self.props) for unit in units}

    def probe(self, url, body=None):
        up = self.props["ActiveState"] == "active"
        return up, "%s answered %s" % (url, 200 if up else "nothing")

    def journal(self, unit, lines):
        return "Nov 28 node[1]: OPENCLAW_GATEWAY_TOKEN=tok-secret-123456 rejected\nNov 28 node[1]: exiting"

    def run(self, argv, timeout=120, env=None):
        self.calls.append(tuple(argv))
        return 0, "done", ""

    def run_as(self, argv, timeout=120, env=None):
        return self.run(("runuser", "-u", "agent", "--") + tuple(argv), timeout, env)

    def owner(self, pid):
        return 0 if pid in self.other_users else self.uid

    def listeners(self, port):
        return sorted(self.stray)

    def cgroup(self, pid):
        return self.stray[pid]

    def kill(self, pid, sig):
        self.killed.append((pid, sig))
        self.stray.pop(pid, None)

    def alive(self, pid):
        return pid in self.stray

    def monotonic(self):
        return self.clock

    def sleep(self, seconds):
        self.clock += seconds


def runner_tracking(monkeypatch, host):
    """Tell the host which action runs, so its restart knows whether it
    heals (restore_last_good and the others end in a restart)."""
    for name, func in list(wd_actions.RUNNERS.items()):
        def wrapped(h, config, agent, answer, action=name, runner=func):
            host.pending = action
            return runner(h, config, agent, answer)
        monkeypatch.setitem(wd_actions.RUNNERS, name, wrapped)


@pytest.fixture
def fleet(tmp_path):
    state = tmp_path / "coder"
    (state / "config-backups").mkdir(parents=True)
    (state / "openclaw.json").write_text('{"gateway": {"mode": "local"}}\n')
    (state / "config-backups" / "openclaw.json.last-good").write_text('{"gateway": {"mode": "local"}}\n')
    (state / "gateway.env").write_text("OPENCLAW_GATEWAY_TOKEN=tok-secret-123456\n")
    (tmp_path / "watchdog").mkdir()
    logs = state / "logs"
    logs.mkdir()
    (logs / "openclaw-2026-11-28.log").write_text(
        json.dumps({"time": "2026-11-28T10:00:00Z", "_meta": {"logLevelName": "ERROR"},
                    "message": "config invalid at gateway.bind"}) + "\nplain line\n")
    return {
        "agents": [{"name": "coder", "unit": "openclaw-gateway-coder.service", "port": 19000,
                    "state_dir": str(state), "config": str(state / "openclaw.json")}],
        "state_dir": str(tmp_path / "watchdog"), "incident_log": str(tmp_path / "watchdog" / "incidents.jsonl"),
        "alerts_file": str(tmp_path / "ALERTS.md"), "log_lines": 50, "ready_timeout": 30,
        "breaker_max": 3, "breaker_window": 3600, "llm": {}, "allow_generated_scripts": False,
        "script_timeout": 60, "secrets": {},
    }


def incidents(config):
    with open(config["incident_log"], encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


# ---------------------------------------------------------------- plan

def test_ladder_without_an_answer_and_llm_action_then_restore():
    assert wd_actions.plan({}, None) == (["restart", "restore_last_good"], [])
    assert wd_actions.plan({}, {"diagnosis": "d", "action": "doctor_fix"}) == (["doctor_fix", "restore_last_good"], [])
    assert wd_actions.plan({}, {"diagnosis": "d", "action": "restore_last_good"}) == (["restore_last_good"], [])


def test_a_generated_script_is_refused_unless_allowed():
    answer = {"diagnosis": "d", "action": "run_script", "script": "touch /tmp/x"}
    actions, refused = wd_actions.plan({"allow_generated_scripts": False}, answer)
    assert actions == ["restart", "restore_last_good"]
    assert refused[0]["result"] == "refused" and refused[0]["script"] == "touch /tmp/x"
    assert wd_actions.plan({"allow_generated_scripts": True}, answer) == (["run_script", "restore_last_good"], [])


def test_allowed_script_runs_only_in_a_sandboxed_transient_unit(fleet):
    host = ScriptedHost()
    ok, _detail = wd_actions.act_run_script(host, dict(fleet, script_timeout=45), fleet["agents"][0],
                                            {"script": "echo hi"})
    argv = next(c for c in host.calls if c[0] == "systemd-run")
    state_dir = fleet["agents"][0]["state_dir"]
    assert ok and argv[-3:] == ("/bin/sh", "-c", "echo hi")
    for prop in ("ProtectSystem=strict", "TemporaryFileSystem=/home:ro", "BindPaths=%s" % state_dir,
                 "InaccessiblePaths=-%s/gateway.env" % state_dir, "PrivateNetwork=yes", "NoNewPrivileges=yes",
                 "InaccessiblePaths=-/etc/agentfleet -/var/lib/agentfleet -/run/user", "RuntimeMaxSec=45",
                 "PrivateTmp=yes"):
        assert prop in argv, prop
    # A system unit as the agent's own uid: never root, never the user manager.
    assert argv[argv.index("--uid") + 1] == "1000" and "--user" not in argv and "--wait" in argv


# ----------------------------------------------------------------- LLM

class LLM(BaseHTTPRequestHandler):
    answer = (200, "{}")
    seen = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        LLM.seen.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        status, content = LLM.answer
        data = json.dumps({"choices": [{"message": {"content": content}}]}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def llm():
    server = ThreadingHTTPServer(("127.0.0.1", 0), LLM)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    LLM.seen = []
    yield "http://127.0.0.1:%d/v1" % server.server_address[1]
    server.shutdown()


@pytest.mark.parametrize("status, content, error", [
    (200, "Restart it, I think.", "not JSON"),
    (200, '{"diagnosis": "x", "action": "rm -rf /"}', "$.action"),
    (200, '{"diagnosis": "x", "action": "restart", "extra": 1}', "Additional properties"),
    (503, "", "503"),
])
def test_llm_answers_that_are_not_allowed_json_mean_the_ladder(fleet, llm, status, content, error):
    LLM.answer = (status, content)
    config = dict(fleet, llm={"url": llm, "model": "fast"})
    answer, reason = wd_llm.ask_llm(config, fleet["agents"][0], "unit failed", "logs")
    assert answer is None and error in reason


def test_llm_gets_the_logs_without_secrets_and_its_action_is_taken(fleet, llm, monkeypatch):
    LLM.answer = (200, json.dumps({"diagnosis": "bad config", "action": "restore_last_good"}))
    config = dict(fleet, llm={"url": llm, "model": "fast"}, secrets={"llm_api_key": "k"})
    host = ScriptedHost(heals=("restore_last_good",))
    runner_tracking(monkeypatch, host)
    summary = wd.run(config, host=host)
    [incident] = summary["incidents"]
    assert incident["diagnosis"] == "bad config" and incident["action"] == "restore_last_good"
    assert incident["result"] == "recovered" and [s["action"] for s in incident["steps"]] == ["restore_last_good"]
    prompt = LLM.seen[0]["messages"][1]["content"]
    assert LLM.seen[0]["model"] == "fast" and "config invalid at gateway.bind" in prompt
    assert "2026-11-28T10:00:00Z ERROR config invalid" in prompt and "plain line" in prompt
    assert "tok-secret-123456" not in prompt and "tok-secret-123456" not in json.dumps(incidents(config))


# ------------------------------------------------------------ healing

def test_stopped_agent_restart_heals_and_is_logged_and_alerted(fleet, monkeypatch):
    host = ScriptedHost()
    runner_tracking(monkeypatch, host)
    summary = wd.run(fleet, host=host, trigger="cron")
    [incident] = incidents(fleet)
    assert incident["result"] == "recovered" and incident["action"] == "restart" and incident["trigger"] == "cron"
    assert incident["symptom"] == "unit inactive (dead, result success)" and summary["healthy"] == []
    assert ("systemctl", "reset-failed", "openclaw-gateway-coder.service") in host.calls
    with open(fleet["alerts_file"], encoding="utf-8") as handle:
        assert "**coder** `unit inactive" in handle.read()
    assert wd.run(fleet, host=host)["healthy"] == ["coder"] and len(incidents(fleet)) == 1


def test_restart_that_does_not_heal_restores_last_good(fleet, monkeypatch):
    store = config_txn.ConfigStore(fleet["agents"][0]["config"])
    with open(store.path, "w", encoding="utf-8") as handle:
        handle.write("{ not json")
    host = ScriptedHost(heals=("restore_last_good",), state="failed", substate="failed", status="78")
    runner_tracking(monkeypatch, host)
    [incident] = wd.run(fleet, host=host)["incidents"]
    assert "exit status 78 = invalid config" in incident["symptom"]
    steps = [(s["action"], s["result"]) for s in incident["steps"]]
    assert steps == [("restart", "failed"), ("restore_last_good", "recovered")]
    assert store.read() == store.last_good()
    assert [b for b in store.backups() if open(b, encoding="utf-8").read() == "{ not json"]
    with open(store.log_path, encoding="utf-8") as handle:
        entry = json.loads(handle.readlines()[-1])
    assert entry["result"] == "restored" and entry["user"] == "watchdog"


def test_verify_stops_early_when_the_gateway_exits(fleet):
    host = ScriptedHost(state="activating", substate="auto-restart")
    ok, detail = wd_actions.verify(host, fleet["agents"][0], 90)
    assert not ok and "auto-restart" in detail and host.clock == 1000.0


def test_starting_gateway_gets_its_grace(fleet):
    host = ScriptedHost(state="active", substate="running")
    host.props["ActiveEnterTimestampMonotonic"] = str(int(990 * 1e6))
    host.probe = lambda url, body=None: (False, "no answer")
    assert wd_diagnosis.symptom_of(host, fleet["agents"][0], 30, host.props) is None
    host.clock = 2000.0
    assert wd_diagnosis.symptom_of(host, fleet["agents"][0], 30, host.props).startswith("unit active but /health fails")


def test_kill_port_holder_stops_only_strays_of_other_cgroups(fleet, monkeypatch):
    host = ScriptedHost()
    runner_tracking(monkeypatch, host)
    host.pending = "kill_port_holder"
    host.heals = {"kill_port_holder"}
    host.stray = {41: "0::/user.slice/x/app.slice/openclaw-gateway-coder.service\n", 42: "0::/user.slice/x/session.scope\n",
                  43: "0::/system.slice/sshd.service\n"}
    host.other_users = {43}  # not the agent's: root never kills it on the agent's behalf
    ok, detail = wd_actions.act_kill_port_holder(host, fleet, fleet["agents"][0], None)
    assert ok and "42" in detail and [kill[0] for kill in host.killed] == [42]
    host.stray = {}
    assert wd_actions.act_kill_port_holder(host, fleet, fleet["agents"][0], None) == (
        False, "no stray process holds port 19000")


# ------------------------------------------------------------ breaker

def test_breaker_trips_after_max_attempts_alerts_once_and_reset_rearms(fleet, monkeypatch):
    host = ScriptedHost(heals=())
    runner_tracking(monkeypatch, host)
    for attempt in range(3):
        assert wd.run(fleet, host=host)["incidents"][0]["result"] == "not_recovered", attempt
    tripped = wd.run(fleet, host=host)["incidents"]
    assert [i["result"] for i in tripped] == ["breaker_tripped"]
    calls = len(host.calls)
    for attempt in range(2):
        summary = wd.run(fleet, host=host)
        assert summary["left_alone"] == ["coder"] and summary["incidents"] == [], attempt
    assert len(host.calls) == calls and len(incidents(fleet)) == 4
    with open(fleet["alerts_file"], encoding="utf-8") as handle:
        assert handle.read().count("breaker_tripped") == 1
    assert wd_state.reset_breakers(fleet["state_dir"], ["coder"], check_mode=True) == (["coder"], ["coder"])
    assert wd.run(fleet, host=host)["left_alone"] == ["coder"]
    assert wd_state.reset_breakers(fleet["state_dir"], ["coder"]) == (["coder"], ["coder"])
    assert wd_state.reset_breakers(fleet["state_dir"]) == ([], [])
    host.heals = {"restart"}
    assert wd.run(fleet, host=host)["incidents"][0]["result"] == "recovered"


def test_attempts_older_than_the_window_do_not_count(fleet, monkeypatch):
    host = ScriptedHost(heals=())
    runner_tracking(monkeypatch, host)
    old = wd.now_utc().timestamp() - 4000
    with open(os.path.join(fleet["state_dir"], wd_state.BREAKER_NAME), "w", encoding="utf-8") as handle:
        json.dump({"coder": {"attempts": [old, old, old]}}, handle)
    assert wd.run(fleet, host=host)["incidents"][0]["result"] == "not_recovered"


# --------------------------------------------------------------- lock

def test_a_second_run_says_the_lock_is_held_and_does_nothing(fleet):
    host = ScriptedHost()
    with wd_state.run_lock(fleet["state_dir"]):
        with pytest.raises(wd_host.LockHeld, match="lock held by another watchdog run .PID %d" % os.getpid()):
            wd.run(fleet, host=host)
    assert host.calls == [] and not os.path.exists(fleet["incident_log"])


def test_main_reports_a_held_lock_and_exits_zero(fleet, tmp_path, capsys):
    path = tmp_path / "watchdog.json"
    path.write_text(json.dumps(fleet))
    with wd_state.run_lock(fleet["state_dir"]):
        assert wd.main(["--config", str(path)]) == 0
    assert "lock held by another watchdog run" in capsys.readouterr().out
    assert wd.main(["--config", str(tmp_path / "missing.json")]) == 1


def test_the_oversight_audit_reports_each_incident_once_written(fleet, monkeypatch):
    host = ScriptedHost()
    runner_tracking(monkeypatch, host)
    started = wd.now_utc()
    wd.run(fleet, host=host)
    [found] = audit_checks.check_incidents(fleet["incident_log"], started)
    assert (found["rule"], found["agent"]) == ("watchdog-incident", "coder")
    assert "-> restart (recovered)" in found["summary"]
    assert audit_checks.check_incidents(fleet["incident_log"], wd.now_utc()) == []


def test_unreadable_unit_states_change_nothing(fleet, monkeypatch):
    """The user manager does not answer: every agent would look down, and
    restoring last-good over a fresh config would be the wrong cure."""
    host = ScriptedHost()
    runner_tracking(monkeypatch, host)

    def unreadable(units):
        raise wd_host.HostUnreadable("cannot read the unit states of agent's user manager (systemctl exited 1: bus)")
    host.units = unreadable
    summary = wd.run(fleet, host=host)
    assert summary["incidents"] == [] and summary["healthy"] == []
    assert summary["unreadable"] and "coder" in summary["unreadable"][0]
    assert not any(c[0] == "systemctl" for c in host.calls) and not os.path.exists(fleet["incident_log"])


def test_an_agent_s_log_is_read_from_its_own_directory_never_through_a_link(tmp_path):
    """Each gateway logs into STATE/logs (logging.file): coder-1's log
    cannot be taken for coder's, whatever the names."""
    for name in ("coder", "coder-1"):
        (tmp_path / name / "logs").mkdir(parents=True)
    (tmp_path / "coder-1" / "logs" / "openclaw-2026-11-28.log").write_text("coder-1's secret line\n")
    assert wd_diagnosis.gateway_log(str(tmp_path / "coder"), 10) == ""
    assert "coder-1's secret line" in wd_diagnosis.gateway_log(str(tmp_path / "coder-1"), 10)
    (tmp_path / "coder" / "logs" / "openclaw-2026-11-29.log").symlink_to("/etc/hostname")
    assert wd_diagnosis.gateway_log(str(tmp_path / "coder"), 10).startswith("(not read:")
    (tmp_path / "coder-1" / "logs").rename(tmp_path / "elsewhere")
    (tmp_path / "coder-1" / "logs").symlink_to(tmp_path / "elsewhere")
    assert wd_diagnosis.gateway_log(str(tmp_path / "coder-1"), 10).startswith("(not read:")


@pytest.mark.parametrize("work", ["staged", "hold file", "config change"])
def test_deliberate_work_is_left_alone_and_said(fleet, monkeypatch, tmp_path, work):
    """A stopped gateway that a playbook is working on is not a failure."""
    host = ScriptedHost()
    runner_tracking(monkeypatch, host)
    agent = fleet["agents"][0]
    if work == "staged":
        fleet["staged"] = True
    elif work == "hold file":
        fleet["hold_dir"] = str(tmp_path / "hold")
        (tmp_path / "hold").mkdir()
        (tmp_path / "hold" / "coder").write_text("upgrade.yml is moving it\n")
    if work == "config change":
        store = config_txn.ConfigStore(agent["config"])
        with store.lock():
            summary = wd.run(fleet, host=host)
    else:
        summary = wd.run(fleet, host=host)
    assert summary["incidents"] == [] and len(summary["held"]) == 1 and summary["held"][0].startswith("coder (")
    assert not any(c[0] == "systemctl" and c[1] in ("restart", "start") for c in host.calls)
    if work == "hold file":
        old = os.path.getmtime(tmp_path / "hold" / "coder") - wd_diagnosis.HOLD_MAX_AGE - 60
        os.utime(tmp_path / "hold" / "coder", (old, old))
        assert wd.run(fleet, host=host)["incidents"], "a stale hold must not keep an agent down forever"


def test_an_agents_manager_cannot_speak_for_another_agents_unit(monkeypatch):
    # Agent a owns its bus socket: its "manager" also answers for b's unit.
    monkeypatch.setattr(wd_host.pwd, "getpwnam", lambda name: wd_host.pwd.struct_passwd((name, "x", 1001, 1001, "", "/h", "/bin/sh")))
    answer = ("Id=openclaw-gateway-a.service\nActiveState=active\n\n"
              "Id=openclaw-gateway-b.service\nActiveState=failed\n")
    monkeypatch.setattr(wd_host, "run_command", lambda argv, env=None, timeout=120: (0, answer, ""))
    states = wd_host.Host("openclaw-a").units(["openclaw-gateway-a.service"])
    assert list(states) == ["openclaw-gateway-a.service"]


def test_forged_numbers_and_long_values_from_a_manager_are_cleaned(monkeypatch):
    monkeypatch.setattr(wd_host.pwd, "getpwnam", lambda name: wd_host.pwd.struct_passwd((name, "x", 1001, 1001, "", "/h", "/bin/sh")))
    answer = ("Id=openclaw-gateway-a.service\nActiveState=active\nActiveEnterTimestampMonotonic=x\n"
              "NRestarts=\u00b2\nSubState=%s\nBogus=1\n" % ("r" * 5000))
    monkeypatch.setattr(wd_host, "run_command", lambda argv, env=None, timeout=120: (0, answer, ""))
    props = wd_host.Host("openclaw-a").units(["openclaw-gateway-a.service"])["openclaw-gateway-a.service"]
    assert props["ActiveEnterTimestampMonotonic"] == "0" and props["NRestarts"] == "0"
    assert len(props["SubState"]) == 256 and "Bogus" not in props


def test_a_gateway_over_its_memory_budget_gets_a_planned_restart_through_the_breaker(fleet, monkeypatch):
    host = ScriptedHost(state="active", substate="running")
    host.props.update(MemoryCurrent=str(1900 << 20), MemoryMax=str(2048 << 20))
    monkeypatch.setattr(host, "probe", lambda url, body=None: (True, "ok"), raising=False)
    assert wd.run(dict(fleet, memory_budget_percent=0), host=host)["healthy"] == ["coder"]
    host.pending = "restart"
    summary = wd.run(dict(fleet, memory_budget_percent=90), host=host)
    [incident] = incidents(fleet)
    assert incident["symptom"] == "memory 1900.0 MiB over its budget 1843.2 MiB (90 % of MemoryMax 2048.0 MiB)"
    assert incident["action"] == "restart" and incident["llm"]["used"] is False and summary["healthy"] == []
    assert ("systemctl", "restart", "openclaw-gateway-coder.service") in host.calls
    assert len(wd_state.load_breaker(fleet["state_dir"])["coder"]["attempts"]) == 1
    host.props.update(MemoryCurrent=str(1000 << 20))
    assert wd.run(dict(fleet, memory_budget_percent=90), host=host)["healthy"] == ["coder"]
