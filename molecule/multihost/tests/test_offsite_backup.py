"""The off-host copy of backups, from host one (Debian 12) to host two's
sshd (Debian 13) as a login user of its own there: the archive and its
manifest arrive whole; a target whose host key is not the pinned one
gets nothing, and the failure is in the manifest, the command's exit
code and the next audit; turning the copy off takes its key away."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))

from fleet_checks import as_user, run_playbook, why  # noqa: E402

ONE, TWO = "agentfleet-molecule-multihost-one", "agentfleet-molecule-multihost-two"
TARGET_USER, TARGET_DIR = "fleetbackup", "/srv/agentfleet"
KEY_FILE = "/etc/agentfleet/backup-offsite.key"


@pytest.fixture(scope="module")
def hosts():
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    return [testinfra.get_host(f"ansible://{name}?ansible_inventory={inventory}") for name in (ONE, TWO)]


def keypair(directory, name):
    path = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True)
    return path.read_text(), (directory / f"{name}.pub").read_text().strip()


@pytest.fixture(scope="module")
def target(hosts, tmp_path_factory):
    """Host two's login user for the copies, its address, its real host
    key line, and root's key pair for host one."""
    two = hosts[1]
    private, public = keypair(tmp_path_factory.mktemp("offsite"), "agentfleet-offsite")
    two.run_test(f"id {TARGET_USER} || useradd --create-home --shell /bin/sh {TARGET_USER}")
    two.run_test(f"install -d -o {TARGET_USER} -m 0700 {TARGET_DIR} /home/{TARGET_USER}/.ssh")
    two.run_test(f"echo '{public}' > /home/{TARGET_USER}/.ssh/authorized_keys && "
                 f"chown {TARGET_USER} /home/{TARGET_USER}/.ssh/authorized_keys")
    address = two.run_test("hostname -I").stdout.split()[0]
    host_key = two.run_test("cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub").stdout.strip()
    return {"address": address, "known_hosts": f"{address} {host_key}", "private_key": private}


def offsite_vars(target, known_hosts=None):
    return json.dumps({"backup_offsite_host": target["address"], "backup_offsite_user": TARGET_USER,
                       "backup_offsite_path": TARGET_DIR, "backup_offsite_private_key": target["private_key"],
                       "backup_offsite_known_hosts": known_hosts or target["known_hosts"], "backup_offsite_keep": 2})


def deploy(*extra):
    result = run_playbook("--tags", "backup", "--limit", ONE, *extra)
    assert result.returncode == 0, why(result)
    return result


def back_up_coder(one):
    run = one.run("/opt/agentfleet/bin/agentfleet-backup --agent coder")
    return run.rc, json.loads(run.stdout.splitlines()[-1])


def test_each_archive_and_its_manifest_arrive_whole(hosts, target):
    one, two = hosts
    result = deploy("-e", offsite_vars(target))
    assert target["private_key"].splitlines()[1] not in result.stdout + result.stderr
    key = one.file(KEY_FILE)
    assert key.user == "root" and key.mode == 0o600
    assert as_user(one, "coder", f"cat {KEY_FILE}").rc != 0

    rc, outcome = back_up_coder(one)
    assert rc == 0 and outcome["ok"] is True, outcome
    assert outcome["offsite"]["target"] == f"{TARGET_USER}@{target['address']}:{TARGET_DIR}"
    manifest = json.loads(one.file(f"/var/lib/agentfleet/backups/coder/{outcome['archive'][:-7]}.json").content_string)
    copy = f"{TARGET_DIR}/coder/{outcome['archive']}"
    assert two.run_test(f"sha256sum {copy}").stdout.split()[0] == manifest["sha256"]
    assert two.file(copy).user == TARGET_USER and two.file(copy).mode == 0o600
    sent = json.loads(two.file(f"{TARGET_DIR}/coder/{outcome['archive'][:-7]}.json").content_string)
    assert sent == {k: v for k, v in manifest.items() if k != "offsite"}
    logins = two.run("journalctl -u ssh.service --no-pager -o cat").stdout
    assert f"Accepted publickey for {TARGET_USER}" in logins


def test_a_target_with_another_host_key_gets_nothing_and_the_audit_says_so(hosts, target, tmp_path):
    one, two = hosts
    before = two.run_test(f"ls {TARGET_DIR}/coder").stdout.split()
    dummy, impostor = keypair(tmp_path, "not-host-two")
    deploy("-e", offsite_vars(target, known_hosts=f"{target['address']} {' '.join(impostor.split()[:2])}"))
    rc, outcome = back_up_coder(one)
    assert rc == 1 and outcome["ok"] is False and outcome["offsite"]["ok"] is False, outcome
    assert "Host key verification failed" in outcome["offsite"]["detail"], outcome
    assert two.run_test(f"ls {TARGET_DIR}/coder").stdout.split() == before
    one.run_test("systemctl start agentfleet-audit.service")
    report = json.loads(one.file("/var/lib/agentfleet/oversight/latest.json").content_string)
    stale = [f for f in report["findings"] if f["rule"] == "backup-stale" and f["agent"] == "coder"]
    assert stale and "not copied off the host" in stale[0]["summary"], report["findings"]


def test_turning_the_copy_off_takes_its_key_and_host_keys_away(hosts):
    one = hosts[0]
    deploy()
    assert not one.file(KEY_FILE).exists
    assert not one.file("/etc/agentfleet/backup-offsite.known_hosts").exists
    config = json.loads(one.file("/etc/agentfleet/backup.json").content_string)
    assert config["offsite"] is None
