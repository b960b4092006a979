# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Talking to a user's systemd manager from root, many units per call."""

from __future__ import annotations

import os
import pwd
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

# User managers asked side by side (each ask is a runuser and a systemctl).
SHOW_WORKERS = 8
SHOW_PROPERTIES = ("Id", "LoadState", "ActiveState", "SubState", "UnitFileState", "MainPID", "NRestarts",
                   "Result", "ExecMainStatus")
# Longer than any value of SHOW_PROPERTIES systemd gives.
VALUE_LIMIT = 256
# Properties root does arithmetic on.
# MemoryCurrent and MemoryMax: "[not set]" and "infinity" become "0" (none).
NUMERIC = frozenset(("MainPID", "NRestarts", "ExecMainStatus", "ActiveEnterTimestampMonotonic", "MemoryCurrent",
                     "MemoryMax"))
_NUMBER = re.compile(r"[0-9]{1,20}")


def clean(props, keys):
    """The known properties of one unit, each value bounded and each number
    digits only ("0" otherwise): the answer may come from a stand-in an
    agent put on its own manager's bus."""
    found = {}
    for key in keys:
        if key in props:
            value = props[key][:VALUE_LIMIT]
            found[key] = value if key not in NUMERIC or _NUMBER.fullmatch(value) else "0"
    return found


def exited(props):
    """Why a unit's process is gone for now (failed, stopped, or waiting
    out RestartSec before systemd starts it again), or None while it runs
    or starts. A readiness wait that sees this stops: a gateway that comes
    up does not exit first."""
    active, sub = props.get("ActiveState"), props.get("SubState")
    if active in ("failed", "inactive") or sub == "auto-restart":
        return "unit %s/%s (result %s, exit status %s)" % (
            active, sub, props.get("Result", "?"), props.get("ExecMainStatus", "?"))
    return None


def running(props):
    """True while a unit runs or is being started or reloaded: the states
    in which a stop has something to stop and a start nothing to do."""
    return props.get("ActiveState") in ("active", "activating", "reloading")


def states_of(out, units, keys):
    """unit -> its cleaned properties, from one manager's `systemctl show`
    answer: only the units that manager was asked about."""
    return {unit: clean(props, keys) for unit, props in parse_show(out).items() if unit in units}


# All a child of root's programs gets of their environment: much of what
# they start runs as an agent (runuser), whose own processes' environment
# the agent can read in /proc, and an operator's root shell may export
# anything. runuser sets HOME, SHELL, USER and LOGNAME itself.
KEPT_ENV = ("PATH", "LANG", "LC_ALL", "TZ")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def child_env(extra=None):
    env = {name: os.environ[name] for name in KEPT_ENV if name in os.environ}
    env.setdefault("PATH", DEFAULT_PATH)
    env.update(extra or {})
    return env


def run_command(argv, environ_update=None, timeout=120, stdin=None):
    """AnsibleModule.run_command's contract for the host programs (audit,
    watchdog, backup) that run without a module: (rc, stdout, stderr),
    never raising, bounded by timeout. stdin: an open file it reads from
    (an archive root hands to an agent's process), else nothing."""
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout,
                              check=False, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                              env=child_env(environ_update))
    except subprocess.TimeoutExpired:
        return 124, "", "%s timed out after %d s" % (argv[0], timeout)
    except OSError as exc:
        return 127, "", str(exc)
    return proc.returncode, proc.stdout, proc.stderr


def show(systemctl, units, properties=SHOW_PROPERTIES):
    """The one reader of unit states: unit -> its cleaned properties, in
    one `systemctl show` call. systemctl runs `systemctl ARGS` on one
    manager (a user's, or the system's); only the units asked of it are
    taken from its answer. RuntimeError when it does not answer."""
    if not units:
        return {}
    rc, out, err = systemctl("show", "--property=" + ",".join(properties), *units)
    if rc != 0:
        raise RuntimeError("systemctl show failed (exit %s): %s" % (rc, (err or out).strip()[-300:]))
    return states_of(out, units, properties)


def restart(systemctl, units, action="restart", *flags):
    """The one way root (re)starts units on purpose: the start-rate counter
    is reset first, so deliberate restarts (a change, then its rollback;
    the watchdog's; a start after crashes) do not use up StartLimitBurst and
    leave the unit failed. units: one unit or several of that manager;
    flags: systemctl options of the action (e.g. --no-block)."""
    units = [units] if isinstance(units, str) else list(units)
    systemctl("reset-failed", *units)
    return systemctl(action, *(list(flags) + units))


def parse_show(out):
    """unit Id -> its properties, from `systemctl show` of several units
    (one block of KEY=value lines per unit, blocks separated by a blank line)."""
    states = {}
    for block in out.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if props.get("Id"):
            states[props["Id"]] = props
    return states


class UserManager:
    """Runs `systemctl --user` as the user, with the XDG_RUNTIME_DIR and
    bus address its manager listens on (root's environment has neither)."""

    def __init__(self, run_command, user):
        self._run = run_command
        self.user = user
        self.uid = pwd.getpwnam(user).pw_uid
        runtime_dir = "/run/user/%d" % self.uid
        self.environ = {
            "XDG_RUNTIME_DIR": runtime_dir,
            "DBUS_SESSION_BUS_ADDRESS": "unix:path=%s/bus" % runtime_dir,
        }

    def systemctl(self, *args):
        argv = ["runuser", "-u", self.user, "--", "systemctl", "--user", "--no-pager"] + list(args)
        return self._run(argv, environ_update=self.environ)

    def restart(self, units, action="restart", *flags):
        """restart (start, reload) units through this manager; see restart()."""
        return restart(self.systemctl, units, action, *flags)

    def show(self, units, properties=SHOW_PROPERTIES):
        """unit name -> its properties (see show()). The manager is the
        agent's own: it never speaks for another agent's unit."""
        return show(self.systemctl, units, properties)

    def journal(self, unit, lines=30):
        # The unit's own output, or (+) what the user manager said about it,
        # e.g. that a start command failed.
        rc, out, err = self._run(["journalctl", "--no-pager", "--output=short-iso", "-n", str(lines),
                                  "_UID=%d" % self.uid, "_SYSTEMD_USER_UNIT=%s" % unit, "+",
                                  "_UID=%d" % self.uid, "USER_UNIT=%s" % unit])
        return out if rc == 0 else err


def agent_user(agent, config):
    """The user an agent's gateway runs as: its entry's, else the config's
    (configs written before each agent had its own user); never root."""
    return agent.get("user") or config.get("user") or "nobody"


class Managers:
    """The user managers of many units: each agent runs as its own user, so
    a unit's manager is that of users[unit] (or of the default user). One
    systemctl call per manager and action, whatever the number of units."""

    def __init__(self, run_command, users, default_user=None):
        self._run, self._users, self._default = run_command, dict(users or {}), default_user
        self._managers = {}

    def user_of(self, unit):
        user = self._users.get(unit) or self._default
        if not user:
            raise KeyError("(none given for %s)" % unit)
        return user

    def of(self, unit):
        """UserManager of a unit; KeyError when its user does not exist."""
        user = self.user_of(unit)
        if user not in self._managers:
            try:
                self._managers[user] = UserManager(self._run, user)
            except KeyError:
                raise KeyError(user) from None
        return self._managers[user]

    def grouped(self, units):
        """[(manager, [units of that manager]), ...] in the order first seen."""
        groups = {}
        for unit in units:
            groups.setdefault(self.user_of(unit), []).append(unit)
        return [(self.of(units_[0]), units_) for units_ in groups.values()]

    def show(self, units, skip_failed=False):
        """The states of units across their managers, asked side by side: a
        re-run of a large fleet waits for the slowest manager, not the sum.
        skip_failed: a manager that does not answer (not running) gives no
        states instead of raising."""
        groups = self.grouped(units)

        def ask(group):
            try:
                return group[0].show(group[1])
            except RuntimeError:
                if skip_failed:
                    return {}
                raise

        states = {}
        with ThreadPoolExecutor(max_workers=max(1, min(SHOW_WORKERS, len(groups)))) as pool:
            for answer in pool.map(ask, groups):
                states.update(answer)
        return states
