"""agent_files: one call writes a fleet's files, validated, atomically."""

import json
import os
import pwd
import stat

import pytest

from ansible_collections.agentfleet.vps.plugins.modules import agent_files


def args(tmp_path, me, **extra):
    base = {
        "owner": me,
        "directories": [{"path": str(tmp_path / "a"), "agent": "a"}],
        "files": [{"path": str(tmp_path / "a" / "openclaw.json"), "content": '{"x": 1}\n', "mode": "0600", "agent": "a"},
                  {"path": str(tmp_path / "b.service"), "content": "[Unit]\n", "agent": "b"}],
        "env_files": [{"path": str(tmp_path / "a" / "gateway.env"), "agent": "a",
                       "values": {"ANTHROPIC_API_KEY": "sk-secret-value"}, "generate": ["OPENCLAW_GATEWAY_TOKEN"]}],
    }
    base.update(extra)
    return base


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_first_run_writes_everything_with_modes(tmp_path, me, run_module):
    result = run_module(agent_files, args(tmp_path, me))
    assert result["changed"] is True
    assert result["changed_agents"] == ["a", "b"]
    assert mode(tmp_path / "a") == 0o700
    assert mode(tmp_path / "a" / "openclaw.json") == 0o600
    assert mode(tmp_path / "a" / "gateway.env") == 0o600
    env = (tmp_path / "a" / "gateway.env").read_text()
    assert 'ANTHROPIC_API_KEY="sk-secret-value"' in env
    assert "OPENCLAW_GATEWAY_TOKEN=" in env


def test_second_run_changes_nothing_and_keeps_the_token(tmp_path, me, run_module):
    run_module(agent_files, args(tmp_path, me))
    token_before = (tmp_path / "a" / "gateway.env").read_text()
    result = run_module(agent_files, args(tmp_path, me))
    assert result["changed"] is False and result["changed_agents"] == []
    assert (tmp_path / "a" / "gateway.env").read_text() == token_before


def test_only_the_changed_agent_is_reported(tmp_path, me, run_module):
    run_module(agent_files, args(tmp_path, me))
    changed = args(tmp_path, me)
    changed["files"][1]["content"] = "[Unit]\nDescription=new\n"
    result = run_module(agent_files, changed)
    assert result["changed_agents"] == ["b"]
    assert result["changed_paths"] == [str(tmp_path / "b.service")]


def test_check_mode_writes_nothing(tmp_path, me, run_module):
    result = run_module(agent_files, args(tmp_path, me), check_mode=True)
    assert result["changed"] is True
    assert not (tmp_path / "a").exists()


def test_rejected_candidate_writes_nothing_at_all(tmp_path, me, run_module):
    bad = args(tmp_path, me)
    bad["files"][0]["validate"] = "/bin/sh -c 'grep -q valid %s || { echo bad value at gateway.mode; exit 1; }'"
    result = run_module(agent_files, bad)
    assert result["failed"] is True
    assert "bad value at gateway.mode" in result["msg"]
    assert "nothing was written" in result["msg"]
    assert not (tmp_path / "a").exists() and not (tmp_path / "b.service").exists()


def test_accepted_candidate_is_written(tmp_path, me, run_module):
    good = args(tmp_path, me)
    good["files"][0]["validate"] = "/bin/sh -c 'test -s %s'"
    assert run_module(agent_files, good)["changed"] is True
    assert (tmp_path / "a" / "openclaw.json").read_text() == '{"x": 1}\n'


def test_diff_never_shows_secret_values(tmp_path, me, run_module):
    result = run_module(agent_files, args(tmp_path, me), diff=True)
    text = repr(result)
    assert "sk-secret-value" not in text
    token = (tmp_path / "a" / "gateway.env").read_text().split("OPENCLAW_GATEWAY_TOKEN=")[1].strip().strip('"')
    assert token not in text
    assert any("ANTHROPIC_API_KEY" in d["after"] for d in result["diff"])


def test_a_secret_file_is_written_0600_and_never_shown(tmp_path, me, run_module):
    secret = {"path": str(tmp_path / "secrets.json"), "content": '{"webhook_url": "https://hooks.example/T0/s3cr3t"}\n'}
    result = run_module(agent_files, {"owner": me, "secret_files": [secret]}, diff=True)
    assert result["changed"] is True
    assert mode(secret["path"]) == 0o600
    assert (tmp_path / "secrets.json").read_text() == secret["content"]
    assert "s3cr3t" not in repr(result)
    assert result["diff"][0]["after"] == "(secret, changed)\n"
    again = run_module(agent_files, {"owner": me, "secret_files": [secret]}, diff=True)
    assert again["changed"] is False


def test_absent_paths_are_removed(tmp_path, me, run_module):
    run_module(agent_files, args(tmp_path, me))
    result = run_module(agent_files, {"owner": me, "absent": [{"path": str(tmp_path / "a"), "agent": "a"},
                                                              {"path": str(tmp_path / "gone"), "agent": "c"}]})
    assert result["changed_agents"] == ["a"]
    assert not (tmp_path / "a").exists()


def test_check_mode_before_the_owner_exists(tmp_path, run_module):
    result = run_module(agent_files, args(tmp_path, "no-such-user-yet"), check_mode=True)
    assert result["changed"] is True and result["changed_agents"] == ["a", "b"]
    assert not (tmp_path / "a").exists()
    assert run_module(agent_files, args(tmp_path, "no-such-user-yet"))["failed"] is True


def test_check_mode_without_the_validator_warns_instead_of_failing(tmp_path, me, run_module):
    candidate = args(tmp_path, me)
    candidate["files"][0]["validate"] = "/usr/bin/env /no/such/validator %s"
    result = run_module(agent_files, candidate, check_mode=True)
    assert result["changed"] is True
    assert "not validated" in repr(result["warnings"])
    assert run_module(agent_files, candidate)["failed"] is True


SCHEMA = {"type": "object", "properties": {"x": {"type": "integer"}}, "additionalProperties": False}


def managed(tmp_path, me, content):
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    candidate = args(tmp_path, me)
    candidate["files"][0].update(content=content, schema=str(schema), backup=True)
    return candidate


def test_managed_config_is_backed_up_and_logged(tmp_path, me, run_module):
    run_module(agent_files, managed(tmp_path, me, '{"x": 1}\n'))
    run_module(agent_files, managed(tmp_path, me, '{"x": 2}\n'))
    backups = tmp_path / "a" / "config-backups"
    assert [p.read_text() for p in sorted(backups.glob("openclaw.json.*.bak"))] == ['{"x": 1}\n']
    log = [json.loads(line) for line in (backups / "changes.jsonl").read_text().splitlines()]
    assert [entry["result"] for entry in log] == ["applied", "applied"]
    assert log[1]["backup"].endswith(".bak") and log[1]["checksum_before"] != log[1]["checksum_after"]
    assert not (backups / "openclaw.json.last-good").exists()  # readiness moves it, not the write


def test_schema_violation_rejects_the_call_with_json_paths(tmp_path, me, run_module):
    run_module(agent_files, managed(tmp_path, me, '{"x": 1}\n'))
    result = run_module(agent_files, managed(tmp_path, me, '{"x": "one", "y": 2}\n'))
    assert result["failed"] and "$.x: 'one' is not of type 'integer'" in result["msg"]
    assert (tmp_path / "a" / "openclaw.json").read_text() == '{"x": 1}\n'
    log = (tmp_path / "a" / "config-backups" / "changes.jsonl").read_text().splitlines()
    assert json.loads(log[-1])["result"] == "rejected"


def test_a_root_owned_sticky_workspace_is_created_and_kept(tmp_path, me, run_module):
    """A workspace the agent writes but whose root-owned files it cannot
    remove: root's, the call's group, 1770; a second run changes nothing."""
    workspace = {"path": str(tmp_path / "a" / "workspace"), "mode": "1770", "root_owned": True, "agent": "a"}
    given = args(tmp_path, me, directories=args(tmp_path, me)["directories"] + [workspace])
    run_module(agent_files, given)
    info = os.stat(tmp_path / "a" / "workspace")
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o1770)
    assert info.st_gid == os.stat(tmp_path / "a").st_gid
    assert run_module(agent_files, given)["changed"] is False
    os.chmod(tmp_path / "a" / "workspace", 0o700)
    assert run_module(agent_files, given)["changed_paths"] == [str(tmp_path / "a" / "workspace")]
    assert mode(tmp_path / "a" / "workspace") == 0o1770


def test_each_entry_may_have_its_own_owner(tmp_path, run_module):
    """One call for the whole fleet, each agent's files its own user's."""
    if os.geteuid() != 0:
        pytest.fail("chown to another user needs root; make test runs the unit tests as root")
    other = pwd.getpwnam("nobody")
    given = {
        "owner": "root",
        "directories": [{"path": str(tmp_path / "a"), "agent": "a"},
                        {"path": str(tmp_path / "b"), "agent": "b", "owner": "nobody"},
                        {"path": str(tmp_path / "b" / "workspace"), "agent": "b", "owner": "nobody",
                         "mode": "1770", "root_owned": True}],
        "files": [{"path": str(tmp_path / "b" / "openclaw.json"), "content": "{}\n", "agent": "b", "owner": "nobody"}],
        "env_files": [{"path": str(tmp_path / "b" / "gateway.env"), "agent": "b", "owner": "nobody", "values": {"K": "v"}}],
    }
    run_module(agent_files, given)
    owners = {name: (os.stat(tmp_path / name).st_uid, os.stat(tmp_path / name).st_gid)
              for name in ("a", "b", "b/openclaw.json", "b/gateway.env", "b/workspace")}
    assert owners["a"] == (0, 0)
    for name in ("b", "b/openclaw.json", "b/gateway.env"):
        assert owners[name] == (other.pw_uid, other.pw_gid), name
    assert owners["b/workspace"] == (0, other.pw_gid)
    assert run_module(agent_files, given)["changed"] is False


def test_an_entry_without_any_owner_is_refused(tmp_path, run_module):
    failed = run_module(agent_files, {"directories": [{"path": str(tmp_path / "a")}]})
    assert failed["failed"] is True and "has no owner" in failed["msg"]
    assert not (tmp_path / "a").exists()


@pytest.fixture
def manager(monkeypatch, tmp_path):
    """The user manager agent_files asks: the unit's ActiveState, and each
    systemctl call with what openclaw.json held when it was made."""
    seen = {"state": "active", "calls": []}
    config = tmp_path / "a" / "openclaw.json"

    def run_command(self, argv, environ_update=None, **kwargs):
        verb = argv[argv.index("--no-pager") + 1]
        seen["calls"].append((verb, config.read_text() if config.exists() else None))
        if verb == "show":
            return 0, "Id=%s\nActiveState=%s\n" % (argv[-1], seen["state"]), ""
        return 0, "", ""
    monkeypatch.setattr(agent_files.AnsibleModule, "run_command", run_command)
    return seen


def watched(tmp_path, me, content):
    candidate = managed(tmp_path, me, content)
    candidate["files"][0]["stop_unit"] = "openclaw-gateway-a.service"
    return candidate


def test_a_running_gateway_is_stopped_before_its_config_is_replaced(tmp_path, me, run_module, manager):
    run_module(agent_files, watched(tmp_path, me, '{"x": 1}\n'))
    assert manager["calls"] == []  # a new file: no gateway runs on it yet
    result = run_module(agent_files, watched(tmp_path, me, '{"x": 2}\n'))
    assert result["changed_agents"] == ["a"]
    # Stopped while the old file was still in place, so it never saw the new one.
    assert manager["calls"] == [("show", '{"x": 1}\n'), ("stop", '{"x": 1}\n')]
    assert (tmp_path / "a" / "openclaw.json").read_text() == '{"x": 2}\n'


def test_a_stopped_gateway_and_an_unchanged_config_are_left_alone(tmp_path, me, run_module, manager):
    run_module(agent_files, watched(tmp_path, me, '{"x": 1}\n'))
    manager["state"] = "inactive"
    run_module(agent_files, watched(tmp_path, me, '{"x": 2}\n'))
    assert [verb for verb, dummy in manager["calls"]] == ["show"]
    manager["state"], manager["calls"] = "active", []
    assert run_module(agent_files, watched(tmp_path, me, '{"x": 2}\n'))["changed"] is False
    assert manager["calls"] == []
