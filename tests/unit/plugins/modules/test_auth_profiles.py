"""auth_profiles: the store gets SecretRef profiles through OpenClaw's own
`secrets apply` on a copy of the config, once; a re-run runs nothing."""

import json
import os
import sqlite3

import pytest
from ansible.module_utils.basic import AnsibleModule

from ansible_collections.agentfleet.vps.plugins.module_utils import auth_store
from ansible_collections.agentfleet.vps.plugins.modules import auth_profiles

PROFILES = {"anthropic": [["anthropic:key-1", "ANTHROPIC_API_KEY"], ["anthropic:key-2", "ANTHROPIC_API_KEY_2"]]}
CONFIG = b'{"auth": {"order": {"anthropic": ["anthropic:key-1", "anthropic:key-2"]}}}\n'


def write_store(state_dir, profiles):
    path = auth_store.store_path(str(state_dir))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE IF NOT EXISTS auth_profile_store (store_key TEXT NOT NULL PRIMARY KEY, "
                 "store_json TEXT NOT NULL, updated_at INTEGER NOT NULL) STRICT")
    conn.execute("INSERT OR REPLACE INTO auth_profile_store VALUES ('primary', ?, 0)",
                 (json.dumps({"version": 1, "profiles": profiles}),))
    conn.commit()
    conn.close()


@pytest.fixture
def agent(tmp_path, me):
    state = tmp_path / ".openclaw-coder"
    state.mkdir()
    (state / "openclaw.json").write_bytes(CONFIG)
    (state / "gateway.env").write_text('ANTHROPIC_API_KEY="sk-one"\nANTHROPIC_API_KEY_2="sk-two"\n')
    return {"name": "coder", "user": me, "state_dir": str(state), "profiles": PROFILES}


@pytest.fixture
def openclaw(monkeypatch):
    """OpenClaw's CLI as seen through run_command: apply writes the plan's
    refs into the store and rewrites the config it was given, as the real
    one does; every call is recorded."""
    calls = []

    def run_command(self, argv, environ_update=None, cwd=None, **kwargs):
        calls.append({"argv": argv, "env": dict(environ_update or {})})
        if "apply" in argv:
            plan = json.load(open(argv[argv.index("--from") + 1], encoding="utf-8"))
            if not openclaw.broken:
                write_store(environ_update["OPENCLAW_STATE_DIR"], {
                    t["pathSegments"][1]: {"type": "api_key", "provider": t["authProfileProvider"], "keyRef": t["ref"]}
                    for t in plan["targets"]})
            with open(environ_update["OPENCLAW_CONFIG_PATH"], "w", encoding="utf-8") as handle:
                handle.write('{"rewritten": true}\n')
            return 0, '{"mode": "write", "changed": true}', ""
        return 0, 'warning first\n{"ok": true}', ""
    openclaw.broken = False
    openclaw.calls = calls
    monkeypatch.setattr(AnsibleModule, "run_command", run_command)
    return openclaw


def test_profiles_are_applied_as_the_agent_once(run_module, agent, openclaw):
    result = run_module(auth_profiles, {"agents": [agent]}, diff=True)
    assert result["changed"] and result["changed_agents"] == ["coder"]
    apply, reload = openclaw.calls
    assert apply["argv"][:5] == ["runuser", "-u", agent["user"], "--", "/opt/agentfleet/bin/openclaw"]
    assert apply["argv"][5:7] == ["secrets", "apply"]
    # The deployed config is never the one OpenClaw rewrites.
    assert apply["env"]["OPENCLAW_CONFIG_PATH"] != os.path.join(agent["state_dir"], "openclaw.json")
    assert open(os.path.join(agent["state_dir"], "openclaw.json"), "rb").read() == CONFIG
    assert apply["env"]["OPENCLAW_STATE_DIR"] == agent["state_dir"] and apply["env"]["ANTHROPIC_API_KEY_2"] == "sk-two"
    assert reload["argv"][5:] == ["--profile", "coder", "secrets", "reload", "--json"]
    assert result["reload"]["coder"]["ok"] is True
    stored = auth_store.stored(agent["state_dir"])
    assert stored["anthropic:key-2"]["keyRef"] == {"source": "env", "provider": "default", "id": "ANTHROPIC_API_KEY_2"}
    # The diff names profiles and variables, never a key.
    assert "anthropic:key-2 -> ANTHROPIC_API_KEY_2" in result["diff"]["after"]
    assert "sk-" not in json.dumps(result)

    again = run_module(auth_profiles, {"agents": [agent]})
    assert not again["changed"] and len(openclaw.calls) == 2


def test_check_mode_reports_and_runs_nothing(run_module, agent, openclaw):
    result = run_module(auth_profiles, {"agents": [agent]}, check_mode=True)
    assert result["changed"] and openclaw.calls == []
    assert auth_store.stored(agent["state_dir"]) == {}


def test_a_changed_ref_is_written_again(run_module, agent, openclaw):
    other = {"source": "env", "provider": "default", "id": "SOMETHING_ELSE"}
    write_store(agent["state_dir"], {"anthropic:key-1": {"type": "api_key", "provider": "anthropic", "keyRef": other}})
    assert auth_store.missing(auth_store.wanted(PROFILES), auth_store.stored(agent["state_dir"])) == \
        ["anthropic:key-1", "anthropic:key-2"]
    assert run_module(auth_profiles, {"agents": [agent]})["changed"]


def test_an_apply_that_writes_nothing_fails(run_module, agent, openclaw):
    openclaw.broken = True
    result = run_module(auth_profiles, {"agents": [agent]})
    assert result["failed"] and "still lacks anthropic:key-1, anthropic:key-2" in result["msg"]


def test_a_link_in_place_of_the_store_is_not_read(tmp_path, agent):
    other = tmp_path / "other"
    write_store(other, {"anthropic:key-1": auth_store.wanted(PROFILES)["anthropic:key-1"]})
    path = auth_store.store_path(agent["state_dir"])
    os.makedirs(os.path.dirname(path))
    os.symlink(auth_store.store_path(str(other)), path)
    assert auth_store.stored(agent["state_dir"]) == {}


def test_agents_without_profiles_are_skipped(run_module, agent, openclaw):
    result = run_module(auth_profiles, {"agents": [dict(agent, profiles={})]})
    assert not result["changed"] and openclaw.calls == []


def test_the_plan_targets_each_profile_with_its_env_ref():
    plan = auth_store.plan(auth_store.wanted(PROFILES))
    assert [(t["path"], t["ref"]["id"], t["agentId"], t["authProfileProvider"]) for t in plan["targets"]] == [
        ("profiles.anthropic:key-1.key", "ANTHROPIC_API_KEY", "main", "anthropic"),
        ("profiles.anthropic:key-2.key", "ANTHROPIC_API_KEY_2", "main", "anthropic")]


def test_the_cli_runs_share_the_agent_s_own_compile_cache(run_module, agent, openclaw):
    cache = os.path.join(agent["state_dir"], "compile-cache")
    run_module(auth_profiles, {"agents": [dict(agent, compile_cache=cache)]})
    for call in openclaw.calls:
        assert call["env"]["NODE_COMPILE_CACHE"] == cache
        # No re-exec of the launcher into a child to move the cache.
        assert call["env"]["OPENCLAW_PACKAGED_COMPILE_CACHE_RESPAWNED"] == "1"
