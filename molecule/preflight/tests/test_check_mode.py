"""--check on a host the play never ran on: it predicts, it changes nothing."""

from test_bad_input import MARKER, changed_since_marker, fleet_users, run_site


def test_check_mode_on_a_fresh_host_changes_nothing(host):
    host.run(f"touch {MARKER}; sleep 1")
    result = run_site(options=["--check", "--diff"])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    recap = result.stdout.split("PLAY RECAP")[-1]
    assert "changed=0" not in recap  # it did predict changes
    assert "would be installed" in result.stdout
    assert changed_since_marker(host) == []
    assert fleet_users(host) == []
    assert not host.file("/opt/agentfleet").exists
