"""agent_restore: a bad archive name and a damaged archive fail before
anything runs; check mode names the archive and changes nothing."""

import hashlib
import json

from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import backup
from ansible_collections.agentfleet.vps.plugins.modules import agent_restore

AGENT = {"name": "coder", "user": "openclaw-coder", "state_dir": "/home/openclaw-coder/.openclaw-coder",
         "workspace": "/home/openclaw-coder/.openclaw-coder/workspace", "unit": "openclaw-gateway-coder.service",
         "port": 19000}


def kept(tmp_path, data, name="20261203T030000Z.tar.gz"):
    directory = tmp_path / "coder"
    directory.mkdir()
    (directory / name).write_bytes(data)
    (directory / "20261203T030000Z.json").write_text(json.dumps(
        {"archive": name, "created": "2026-12-03T03:00:00+00:00", "sha256": hashlib.sha256(b"archive").hexdigest()}))


def test_a_name_that_is_not_an_archive_is_refused(run_module, tmp_path, monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("restore ran")
    monkeypatch.setattr(backup, "restore", must_not_run)
    result = run_module(agent_restore, {"agent": AGENT, "backup_dir": str(tmp_path), "backup": "../../etc/shadow"})
    assert result["failed"] and "is not an archive name" in result["msg"]


def test_check_mode_names_the_archive(run_module, tmp_path):
    kept(tmp_path, b"archive")
    result = run_module(agent_restore, {"agent": AGENT, "backup_dir": str(tmp_path)}, check_mode=True, diff=True)
    assert result["changed"] and result["archive"] == "20261203T030000Z.tar.gz"
    assert "20261203T030000Z.tar.gz" in result["diff"]["after"]


def test_a_damaged_archive_fails_unchanged(run_module, tmp_path):
    kept(tmp_path, b"archivE")
    result = run_module(agent_restore, {"agent": AGENT, "backup_dir": str(tmp_path)})
    assert result["failed"] and not result["changed"] and "is damaged" in result["msg"]
