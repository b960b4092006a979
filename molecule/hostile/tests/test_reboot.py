"""A reboot after the attacks: every gateway comes back with nobody logged
in (lingering user managers start the enabled units), so nothing an agent
did before it left the host unable to bring its fleet back.

Runs after test_hostile_agent.py, whose last test leaves the fleet healed.
Here rather than in the default scenario: a reboot starts every gateway at
once, and two cost a third of the CPU of six (README, "Time budget")."""

import subprocess

from fleet_checks import agent_names, all_ready, unit_props, wait_until


def test_reboot_brings_the_whole_fleet_back_without_login(host):
    assert wait_until(lambda: all_ready(host), timeout=300)
    container = host.backend.get_hostname()
    subprocess.run(["docker", "restart", "--time", "30", container], check=True, capture_output=True)
    assert wait_until(lambda: host.run("systemctl is-system-running").stdout.strip() in ("running", "degraded"), timeout=120)
    assert wait_until(lambda: all(unit_props(host, n)["ActiveState"] == "active" for n in agent_names()), timeout=120)
    # Every gateway starts at once at boot, beside another scenario's
    # fleet in make test. A wait, not a speed check.
    assert wait_until(lambda: all_ready(host), timeout=600)
    assert host.run("loginctl list-sessions --no-legend").stdout.strip() == ""
