"""gateway_reload: the gateway's reload verdicts read from its own log,
an agent's file, so bounded and never followed through a link."""

import json
import os

from ansible_collections.agentfleet.vps.plugins.module_utils import gateway_reload as gr


def line(message, subsystem="gateway/reload"):
    binding = json.dumps({"subsystem": subsystem})
    return json.dumps({"0": binding, "1": message, "_meta": {"name": binding, "logLevelName": "INFO"},
                       "time": "2026-12-01T02:42:34.658+00:00", "message": message})


def test_each_verdict_of_openclaw_is_recognised():
    cases = {
        "config hot reload applied (agents.defaults.model.primary)": "applied",
        "config change applied (dynamic reads: logging.level)": "applied",
        "config change requires gateway restart (gateway.controlUi.basePath) \u2014 preparing": "restart",
        "config reload skipped (invalid config): gateway.port: expected number": "invalid",
        "config reload failed: Error: boom": "failed",
        "config reload disabled (gateway.reload.mode=off)": "off",
    }
    for message, outcome in cases.items():
        assert gr.verdict(line(message)) == (outcome, message)


def test_other_lines_are_no_verdict():
    assert gr.verdict(line("config change detected; evaluating reload (x)")) is None
    assert gr.verdict(line("config hot reload applied (x)", subsystem="agent/embedded")) is None
    assert gr.verdict("config hot reload applied (x)") is None  # not JSON
    assert gr.verdict("[1, 2]") is None
    assert gr.verdict(line("config hot reload applied (%s)" % ("x" * 5000))) is None  # over LINE_MAX


def write(path, *lines):
    with open(path, "a") as handle:
        handle.write("".join(entry + "\n" for entry in lines))


def test_the_tail_reads_only_what_came_after_the_mark_and_follows_midnight(tmp_path):
    today = tmp_path / "openclaw-2026-12-01.log"
    write(today, line("config hot reload applied (old)"))
    tail = gr.LogTail(str(tmp_path))
    tail.mark()
    assert tail.lines() == []
    with open(today, "a") as handle:
        handle.write(line("config change detected; evaluating reload (a)") + "\n" + line("partial")[:20])
    assert [json.loads(entry)["message"] for entry in tail.lines()] == ["config change detected; evaluating reload (a)"]
    write(today, "")  # the partial line ends: whole now, and no verdict
    assert [gr.verdict(entry) for entry in tail.lines()] == [None]
    write(tmp_path / "openclaw-2026-12-02.log", line("config hot reload applied (a)"))
    found = [gr.verdict(entry) for entry in tail.lines() + tail.lines()]
    assert ("applied", "config hot reload applied (a)") in found


def test_wait_verdict_takes_the_first_and_times_out_without_one(tmp_path):
    log = tmp_path / "openclaw-2026-12-01.log"
    write(log, "")
    tail = gr.LogTail(str(tmp_path))
    tail.mark()
    write(log, "not json", line("config change requires gateway restart (gateway.bind)"),
          line("config hot reload applied (later)"))
    assert gr.wait_verdict(tail, 1, sleep=lambda s: None)[0] == "restart"
    # what came after the first verdict is still there for the next wait
    assert gr.wait_verdict(tail, 1, sleep=lambda s: None)[0] == "applied"
    clock = iter(range(100)).__next__
    outcome, why = gr.wait_verdict(tail, 3, sleep=lambda s: None, clock=clock)
    assert outcome is None and "no reload verdict" in why


def test_a_link_in_place_of_the_log_is_not_followed(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text(line("config hot reload applied (forged through a link)") + "\n")
    logs = tmp_path / "logs"
    logs.mkdir()
    os.symlink(secret, logs / "openclaw-2026-12-01.log")
    tail = gr.LogTail(str(logs))
    tail.mark()
    outcome, why = gr.wait_verdict(tail, 0, sleep=lambda s: None)
    assert outcome is None and "unreadable" in why


def test_the_gateways_own_restart_is_complete_at_gateway_ready(tmp_path):
    log = tmp_path / "openclaw-2026-12-01.log"
    write(log, "")
    tail = gr.LogTail(str(tmp_path))
    tail.mark()
    # What an in-process restart logs: none of it but the last line ends the wait.
    write(log, line("received SIGUSR1; restarting", subsystem="gateway"),
          line("restart mode: in-process restart (OPENCLAW_NO_RESPAWN)", subsystem="gateway"),
          line("http server listening (13 plugins; 9.5s)", subsystem="gateway"),
          line("gateway ready", subsystem="gateway/forged"))
    clock = iter(range(100)).__next__
    outcome, why = gr.wait_restarted(tail, 3, sleep=lambda s: None, clock=clock)
    assert outcome is None and "'gateway ready' after the restart" in why
    write(log, line("gateway ready", subsystem="gateway"))
    assert gr.wait_restarted(tail, 1, sleep=lambda s: None) == ("ready", "gateway ready")


def test_a_failed_restart_ends_the_wait(tmp_path):
    log = tmp_path / "openclaw-2026-12-01.log"
    write(log, "")
    tail = gr.LogTail(str(tmp_path))
    tail.mark()
    write(log, line("config restart failed: Error: EADDRINUSE"))
    assert gr.wait_restarted(tail, 1, sleep=lambda s: None)[0] == "failed"


def test_keys_only_a_new_process_reads():
    base = {"gateway": {"bind": "loopback", "controlUi": {"basePath": "/a"}}, "agents": {"x": 1}}
    assert not gr.needs_process_restart(base, {**base, "agents": {"x": 2}})
    assert not gr.needs_process_restart(base, {**base, "gateway": {"bind": "loopback", "controlUi": {"basePath": "/b"}}})
    assert gr.needs_process_restart(base, {**base, "gateway": {"bind": "lan", "controlUi": {"basePath": "/a"}}})
    # the whole gateway block replaced, or a TLS block added under it
    assert gr.needs_process_restart(base, {"agents": {"x": 1}})
    assert gr.needs_process_restart(base, {**base, "gateway": dict(base["gateway"], tls={"enabled": True})})
    assert gr.changed_keys({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}}) == {"a.c"}
