"""Backups and their restore on the fleet the other tests of this scenario
left (sessions with real turns in coder-1's store): the backup timer
fires by itself, a deleted workspace file and a corrupted session store
come back with restore.yml, and a damaged archive is refused with nothing
changed. Runs after test_real_turns.py."""

import json

from fleet_checks import as_user, main_pids, ports, readyz, run_playbook, state_dir, unit_props, wait_until, why

from test_oversight import CODER, transcript_events

BACKUPS = "/var/lib/agentfleet/backups"
WORKSPACE = f"{state_dir(CODER)}/workspace"
STORE = f"{state_dir(CODER)}/agents/main/agent/openclaw-agent.sqlite"
LAW = ("CONSTITUTION.md", "VIOLATIONS.md", "AGENTS.md")


def kept(host):
    """agent -> its manifests, as agentfleet-backup --list prints them."""
    return json.loads(host.run_test("/opt/agentfleet/bin/agentfleet-backup --list").stdout)


def sha256(host, path):
    return host.run_test(f"sha256sum {path}").stdout.split()[0]


def quick_check(host, path):
    return host.run(f"python3 -c \"import sqlite3; c = sqlite3.connect('file:{path}?mode=ro', uri=True); "
                    "print(c.execute('PRAGMA quick_check').fetchone()[0])\"").stdout.strip()


def test_the_backup_timer_fires_by_itself(host):
    assert kept(host) == {"coordinator": [], CODER: [], "reviewer": []}
    # The schedule 30 s from now on the host's clock: one run, by the timer.
    day, at = host.run_test("date -u -d '+30 seconds' '+%F %H:%M:%S'").stdout.split()
    result = run_playbook("--tags", "backup", "-e", f"backup_schedule='*-*-* {at}'")
    assert result.returncode == 0, why(result)
    listed = host.run_test("systemctl list-timers agentfleet-backup.timer --no-pager").stdout
    # Next (or, just fired, last) today at that time, not tomorrow.
    assert f"{day} {at}" in listed, f"the play took longer than 30 s, the timer waits for tomorrow:\n{listed}"

    def all_kept():
        found = kept(host)
        return found if all(found.values()) else None

    found = wait_until(all_kept, 240, interval=5)
    assert found, host.run("journalctl -u agentfleet-backup.service -n 40 --no-pager").stdout
    timer = dict(line.split("=", 1) for line in host.run_test(
        "systemctl show agentfleet-backup.timer -p LastTriggerUSec,UnitFileState").stdout.splitlines())
    assert timer["UnitFileState"] == "enabled" and timer["LastTriggerUSec"] not in ("", "n/a", "0")
    for agent, manifests in found.items():
        assert len(manifests) == 1, manifests
        manifest = manifests[0]
        assert manifest["trigger"] == "service" and manifest["openclaw"]["verified"] is True
        archive = host.file(f"{BACKUPS}/{agent}/{manifest['archive']}")
        assert archive.user == "root" and archive.mode == 0o600 and archive.size == manifest["size"]
        assert sha256(host, archive.path) == manifest["sha256"]
        assert not host.file(f"/home/openclaw-{agent}/.agentfleet-backup").exists
    assert host.file(BACKUPS).mode == 0o700 and host.file(f"{BACKUPS}/{CODER}").mode == 0o700


def test_restore_brings_back_a_deleted_file_and_a_corrupted_session_store(host):
    events = transcript_events(host, CODER)
    assert events, "the real-turn tests left no session in the coder's store"
    handoff = sha256(host, f"{WORKSPACE}/HANDOFF.md")
    env_before = sha256(host, f"{state_dir(CODER)}/gateway.env")
    # The agent itself deletes its file and overwrites its session store.
    as_user(host, CODER, f"rm {WORKSPACE}/HANDOFF.md && "
                         f"dd if=/dev/urandom of={STORE} bs=4096 count=8 conv=notrunc status=none")
    assert not host.file(f"{WORKSPACE}/HANDOFF.md").exists and quick_check(host, STORE) != "ok"

    result = run_playbook("-e", f"agent={CODER}", playbook="restore.yml")
    assert result.returncode == 0, why(result)

    assert sha256(host, f"{WORKSPACE}/HANDOFF.md") == handoff
    assert quick_check(host, STORE) == "ok" and transcript_events(host, CODER) == events
    assert readyz(host, ports(host, [CODER])[CODER]).get("ready") is True
    # The deploy's secrets and root's law stayed as they were.
    assert sha256(host, f"{state_dir(CODER)}/gateway.env") == env_before
    workspace = host.file(WORKSPACE)
    assert workspace.user == "root" and workspace.mode == 0o1770
    for name in LAW:
        assert host.file(f"{WORKSPACE}/{name}").user == "root", name
    assert not host.file(f"/var/lib/agentfleet/hold/{CODER}").exists
    assert not host.file(f"/home/openclaw-{CODER}/.agentfleet-backup").exists


def test_a_damaged_archive_is_refused_with_nothing_changed(host):
    archive = f"{BACKUPS}/{CODER}/" + kept(host)[CODER][-1]["archive"]
    files = f"{state_dir(CODER)}/openclaw.json {state_dir(CODER)}/gateway.env {WORKSPACE}/*"
    before = host.run_test(f"sha256sum {files}").stdout
    events = transcript_events(host, CODER)
    pid = main_pids(host, [CODER])
    host.run_test(f"printf 'damage' | dd of={archive} bs=1 seek=100000 conv=notrunc status=none")

    result = run_playbook("-e", f"agent={CODER}", playbook="restore.yml")
    assert result.returncode != 0
    assert "is damaged: its sha256 is" in why(result), why(result)
    assert host.run_test(f"sha256sum {files}").stdout == before and transcript_events(host, CODER) == events
    assert not host.file(f"/home/openclaw-{CODER}/.agentfleet-backup").exists
    assert main_pids(host, [CODER]) == pid and unit_props(host, CODER)["ActiveState"] == "active"
