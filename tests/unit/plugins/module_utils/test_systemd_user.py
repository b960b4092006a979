"""systemd_user.exited: when a readiness wait stops waiting."""

import pytest

from ansible_collections.agentfleet.vps.plugins.module_utils.systemd_user import exited, restart, running


@pytest.mark.parametrize("props", [
    {"ActiveState": "failed", "SubState": "failed", "Result": "exit-code", "ExecMainStatus": "78"},
    {"ActiveState": "activating", "SubState": "auto-restart", "Result": "exit-code", "ExecMainStatus": "1"},
    {"ActiveState": "inactive", "SubState": "dead", "Result": "success", "ExecMainStatus": "0"},
])
def test_a_unit_whose_process_is_gone_says_why(props):
    assert exited(props) == "unit %s/%s (result %s, exit status %s)" % (
        props["ActiveState"], props["SubState"], props["Result"], props["ExecMainStatus"])


@pytest.mark.parametrize("props", [
    {"ActiveState": "active", "SubState": "running"},
    {"ActiveState": "activating", "SubState": "start-pre"},
    {"ActiveState": "reloading", "SubState": "reload"},
    {},  # unreadable: the probes alone decide
])
def test_a_running_or_starting_unit_is_waited_for(props):
    assert exited(props) is None


@pytest.mark.parametrize("state, runs", [("active", True), ("activating", True), ("reloading", True),
                                         ("deactivating", False), ("inactive", False), ("failed", False), ("", False)])
def test_running_is_what_a_stop_has_to_stop(state, runs):
    assert running({"ActiveState": state} if state else {}) is runs


def test_a_child_gets_none_of_the_callers_environment_but_path_and_locale(monkeypatch):
    from ansible_collections.agentfleet.vps.plugins.module_utils.systemd_user import run_command
    monkeypatch.setenv("OPERATOR_SECRET", "s3cret")
    monkeypatch.setenv("LANG", "C.UTF-8")
    rc, out, dummy = run_command(["env"], {"XDG_RUNTIME_DIR": "/run/user/1001"})
    assert rc == 0 and "s3cret" not in out
    assert "LANG=C.UTF-8" in out.splitlines() and "XDG_RUNTIME_DIR=/run/user/1001" in out.splitlines()
    assert any(line.startswith("PATH=") for line in out.splitlines())


def test_restart_resets_the_start_counter_first_and_passes_the_flags():
    calls = []

    def systemctl(*args):
        calls.append(args)
        return 0, "", ""

    assert restart(systemctl, "a.service") == (0, "", "")
    assert restart(systemctl, ["a.service", "b.service"], "start", "--no-block") == (0, "", "")
    assert calls == [("reset-failed", "a.service"), ("restart", "a.service"),
                     ("reset-failed", "a.service", "b.service"), ("start", "--no-block", "a.service", "b.service")]
