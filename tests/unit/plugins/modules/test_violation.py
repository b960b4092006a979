"""constitution_files and violation: render, record, amend, refuse."""

import json
import os
from pathlib import Path

import pytest
import yaml

from ansible_collections.agentfleet.vps.plugins.module_utils import constitution as law
from ansible_collections.agentfleet.vps.plugins.modules import constitution_files, violation

ROOT = Path(__file__).resolve().parents[4]
DEFAULTS = yaml.safe_load(open(ROOT / "roles/constitution/defaults/main.yml", encoding="utf-8"))
ENTRY = {"agent": "coder",
         "what": "Pushed commit abc123 to main while CI run 77 was red on test_login",
         "why": "The agent read the CI badge of the previous commit instead of this commit's status",
         "changed": "The push script now queries the status of the exact commit and refuses anything but success"}
AMENDMENT = "Before any push, quote the CI status of the exact commit being pushed"


@pytest.fixture
def fleet(tmp_path, me):
    agents = []
    for name, role in (("boss", "coordinator"), ("coder", "specialist"), ("qa", "specialist")):
        state = tmp_path / ("openclaw-" + name)
        (state / "workspace").mkdir(parents=True)
        (state / "openclaw.json").write_text(json.dumps({"agents": {"defaults": {"workspace": str(state / "workspace")}}}))
        (state / "workspace" / "AGENTS.md").write_text("# Seeded by OpenClaw\n")
        agents.append({"name": name, "role": role, "workspace": str(state / "workspace")})
    return {"state_dir": str(tmp_path / "law"), "owner": me, "agents": agents,
            "articles": DEFAULTS["constitution_articles"], "role_articles": DEFAULTS["constitution_role_articles"]}


def workspace(fleet, name):
    return Path(next(a["workspace"] for a in fleet["agents"] if a["name"] == name))


def snapshot(root):
    return {str(p): p.read_bytes() for p in Path(root).rglob("*") if p.is_file()}


def test_render_is_idempotent_and_keeps_handoff(fleet, run_module, tmp_path):
    first = run_module(constitution_files, fleet)
    assert first["changed"] and first["changed_agents"] == ["boss", "coder", "qa"]
    for name in ("boss", "coder", "qa"):
        for file in ("CONSTITUTION.md", "VIOLATIONS.md", "HANDOFF.md", "AGENTS.md"):
            assert (workspace(fleet, name) / file).is_file()
    handoff = workspace(fleet, "coder") / "HANDOFF.md"
    handoff.write_text("# HANDOFF\nmine\n")
    assert not run_module(constitution_files, fleet)["changed"]
    assert handoff.read_text() == "# HANDOFF\nmine\n"
    assert "Alerts first" in (workspace(fleet, "boss") / "CONSTITUTION.md").read_text()
    assert "Alerts first" not in (workspace(fleet, "coder") / "CONSTITUTION.md").read_text()


def test_a_removed_agent_is_a_change_the_check_reports(fleet, run_module):
    """Only the fleet record changes when an agent leaves: the role writes
    when its check-mode preflight lists a changed path, so it must be
    listed."""
    run_module(constitution_files, fleet)
    fleet["agents"] = [a for a in fleet["agents"] if a["name"] != "qa"]
    check = run_module(constitution_files, fleet, check_mode=True)
    assert check["changed"] and check["changed_agents"] == []
    assert check["changed_paths"] == [law.fleet_path(fleet["state_dir"])]
    run_module(constitution_files, fleet)
    assert [a["name"] for a in json.loads(Path(law.fleet_path(fleet["state_dir"])).read_text())["agents"]] == ["boss", "coder"]
    assert run_module(constitution_files, fleet, check_mode=True)["changed_paths"] == []


def test_the_agent_s_own_config_cannot_move_or_block_the_law(fleet, run_module, tmp_path):
    """An agent rewrites its openclaw.json: a workspace elsewhere, a tiny
    bootstrap limit, then JSON5. Neither moves the law nor blocks it."""
    config = workspace(fleet, "coder").parent / "openclaw.json"
    elsewhere = tmp_path / "elsewhere"
    config.write_text(json.dumps({"agents": {"defaults": {"workspace": str(elsewhere), "bootstrapMaxChars": 10}}}))
    first = run_module(constitution_files, fleet)
    assert not first.get("failed") and (workspace(fleet, "coder") / "CONSTITUTION.md").is_file()
    assert not elsewhere.exists()
    config.write_text("{agents: {defaults: {workspace: '/tmp',},},} // json5\n")
    assert not run_module(constitution_files, fleet).get("failed")


def test_law_files_are_root_s_and_a_link_in_their_place_is_replaced(fleet, run_module, tmp_path):
    run_module(constitution_files, fleet)
    target = tmp_path / "root-only"
    target.write_text("root only\n")
    law_file = workspace(fleet, "coder") / "CONSTITUTION.md"
    law_file.unlink()
    law_file.symlink_to(target)
    assert run_module(constitution_files, fleet)["changed"]
    assert not law_file.is_symlink() and target.read_text() == "root only\n"
    assert os.stat(law_file).st_uid == 0 and (os.stat(law_file).st_mode & 0o777) == 0o644


def test_check_mode_writes_nothing(fleet, run_module, tmp_path):
    before = snapshot(tmp_path)
    result = run_module(constitution_files, fleet, check_mode=True)
    assert result["changed"] and snapshot(tmp_path) == before


def test_oversized_constitution_fails_before_any_write(fleet, run_module, tmp_path):
    run_module(constitution_files, fleet)
    before = snapshot(tmp_path)
    huge = dict(fleet, extra_articles=[{"id": "XX", "title": "Long", "text": "word " * 5000}])
    result = run_module(constitution_files, huge)
    assert result["failed"] and "over the bootstrap limit of 20000" in result["msg"]
    assert snapshot(tmp_path) == before


def record(fleet, **extra):
    return dict(ENTRY, state_dir=fleet["state_dir"], **extra)


def test_violation_with_role_amendment(fleet, run_module):
    run_module(constitution_files, fleet)
    first = run_module(violation, record(fleet, severity="high", amendment=AMENDMENT, amendment_scope="role"))
    assert first["changed"] and first["recorded"] and first["affected_agents"] == ["coder", "qa"]
    second_entry = dict(ENTRY, what="Closed tickets 12, 13 and 14 with one wildcard query without listing them")
    run_module(violation, dict(record(fleet), **second_entry))
    ledger = law.read_ledger(os.path.join(fleet["state_dir"], "ledger.jsonl"))
    assert len(ledger) == 2
    for name, has in (("coder", True), ("qa", True), ("boss", False)):
        assert (AMENDMENT in (workspace(fleet, name) / "CONSTITUTION.md").read_text()) is has, name
        assert (AMENDMENT in (workspace(fleet, name) / "AGENTS.md").read_text()) is has, name
    assert "Closed tickets 12" in (workspace(fleet, "coder") / "VIOLATIONS.md").read_text()
    again = run_module(violation, record(fleet, severity="high", amendment=AMENDMENT, amendment_scope="role"))
    assert not again["changed"] and not again["recorded"]
    assert len(law.read_ledger(os.path.join(fleet["state_dir"], "ledger.jsonl"))) == 2
    # A later deploy renders the same files: nothing to change, amendment kept.
    assert not run_module(constitution_files, fleet)["changed"]


def test_vague_violation_is_refused_and_nothing_written(fleet, run_module, tmp_path):
    run_module(constitution_files, fleet)
    before = snapshot(tmp_path)
    result = run_module(violation, dict(record(fleet), what="made a mistake"))
    assert result["failed"] and "what is boilerplate" in result["msg"]
    assert snapshot(tmp_path) == before


def test_unknown_agent_is_refused_with_the_allowed_names(fleet, run_module):
    run_module(constitution_files, fleet)
    result = run_module(violation, dict(record(fleet), agent="nobody"))
    assert result["failed"] and "allowed: boss, coder, qa" in result["msg"]


def test_violation_check_mode_and_diff(fleet, run_module, tmp_path):
    run_module(constitution_files, fleet)
    before = snapshot(tmp_path)
    result = run_module(violation, record(fleet, amendment=AMENDMENT), check_mode=True, diff=True)
    assert result["changed"] and snapshot(tmp_path) == before
    assert any(AMENDMENT in d["after"] for d in result["diff"])
