"""--check on a host the play never ran on: it predicts, it changes nothing."""

import os
import subprocess
from pathlib import Path

from test_bad_input import MARKER, changed_since_marker

ROOT = Path(__file__).resolve().parents[3]


def test_check_mode_on_a_fresh_host_changes_nothing(host):
    host.run(f"touch {MARKER}; sleep 1")
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    result = subprocess.run(["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"],
                             str(ROOT / "playbooks/site.yml"), "--check", "--diff"],
                            cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    recap = result.stdout.split("PLAY RECAP")[-1]
    assert "changed=0" not in recap  # it did predict changes
    assert "would be installed" in result.stdout
    assert changed_since_marker(host) == []
    assert not host.user("openclaw").exists
    assert not host.file("/opt/agentfleet").exists
