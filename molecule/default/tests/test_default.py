"""What site.yml must leave true on a freshly booted host."""

import pytest

FLEET_USER = "openclaw"


def test_systemd_is_pid1_and_booted(host):
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state in ("running", "degraded"), state
    assert host.process.get(pid=1).comm == "systemd"


@pytest.mark.parametrize("package", ["libpam-systemd", "dbus-user-session"])
def test_user_unit_packages_installed(host, package):
    assert host.package(package).is_installed


def test_service_user_exists_and_is_not_root(host):
    user = host.user(FLEET_USER)
    assert user.exists
    assert user.uid != 0
    assert host.file(user.home).is_directory


def test_lingering_enabled(host):
    assert host.file(f"/var/lib/systemd/linger/{FLEET_USER}").exists
    out = host.check_output(f"loginctl show-user {FLEET_USER} --property=Linger")
    assert out.strip() == "Linger=yes"


def test_user_manager_runs_without_login(host):
    uid = host.user(FLEET_USER).uid
    assert host.service(f"user@{uid}.service").is_running
    assert host.file(f"/run/user/{uid}").is_directory
    # The user manager answers on its own bus: what every agent unit needs.
    # is-system-running exits non-zero for "degraded", so read stdout.
    cmd = host.run(
        f"runuser -u {FLEET_USER} -- env XDG_RUNTIME_DIR=/run/user/{uid} systemctl --user is-system-running"
    )
    assert cmd.stdout.strip() in ("running", "degraded"), (cmd.stdout, cmd.stderr)
