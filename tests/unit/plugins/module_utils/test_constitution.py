"""constitution: articles, ledger rules, rendering and the AGENTS.md block."""

from pathlib import Path

import pytest
import yaml

from ansible_collections.agentfleet.vps.plugins.module_utils import constitution as law

ROOT = Path(__file__).resolve().parents[4]

DEFAULTS = yaml.safe_load(open(ROOT / "roles/constitution/defaults/main.yml", encoding="utf-8"))
ARTICLES = DEFAULTS["constitution_articles"]
ROLES = DEFAULTS["constitution_role_articles"]
GOOD = {"what": "Pushed commit abc123 to main while CI run 77 was red on test_login",
        "why": "The agent read the CI badge of the previous commit instead of this commit's status",
        "changed": "The push script now queries the status of the exact commit and refuses anything but success"}


def test_default_articles_cover_the_brief_and_are_valid():
    titles = " ".join(a["title"].lower() for a in ARTICLES)
    for words in ("quality before speed", "research before claims", "no hidden failures", "decide, don't ask",
                  "proof", "report your own violations", "destructive", "config changes", "green ci", "fallback"):
        assert words in titles, words
    for role in ("coordinator", "specialist"):
        articles = law.resolve_articles(ARTICLES, role_articles=ROLES, role=role)
        assert law.check_articles(articles, role) == []
        assert articles[0]["id"] == "I" and articles[0]["supreme"]


def test_roles_get_their_own_articles_and_can_drop_some():
    coordinator = law.resolve_articles(ARTICLES, role_articles=ROLES, role="coordinator")
    specialist = law.resolve_articles(ARTICLES, disabled=["IV"], role_articles=ROLES, role="specialist")
    assert "XI" in [a["id"] for a in coordinator]
    assert [a["id"] for a in specialist] == ["I", "II", "III", "V", "VI", "VII", "VIII", "IX", "X"]


def test_check_articles_names_each_problem():
    bad = [{"id": "I", "title": "a", "text": "b"}, {"id": "I", "title": "c", "text": "d"},
           {"id": "12", "title": "e", "text": "f"}]
    problems = " ".join(law.check_articles(bad, "agent x"))
    assert "'12' is not a roman numeral" in problems
    assert "used twice: I" in problems
    assert "exactly one article must be supreme" in problems


@pytest.mark.parametrize("field, value, says", [
    ("what", "made a mistake", "what is boilerplate"),
    ("what", "", "what is empty"),
    ("why", "be more careful", "why is boilerplate"),
    ("changed", "fixed it", "changed is boilerplate"),
    ("changed", "added a check", "changed is too vague"),
])
def test_vague_entries_are_refused_naming_the_field(field, value, says):
    problems = law.vague_fields(dict(GOOD, **{field: value}))
    assert any(p.startswith(says) for p in problems), problems


def test_a_specific_entry_passes():
    assert law.vague_fields(GOOD) == []


def test_entry_id_ignores_whitespace_but_not_the_agent():
    a = law.entry_id("coder", GOOD["what"], GOOD["why"], GOOD["changed"])
    assert a == law.entry_id("coder", "  " + GOOD["what"].replace(" ", "  "), GOOD["why"], GOOD["changed"])
    assert a != law.entry_id("qa", GOOD["what"], GOOD["why"], GOOD["changed"])


def test_amendments_apply_to_agent_role_or_fleet():
    scopes = [("A", "role", "specialist"), ("B", "agent", "coder"), ("C", "fleet", None)]
    ledger = [dict(GOOD, id=text, agent="coder", time="2026-11-28T00:00:00",
                   amendment={"text": text, "scope": scope, "target": target}) for text, scope, target in scopes]

    def texts(agent):
        return [a["text"] for a in law.amendments_for(ledger, agent)]
    assert texts({"name": "coder", "role": "specialist"}) == ["A", "B", "C"]
    assert texts({"name": "qa", "role": "specialist"}) == ["A", "C"]
    assert texts({"name": "boss", "role": "coordinator"}) == ["C"]


def test_block_is_put_on_top_once_and_text_outside_is_kept():
    block = law.render_block({"name": "coder", "role": "specialist"}, ARTICLES, [])
    seeded = "# AGENTS.md\n\nOpenClaw's own text.\n"
    once = law.merge_block(seeded, block)
    assert once.startswith(law.BLOCK_BEGIN) and once.endswith(seeded)
    newer = block.replace("Quality before speed", "Quality first")
    twice = law.merge_block(law.merge_block(once + "\nmy notes\n", newer), newer)
    assert twice.count(law.BLOCK_BEGIN) == 1 and "Quality first" in twice
    assert twice.endswith(seeded + "\nmy notes\n")
    doubled = once + "\n" + block
    assert law.merge_block(doubled, block).count(law.BLOCK_BEGIN) == 1


def test_violations_newest_first_and_limited():
    ledger = [dict(GOOD, id=str(i), agent="coder", severity="low", time="2026-11-28T00:00:%02d" % i) for i in range(5)]
    text = law.render_violations({"name": "coder"}, ledger, 3)
    assert text.index("(4)") < text.index("(3)") < text.index("(2)") and "(1)" not in text


def test_plan_reports_an_oversized_agents_md(tmp_path):
    agent = {"name": "coder", "role": "specialist", "workspace": str(tmp_path), "articles": ARTICLES,
             "max_chars": 3000, "total_max_chars": 60000}
    _planned, problems = law.plan_agent(agent, [], 10)
    assert problems and "over the bootstrap limit of 3000" in problems[0]


def test_the_workspace_is_made_root_s_and_sticky_and_a_link_there_is_replaced(tmp_path):
    """The agent keeps writing its own files there; the sticky bit keeps it
    from removing root's. A link standing at the workspace path is replaced,
    never followed."""
    import os
    import stat
    gid = os.getgid()
    target = tmp_path / "not-the-workspace"
    target.mkdir()
    workspace = tmp_path / "workspace"
    workspace.symlink_to(target)
    assert law.workspace_unprotected(str(workspace), gid)
    assert law.protect_workspace(str(workspace), gid) is True
    info = os.lstat(workspace)
    assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o1770 and (info.st_uid, info.st_gid) == (0, gid)
    assert stat.S_IMODE(os.stat(target).st_mode) != 0o1770
    assert law.protect_workspace(str(workspace), gid) is False
    agent = {"name": "coder", "role": "specialist", "workspace": str(workspace), "articles": ARTICLES,
             "max_chars": 20000, "total_max_chars": 60000}
    planned, _problems = law.plan_agent(agent, [], 10)
    os.chmod(workspace, 0o700)
    law.write_planned(planned, uid=os.getuid(), gid=gid)
    assert stat.S_IMODE(os.stat(workspace).st_mode) == 0o1770
    assert os.stat(workspace / "CONSTITUTION.md").st_uid == 0
