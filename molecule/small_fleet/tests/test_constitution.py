"""The constitution in real agent workspaces, and the penalty ledger.
The tests depend on their order."""

import json

from fleet_checks import agent_names, run_playbook, state_dir, user_of, why

LAW = "/var/lib/agentfleet/constitution"
LEDGER = f"{LAW}/ledger.jsonl"
FILES = ("CONSTITUTION.md", "VIOLATIONS.md", "AGENTS.md", "HANDOFF.md")
BEGIN = "<!-- BEGIN agentfleet.vps constitution"
AMENDMENT = "Before any push, quote the CI status of the exact commit being pushed, with its URL"
FIRST = {"agent": "coder",
         "what": "Pushed commit abc123 to main while CI run 77 was red on test_login",
         "why": "The agent read the CI badge of the previous commit instead of this commit's status",
         "changed": "The push script now queries the status of the exact commit and refuses anything but success",
         "severity": "high", "amendment": AMENDMENT, "amendment_scope": "role"}
SECOND = {"agent": "reviewer",
          "what": "Approved pull request 9 without opening its diff; it deleted the migrations folder",
          "why": "The review checklist had no step that requires reading the diff of deleted files",
          "changed": "The review checklist now lists every deleted path and requires a reason for each"}


def workspace(host, name):
    config = json.loads(host.file(f"{state_dir(name)}/openclaw.json").content_string)
    return config["agents"]["defaults"]["workspace"]


def ours(host):
    """sha256 of every file this role and the ledger own, by path."""
    paths = [f"{workspace(host, n)}/{f}" for n in agent_names() for f in FILES] + [LEDGER, f"{LAW}/fleet.json"]
    out = host.run("sha256sum " + " ".join(paths) + " 2>/dev/null").stdout
    return dict(reversed(line.split(None, 1)) for line in out.splitlines())


def record(entry):
    return run_playbook("-e", json.dumps(entry), playbook="violation.yml")


def ledger(host):
    if not host.file(LEDGER).exists:
        return []
    return [json.loads(line) for line in host.file(LEDGER).content_string.splitlines()]


def test_files_are_in_the_workspace_each_config_points_at(host):
    for name in agent_names():
        ws = workspace(host, name)
        assert ws == f"{state_dir(name)}/workspace"
        for file in FILES:
            # The law is root's (the agent reads it, cannot rewrite it); HANDOFF.md is the agent's user's.
            owner = user_of(name) if file == "HANDOFF.md" else "root"
            assert host.file(f"{ws}/{file}").user == owner and host.file(f"{ws}/{file}").mode == 0o644, (name, file)
        agents_md = host.file(f"{ws}/AGENTS.md").content_string
        assert agents_md.startswith(BEGIN) and agents_md.count(BEGIN) == 1
        assert "Quality before speed (supreme" in agents_md
        assert "Read HANDOFF.md" in agents_md and "Read ALERTS.md" in agents_md
    coordinator = host.file(f"{workspace(host, 'coordinator')}/CONSTITUTION.md").content_string
    assert "Alerts first" in coordinator
    assert "Alerts first" not in host.file(f"{workspace(host, 'coder')}/CONSTITUTION.md").content_string


def test_text_outside_the_block_survives_two_runs(host):
    path = f"{workspace(host, 'coder')}/AGENTS.md"
    host.run(f"printf '\\n## My own notes\\nKeep the build green.\\n' >> {path}")
    for _run in range(2):
        proc = run_playbook("--tags", "constitution")
        assert proc.returncode == 0, why(proc)
    text = host.file(path).content_string
    assert text.count(BEGIN) == 1
    assert text.endswith("## My own notes\nKeep the build green.\n")


def test_two_violations_and_a_role_amendment(host):
    for entry in (FIRST, SECOND):
        proc = record(entry)
        assert proc.returncode == 0, why(proc)
    entries = ledger(host)
    assert [e["agent"] for e in entries] == ["coder", "reviewer"]
    for name, has in (("coder", True), ("reviewer", True), ("coordinator", False)):
        assert (AMENDMENT in host.file(f"{workspace(host, name)}/CONSTITUTION.md").content_string) is has, name
    assert "Approved pull request 9" in host.file(f"{workspace(host, 'reviewer')}/VIOLATIONS.md").content_string


def test_a_site_run_keeps_the_amendment_and_the_same_entry_is_not_recorded_twice(host):
    proc = run_playbook("--tags", "constitution")
    assert proc.returncode == 0, why(proc)
    assert all(stats["changed"] == 0 for stats in json.loads(proc.stdout)["stats"].values())
    for name in ("coder", "reviewer"):
        assert AMENDMENT in host.file(f"{workspace(host, name)}/CONSTITUTION.md").content_string
    proc = record(FIRST)
    assert proc.returncode == 0
    assert len(ledger(host)) == 2


def test_a_vague_violation_is_refused_and_nothing_written(host):
    before = ours(host)
    proc = record(dict(FIRST, what="made a mistake"))
    assert proc.returncode != 0
    assert "what is boilerplate" in proc.stdout
    assert ours(host) == before


def test_an_oversized_constitution_fails_before_any_file_changes(host):
    before = ours(host)
    huge = [{"id": "XX", "title": "Everything", "text": "Always read every rule twice. " * 800}]
    proc = run_playbook("--tags", "constitution", "-e", json.dumps({"constitution_extra_articles": huge}))
    assert proc.returncode != 0
    assert "over the bootstrap limit of 20000" in proc.stdout
    assert ours(host) == before


def test_a_hand_edited_handoff_is_kept(host):
    path = f"{workspace(host, 'coder')}/HANDOFF.md"
    host.run(f"printf '# HANDOFF\\n\\n## Current state\\nLogin fix merged, CI run 81 green.\\n' > {path}")
    before = host.file(path).content
    proc = run_playbook("--tags", "constitution")
    assert proc.returncode == 0, why(proc)
    assert host.file(path).content == before
