"""user_units: batch systemctl calls, decided from one `show`."""

import pwd

import pytest

from ansible_collections.agentfleet.vps.plugins.module_utils import systemd_user
from ansible_collections.agentfleet.vps.plugins.modules import user_units


class FakeSystemctl:
    def __init__(self, states):
        self.states = states
        self.calls = []

    def __call__(self, argv, environ_update=None, **kwargs):
        assert environ_update["XDG_RUNTIME_DIR"].startswith("/run/user/")
        args = argv[argv.index("--no-pager") + 1:] if "--no-pager" in argv else argv
        self.calls.append(args)
        if args[0] == "show":
            blocks = []
            for unit in args[2:]:
                props = dict(Id=unit, **self.states.get(unit, {"ActiveState": "inactive", "UnitFileState": "disabled"}))
                blocks.append("\n".join("%s=%s" % kv for kv in props.items()))
            return 0, "\n\n".join(blocks) + "\n", ""
        return 0, "", ""


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setattr(systemd_user.pwd, "getpwnam", lambda name: pwd.struct_passwd((name, "x", 1000, 1000, "", "/home/" + name, "/bin/sh")))
    holder = {}

    def install(states):
        holder["fake"] = FakeSystemctl(states)
        monkeypatch.setattr(user_units.AnsibleModule, "run_command", lambda self, argv, **kw: holder["fake"](argv, **kw))
        return holder["fake"]
    return install


def actions(fake):
    return [c for c in fake.calls if c[0] != "show"]


def test_new_units_are_enabled_and_started_in_one_call_each(fake, run_module):
    systemctl = fake({})
    result = run_module(user_units, {"user": "openclaw", "present": ["a.service", "b.service"], "restart": ["a.service"]})
    assert result["changed"] is True
    assert actions(systemctl) == [["enable", "a.service", "b.service"], ["reset-failed", "a.service", "b.service"],
                                  ["start", "a.service", "b.service"]]
    assert result["restarted"] == []  # just started: no second start


def test_units_of_two_users_go_to_their_own_managers(monkeypatch, fake, run_module):
    uids = {"openclaw-a": 1001, "openclaw-b": 1002}
    monkeypatch.setattr(systemd_user.pwd, "getpwnam",
                        lambda name: pwd.struct_passwd((name, "x", uids[name], uids[name], "", "/home/" + name, "/bin/sh")))
    seen = []
    systemctl = fake({})
    original = systemctl.__call__

    def record(argv, environ_update=None, **kwargs):
        seen.append((argv[2], environ_update["XDG_RUNTIME_DIR"], argv[argv.index("--no-pager") + 1:]))
        return original(argv, environ_update, **kwargs)
    monkeypatch.setattr(user_units.AnsibleModule, "run_command", lambda self, argv, **kw: record(argv, **kw))
    result = run_module(user_units, {"users": {"a.service": "openclaw-a", "b.service": "openclaw-b"},
                                     "present": ["a.service", "b.service"]})
    assert result["started"] == ["a.service", "b.service"]
    starts = [(user, run_dir, args) for user, run_dir, args in seen if args[0] == "start"]
    assert starts == [("openclaw-a", "/run/user/1001", ["start", "a.service"]),
                      ("openclaw-b", "/run/user/1002", ["start", "b.service"])]


def test_a_unit_without_a_user_is_refused(fake, run_module):
    fake({})
    failed = run_module(user_units, {"users": {"a.service": "openclaw-a"}, "present": ["a.service", "b.service"]})
    assert failed["failed"] is True and "none given for b.service" in failed["msg"]


def test_running_units_only_restart_what_changed(fake, run_module):
    running = {"ActiveState": "active", "UnitFileState": "enabled"}
    systemctl = fake({"a.service": running, "b.service": running})
    result = run_module(user_units, {"user": "openclaw", "present": ["a.service", "b.service"], "restart": ["b.service"]})
    assert actions(systemctl) == [["reset-failed", "b.service"], ["restart", "b.service"]]
    assert result["restarted"] == ["b.service"]


def test_nothing_to_do_is_unchanged(fake, run_module):
    running = {"ActiveState": "active", "UnitFileState": "enabled"}
    systemctl = fake({"a.service": running})
    result = run_module(user_units, {"user": "openclaw", "present": ["a.service"]})
    assert result["changed"] is False and actions(systemctl) == []


def test_staging_enables_without_starting(fake, run_module):
    systemctl = fake({})
    run_module(user_units, {"user": "openclaw", "present": ["a.service"], "start": False, "restart": ["a.service"]})
    assert actions(systemctl) == [["enable", "a.service"]]


def test_absent_units_are_stopped_and_disabled(fake, run_module):
    systemctl = fake({"old.service": {"ActiveState": "active", "UnitFileState": "enabled"}})
    result = run_module(user_units, {"user": "openclaw", "absent": ["old.service"]})
    assert actions(systemctl) == [["disable", "--now", "old.service"]]
    assert result["stopped"] == ["old.service"]


def test_check_mode_runs_only_show(fake, run_module):
    systemctl = fake({})
    result = run_module(user_units, {"user": "openclaw", "present": ["a.service"], "daemon_reload": True}, check_mode=True)
    assert result["changed"] is True and actions(systemctl) == []


def test_check_mode_before_the_user_exists_reports_everything_new(monkeypatch, run_module):
    def missing(name):
        raise KeyError(name)
    monkeypatch.setattr(systemd_user.pwd, "getpwnam", missing)
    result = run_module(user_units, {"user": "nobody-yet", "present": ["a.service"]}, check_mode=True)
    assert result["changed"] is True and result["started"] == ["a.service"]
    failed = run_module(user_units, {"user": "nobody-yet", "present": ["a.service"]})
    assert failed["failed"] is True and "nobody-yet does not exist" in failed["msg"]


def test_stop_leaves_units_enabled_and_only_stops_running_ones(fake, run_module):
    systemctl = fake({"a.service": {"ActiveState": "active", "UnitFileState": "enabled"},
                      "b.service": {"ActiveState": "inactive", "UnitFileState": "enabled"}})
    result = run_module(user_units, {"user": "openclaw", "stop": ["a.service", "b.service"]})
    assert actions(systemctl) == [["stop", "a.service"]]
    assert result["changed"] is True and result["stopped"] == ["a.service"]


def test_a_unit_stopped_and_present_in_one_call_is_started_again(fake, run_module):
    systemctl = fake({"a.service": {"ActiveState": "active", "UnitFileState": "enabled"}})
    result = run_module(user_units, {"user": "openclaw", "stop": ["a.service"], "present": ["a.service"]})
    assert actions(systemctl) == [["stop", "a.service"], ["reset-failed", "a.service"], ["start", "a.service"]]
    assert result["started"] == ["a.service"]


def test_a_failed_start_ends_with_the_journal_of_the_unit_that_is_down(fake, monkeypatch, run_module):
    systemctl = fake({"a.service": {"ActiveState": "failed", "UnitFileState": "enabled"},
                      "b.service": {"ActiveState": "active", "UnitFileState": "enabled"}})
    real = systemctl.__call__

    def failing_start(argv, environ_update=None, **kwargs):
        if "start" in argv:
            systemctl.calls.append(["start"])
            return 1, "", "Job for a.service failed because the control process exited with error code."
        return real(argv, environ_update=environ_update, **kwargs)
    monkeypatch.setattr(user_units.AnsibleModule, "run_command", lambda self, argv, **kw: failing_start(argv, **kw))
    monkeypatch.setattr(systemd_user.UserManager, "journal", lambda self, unit, lines=30: "%d lines of %s" % (lines, unit))
    result = run_module(user_units, {"user": "openclaw", "present": ["a.service", "b.service"], "journal_lines": 7})
    assert result["failed"] is True
    assert "control process exited" in result["msg"]
    assert "last 7 journal lines of a.service:\n7 lines of a.service" in result["msg"]
    assert "b.service" not in result["msg"].split("failed:", 1)[1]


def test_the_journal_holds_the_units_output_and_its_managers_messages(monkeypatch):
    calls = []
    monkeypatch.setattr(systemd_user.pwd, "getpwnam",
                        lambda name: pwd.struct_passwd((name, "x", 1000, 1000, "", "/home/" + name, "/bin/sh")))
    manager = systemd_user.UserManager(lambda argv, **kw: calls.append(argv) or (0, "lines", ""), "openclaw")
    assert manager.journal("a.service", 5) == "lines"
    assert calls[0][calls[0].index("-n") + 1] == "5"
    assert "_SYSTEMD_USER_UNIT=a.service" in calls[0] and "USER_UNIT=a.service" in calls[0]
    assert calls[0].index("+") > calls[0].index("_SYSTEMD_USER_UNIT=a.service")


def test_an_agents_manager_cannot_speak_for_another_agents_unit(monkeypatch, fake, run_module):
    # Agent a owns its bus socket: its "manager" claims b's unit is running.
    uids = {"openclaw-a": 1001, "openclaw-b": 1002}
    monkeypatch.setattr(systemd_user.pwd, "getpwnam",
                        lambda name: pwd.struct_passwd((name, "x", uids[name], uids[name], "", "/home/" + name, "/bin/sh")))
    systemctl = fake({})
    honest = systemctl.__call__

    def forged(argv, environ_update=None, **kwargs):
        rc, out, err = honest(argv, environ_update, **kwargs)
        if argv[2] == "openclaw-a" and "show" in argv:
            out += "\nId=b.service\nActiveState=active\nUnitFileState=enabled\nExtra=%s\n" % ("x" * 5000)
        return rc, out, err
    monkeypatch.setattr(user_units.AnsibleModule, "run_command", lambda self, argv, **kw: forged(argv, **kw))
    result = run_module(user_units, {"users": {"a.service": "openclaw-a", "b.service": "openclaw-b"},
                                     "present": ["b.service", "a.service"]})
    assert result["started"] == ["b.service", "a.service"]
    assert set(result["states"]["b.service"]) <= set(systemd_user.SHOW_PROPERTIES)
