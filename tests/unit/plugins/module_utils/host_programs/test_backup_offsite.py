"""The off-host copy: ssh's options, and the remote script run for real
by a local shell standing in for the target's login shell."""

import io
import json
import os
import subprocess

from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import backup_offsite

REMOTE = {"host": "backup.example", "port": 2222, "user": "fleetbackup", "path": "/srv/agentfleet", "keep": 2,
          "key_file": "/etc/agentfleet/backup-offsite.key", "known_hosts_file": "/etc/agentfleet/backup-offsite.known_hosts"}


def manifest(stamp):
    return {"archive": stamp + ".tar.gz", "agent": "coder", "sha256": "ab" * 32, "size": 5}


def archive_file(tmp_path, data):
    path = tmp_path / "archive.tmp"
    path.write_bytes(data)
    return open(path, "rb")  # noqa: SIM115 (closed by the test's end)


def local_target(root):
    """Runs what ssh would hand the target's shell, here, under root."""
    calls = []

    def runner(argv, stdin=None, **kwargs):
        calls.append(argv)
        command = argv[-1].replace("/srv/agentfleet", str(root))
        return subprocess.run(["sh", "-c", command], stdin=stdin, capture_output=True, check=False)
    return runner, calls


def test_ssh_trusts_only_the_pinned_host_key_and_no_config(tmp_path):
    argv = backup_offsite.ssh_argv(REMOTE)
    options = " ".join(argv)
    for wanted in ("-F /dev/null", "StrictHostKeyChecking=yes", "BatchMode=yes", "IdentitiesOnly=yes",
                   "UserKnownHostsFile=/etc/agentfleet/backup-offsite.known_hosts", "GlobalKnownHostsFile=/dev/null",
                   "ForwardAgent=no", "-p 2222", "-l fleetbackup"):
        assert wanted in options
    assert argv[-2:] == ["--", "backup.example"]


def test_the_archive_and_manifest_land_whole_and_the_oldest_go(tmp_path):
    runner, dummy = local_target(tmp_path / "target")
    for stamp in ("20261201T030000Z", "20261202T030000Z", "20261203T030000Z"):
        ok, detail = backup_offsite.send(REMOTE, "coder", archive_file(tmp_path, b"tar-" + stamp.encode()), manifest(stamp),
                                         runner=runner)
        assert ok, detail
    target = tmp_path / "target"
    kept = sorted(os.listdir(target / "coder"))
    assert kept == ["20261202T030000Z.json", "20261202T030000Z.tar.gz", "20261203T030000Z.json",
                    "20261203T030000Z.tar.gz"]
    assert (target / "coder" / "20261203T030000Z.tar.gz").read_bytes() == b"tar-20261203T030000Z"
    assert json.loads((target / "coder" / "20261203T030000Z.json").read_text()) == manifest("20261203T030000Z")
    assert oct((target / "coder" / "20261203T030000Z.tar.gz").stat().st_mode & 0o777) == "0o600"
    assert detail == "copied to fleetbackup@backup.example:/srv/agentfleet/coder"


def test_a_path_with_shell_characters_stays_one_path(tmp_path):
    odd = tmp_path / "a b;$(touch pwned)"
    remote = dict(REMOTE, path=str(odd))
    runner, dummy = local_target(tmp_path)
    ok, detail = backup_offsite.send(remote, "coder", archive_file(tmp_path, b"x"), manifest("20261203T030000Z"),
                                     runner=runner)
    assert ok, detail
    assert (odd / "coder" / "20261203T030000Z.tar.gz").read_bytes() == b"x"
    assert not (tmp_path / "pwned").exists() and not os.path.exists("pwned")


def test_a_refused_login_is_a_failure_with_what_ssh_said():
    def runner(argv, **kwargs):
        return subprocess.CompletedProcess(argv, 255, b"", b"Host key verification failed.\r\n")
    ok, detail = backup_offsite.send(REMOTE, "coder", io.BytesIO(b"x"), manifest("20261203T030000Z"), runner=runner)
    assert not ok and detail == "ssh to backup.example exited 255: Host key verification failed."


def test_the_pinned_line_names_the_host_on_any_port():
    assert "HostKeyAlias=backup.example" in " ".join(backup_offsite.ssh_argv(REMOTE))
