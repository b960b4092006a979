"""Backups against a scripted agent: what root keeps, what it refuses,
and a restore whose swap script really runs (as the test's own user) on
a state directory and workspace in tmp_path. OpenClaw's CLI is the
scripted part: `backup create` writes what the test says, `backup
restore` unpacks a tar laid out like OpenClaw's archives."""

import datetime
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

from ansible_collections.agentfleet.vps.plugins.module_utils import fileops
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import audit_checks, backup

NOW = datetime.datetime(2026, 12, 3, 3, 0, 0, tzinfo=datetime.timezone.utc)
ROOT = "2026-12-03T03-00-00.000+00-00-openclaw-backup"


class Manager:
    def __init__(self):
        self.calls = []

    def systemctl(self, *args):
        self.calls.append(args)
        return 0, "", ""

    def restart(self, unit):
        self.calls.append(("restart", unit))
        return 0, "", ""

    def show(self, units):
        return {}


class ScriptedAgent:
    """Agent's interface; commands run for real as this user, except
    OpenClaw's CLI."""

    def __init__(self, home, made=b"archive bytes", link_to=None):
        self.home, self.name = str(home), "coder"
        self.work = os.path.join(self.home, backup.WORK_DIR)
        self.manager, self.made, self.link_to, self.cli = Manager(), made, link_to, []

    def run(self, argv, timeout=600, stdin=None, env=None):
        proc = subprocess.run([sys.executable if argv[0] == "python3" else argv[0]] + list(argv[1:]),
                              stdin=stdin if stdin is not None else subprocess.DEVNULL,
                              capture_output=True, text=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    def openclaw_cli(self, *args, timeout=600):
        self.cli.append(args)
        if args[:2] == ("backup", "create"):
            target = args[3]
            if self.link_to:
                os.symlink(self.link_to, target)
            else:
                with open(target, "wb") as handle:
                    handle.write(self.made)
            return True, {"archivePath": target, "verified": True, "archiveRoot": ROOT}, ""
        if args[:2] == ("backup", "restore"):
            with tarfile.open(args[2]) as tar:
                tar.extractall(args[4])
            return True, {"ok": True, "archiveRoot": ROOT}, ""
        raise AssertionError(args)

    def fresh_work_dir(self):
        fileops.makedirs(self.work, mode=0o700)

    def remove_work_dir(self):
        subprocess.run(["rm", "-rf", self.work], check=True)


def config(tmp_path):
    return {"dir": str(tmp_path / "backups"), "keep": 2, "openclaw": "/bin/false",
            "hold_dir": str(tmp_path / "hold"), "max_bytes": 1000}


def entry(tmp_path):
    state = tmp_path / "home" / ".openclaw-coder"
    return {"name": "coder", "user": "openclaw-coder", "state_dir": str(state), "workspace": str(state / "workspace"),
            "unit": "openclaw-gateway-coder.service", "port": 19000}


def test_take_keeps_the_archive_with_its_checksum_and_the_newest_two(tmp_path):
    (tmp_path / "home").mkdir()
    conf = config(tmp_path)
    for minute in range(3):
        agent = ScriptedAgent(tmp_path / "home", made=b"archive %d" % minute)
        manifest = backup.take(conf, entry(tmp_path), NOW + datetime.timedelta(minutes=minute), "service", agent)
    assert manifest["sha256"] == hashlib.sha256(b"archive 2").hexdigest() and manifest["size"] == 9
    assert manifest["pruned"] == ["20261203T030000Z.tar.gz"]
    kept = backup.listing(os.path.join(conf["dir"], "coder"))
    assert [m["archive"] for m in kept] == ["20261203T030100Z.tar.gz", "20261203T030200Z.tar.gz"]
    assert os.stat(os.path.join(conf["dir"], "coder", kept[-1]["archive"])).st_mode & 0o777 == 0o600
    assert not os.path.exists(agent.work)


def test_a_link_the_agent_plants_as_its_archive_is_not_followed(tmp_path):
    (tmp_path / "home").mkdir()
    secret = tmp_path / "root-only"
    secret.write_bytes(b"root's secret")
    conf = config(tmp_path)
    with pytest.raises(OSError):
        backup.take(conf, entry(tmp_path), NOW, "service", ScriptedAgent(tmp_path / "home", link_to=str(secret)))
    assert backup.listing(os.path.join(conf["dir"], "coder")) == []
    assert os.listdir(os.path.join(conf["dir"], "coder")) == []


def test_an_archive_over_the_size_limit_is_not_kept(tmp_path):
    (tmp_path / "home").mkdir()
    conf = config(tmp_path)
    with pytest.raises(backup.BackupError, match="larger than max_bytes"):
        backup.take(conf, entry(tmp_path), NOW, "service", ScriptedAgent(tmp_path / "home", made=b"x" * 1001))
    assert os.listdir(os.path.join(conf["dir"], "coder")) == []


def test_run_goes_on_after_one_agent_fails(tmp_path):
    # Each agent a home of its own: the two run side by side.
    (tmp_path / "home").mkdir()
    (tmp_path / "home2").mkdir()
    conf = dict(config(tmp_path), agents=[entry(tmp_path), dict(entry(tmp_path), name="reviewer")])
    agents = {"coder": ScriptedAgent(tmp_path / "home", made=b"x" * 1001),
              "reviewer": ScriptedAgent(tmp_path / "home2")}
    results = backup.run(conf, now=NOW, trigger="service", make_agent=lambda e: agents[e["name"]])
    assert [(r["agent"], r["ok"]) for r in results] == [("coder", False), ("reviewer", True)]


def archive_of(tmp_path, state_files, workspace_files):
    """A tar laid out like OpenClaw's: ROOT/payload/posix/<absolute path>."""
    ent = entry(tmp_path)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for base, files in ((ent["state_dir"], state_files), (ent["workspace"], workspace_files)):
            info = tarfile.TarInfo(ROOT + "/payload/posix" + base)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
            for name, data in files.items():
                info = tarfile.TarInfo(ROOT + "/payload/posix" + base + "/" + name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def store_archive(tmp_path, data, name="20261203T030000Z.tar.gz"):
    directory = tmp_path / "backups" / "coder"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)
    (directory / (name[:-7] + ".json")).write_text(json.dumps({
        "archive": name, "created": NOW.isoformat(), "sha256": hashlib.sha256(data).hexdigest()}))
    return directory / name


def live_fleet(tmp_path):
    ent = entry(tmp_path)
    state, workspace = tmp_path / "home" / ".openclaw-coder", tmp_path / "home" / ".openclaw-coder" / "workspace"
    (state / "state").mkdir(parents=True)
    workspace.mkdir()
    (state / "gateway.env").write_text("KEY=live\n")
    (state / "openclaw.json").write_text('{"live": true}')
    (state / "state" / "openclaw.sqlite").write_bytes(b"corrupted")
    (workspace / "CONSTITUTION.md").write_text("the law\n")
    (workspace / "notes.md").write_text("written after the backup\n")
    return ent


def tree(path):
    return {os.path.relpath(os.path.join(top, f), path): open(os.path.join(top, f), "rb").read()
            for top, _dirs, files in os.walk(path) for f in files}


def good_archive(tmp_path):
    import sqlite3
    db = tmp_path / "good.sqlite"
    conn = sqlite3.connect(str(db))
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    return archive_of(tmp_path, {"openclaw.json": b'{"archived": true}', "gateway.env": b"KEY=old\n",
                                 "state/openclaw.sqlite": db.read_bytes()},
                      {"HANDOFF.md": b"handoff\n", "CONSTITUTION.md": b"an old law\n"})


def test_restore_swaps_in_the_archive_but_not_the_deploys_files_or_the_law(tmp_path, monkeypatch):
    ent = live_fleet(tmp_path)
    store_archive(tmp_path, good_archive(tmp_path))
    monkeypatch.setattr(backup, "wait_ready", lambda agent, port, timeout: (True, '{"ready":true}'))
    agent = ScriptedAgent(tmp_path / "home")
    result = backup.restore(config(tmp_path), ent, agent=agent)
    assert result["ready"] and result["archive"] == "20261203T030000Z.tar.gz"
    state = tree(ent["state_dir"])
    assert state["gateway.env"] == b"KEY=live\n" and state["openclaw.json"] == b'{"live": true}'
    assert state["state/openclaw.sqlite"].startswith(b"SQLite format 3")
    assert state["workspace/HANDOFF.md"] == b"handoff\n" and state["workspace/CONSTITUTION.md"] == b"the law\n"
    assert "workspace/notes.md" not in state
    assert agent.manager.calls[0] == ("stop", ent["unit"]) and ("restart", ent["unit"]) in agent.manager.calls
    assert not os.path.exists(agent.work) and os.listdir(tmp_path / "hold") == []


def test_a_gateway_not_ready_on_the_archive_gets_its_own_files_back(tmp_path, monkeypatch):
    ent = live_fleet(tmp_path)
    before = tree(ent["state_dir"])
    store_archive(tmp_path, good_archive(tmp_path))
    answers = iter([(False, "exited with status 78"), (True, '{"ready":true}')])
    monkeypatch.setattr(backup, "wait_ready", lambda agent, port, timeout: next(answers))
    with pytest.raises(backup.BackupError, match="its previous files are back and it is ready"):
        backup.restore(config(tmp_path), ent, agent=ScriptedAgent(tmp_path / "home"))
    assert tree(ent["state_dir"]) == before


def test_a_damaged_archive_changes_nothing(tmp_path):
    ent = live_fleet(tmp_path)
    before = tree(tmp_path / "home")
    path = store_archive(tmp_path, good_archive(tmp_path))
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    agent = ScriptedAgent(tmp_path / "home")
    with pytest.raises(backup.BackupError, match="is damaged: its sha256 is"):
        backup.restore(config(tmp_path), ent, agent=agent)
    assert agent.cli == [] and agent.manager.calls == [] and tree(tmp_path / "home") == before


def test_an_archive_with_a_damaged_database_changes_nothing(tmp_path):
    ent = live_fleet(tmp_path)
    before = tree(tmp_path / "home")
    store_archive(tmp_path, archive_of(tmp_path, {"openclaw.json": b"{}", "state/openclaw.sqlite": b"SQLite format 3\0"
                                                  + b"\xff" * 4096}, {}))
    agent = ScriptedAgent(tmp_path / "home")
    with pytest.raises(backup.BackupError, match="fails its check"):
        backup.restore(config(tmp_path), ent, agent=agent)
    assert agent.manager.calls == [] and tree(tmp_path / "home") == before


def test_check_mode_only_checks_the_archive(tmp_path):
    ent = live_fleet(tmp_path)
    store_archive(tmp_path, good_archive(tmp_path))
    agent = ScriptedAgent(tmp_path / "home")
    result = backup.restore(config(tmp_path), ent, check_mode=True, agent=agent)
    assert result["changed"] and agent.cli == [] and agent.manager.calls == []


def test_a_named_archive_that_does_not_exist_lists_the_kept_ones(tmp_path):
    store_archive(tmp_path, b"x")
    with pytest.raises(backup.BackupError, match="there are: 20261203T030000Z.tar.gz"):
        backup.checked(str(tmp_path / "backups" / "coder"), "20261201T030000Z.tar.gz")


def test_backup_stale_fires_past_the_limit_and_stays_quiet_before(tmp_path):
    store = tmp_path / "store" / "coder"
    store.mkdir(parents=True)
    (store / "changes.jsonl").write_text(json.dumps({"time": (NOW - datetime.timedelta(hours=40)).isoformat()}) + "\n")
    agents = [dict(entry(tmp_path), config=str(tmp_path / "openclaw.json"), store_dir=str(store))]
    settings = {"dir": str(tmp_path / "backups"), "max_age_hours": 36}
    # No archive, first deploy 40 h ago: stale; 30 h ago: not yet.
    assert [f["summary"][:9] for f in audit_checks.check_backups(agents, settings, NOW)] == ["no backup"]
    assert audit_checks.check_backups(agents, settings, NOW - datetime.timedelta(hours=10)) == []
    store_archive(tmp_path, b"x")
    assert audit_checks.check_backups(agents, settings, NOW + datetime.timedelta(hours=35)) == []
    found = audit_checks.check_backups(agents, settings, NOW + datetime.timedelta(hours=37))
    assert [f["rule"] for f in found] == ["backup-stale"] and "37.0 h old (limit 36 h)" in found[0]["summary"]
    assert audit_checks.check_backups(agents, dict(settings, dir=""), NOW + datetime.timedelta(hours=37)) == []


def test_a_failed_off_host_copy_is_in_the_manifest_the_result_and_the_audit(tmp_path, monkeypatch):
    (tmp_path / "home").mkdir()
    sent = []

    def send(remote, agent, archive, manifest):
        sent.append((agent, archive.read(), manifest["archive"]))
        return remote["host"] == "good.example", "ssh to %s exited 255: Host key verification failed." % remote["host"]
    monkeypatch.setattr(backup.backup_offsite, "send", send)
    remote = {"host": "good.example", "user": "b", "path": "/srv", "key_file": "k", "known_hosts_file": "h"}
    conf = dict(config(tmp_path), agents=[entry(tmp_path)], offsite=remote)
    good = backup.run(conf, now=NOW, trigger="service", make_agent=lambda e: ScriptedAgent(tmp_path / "home"))
    assert good[0]["ok"] is True and good[0]["offsite"]["ok"] is True
    assert sent == [("coder", b"archive bytes", "20261203T030000Z.tar.gz")]
    settings = {"dir": conf["dir"], "max_age_hours": 36}
    agents = [dict(entry(tmp_path), config=str(tmp_path / "openclaw.json"), store_dir="")]
    assert audit_checks.check_backups(agents, settings, NOW) == []

    conf["offsite"] = dict(remote, host="bad.example")
    later = NOW + datetime.timedelta(hours=1)
    bad = backup.run(conf, now=later, trigger="service", make_agent=lambda e: ScriptedAgent(tmp_path / "home"))
    assert bad[0]["ok"] is False and "Host key verification failed" in bad[0]["offsite"]["detail"]
    assert backup.listing(os.path.join(conf["dir"], "coder"))[-1]["offsite"]["ok"] is False
    found = audit_checks.check_backups(agents, settings, later)
    assert [f["rule"] for f in found] == ["backup-stale"] and "not copied off the host" in found[0]["summary"]


def test_what_the_agents_cli_says_goes_into_the_manifest_only_in_shape(tmp_path):
    (tmp_path / "home").mkdir()

    class Liar(ScriptedAgent):
        def openclaw_cli(self, *args, timeout=600):
            ok, answer, detail = super().openclaw_cli(*args, timeout=timeout)
            return ok, dict(answer, archiveRoot="x" * 100000, createdAt="\x1b[2J" * 10), detail
    manifest = backup.take(config(tmp_path), entry(tmp_path), NOW, "service", Liar(tmp_path / "home"))
    assert manifest["openclaw"] == {"archiveRoot": None, "createdAt": None, "verified": True}
    assert backup.listing(os.path.join(config(tmp_path)["dir"], "coder"))[-1]["archive"] == manifest["archive"]
