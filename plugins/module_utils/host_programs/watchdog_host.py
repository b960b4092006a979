# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The watchdog's view of one agent user's systemd manager, its processes
and time, from root (watchdog.py). Tests replace Host; the rest of the
watchdog is plain logic over it."""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import time

from ansible_collections.agentfleet.vps.plugins.module_utils import config_txn, fileops
from ansible_collections.agentfleet.vps.plugins.module_utils.systemd_user import UserManager, run_command

UNIT_PROPERTIES = ("Id", "ActiveState", "SubState", "Result", "ExecMainStatus", "NRestarts", "MainPID",
                   "ActiveEnterTimestampMonotonic", "ControlGroup", "MemoryCurrent", "MemoryMax")


class WatchdogError(Exception):
    pass


class LockHeld(WatchdogError):
    pass


class HostUnreadable(WatchdogError):
    """The unit states could not be read: acting would mean treating every
    agent as down, so the run changes nothing."""


class Host:
    """One agent user's systemd manager, its processes, and time, seen from
    root. Tests replace it; everything else in this file is plain logic
    over it."""

    def __init__(self, user):
        # A restart may wait for TimeoutStopSec (330 s) of the old gateway.
        self.manager = UserManager(lambda argv, environ_update=None: run_command(argv, environ_update, 360), user)
        self.user, self.uid = user, self.manager.uid
        self.gid = pwd.getpwnam(user).pw_gid

    @staticmethod
    def run(argv, timeout=120, env=None):
        return run_command(argv, env, timeout)

    def run_as(self, argv, timeout=120, env=None):
        """argv as the agent's user (runuser sets its HOME), never as root."""
        return run_command(["runuser", "-u", self.user, "--"] + list(argv), env, timeout)

    def systemctl(self, *args):
        return self.manager.systemctl(*args)

    def units(self, units):
        """unit -> its state, for all of them in one systemctl call. Only the
        units asked of this (agent-owned) manager: it must not speak for
        another agent's unit."""
        try:
            return self.manager.show(units, UNIT_PROPERTIES)
        except RuntimeError as exc:
            raise HostUnreadable("cannot read the unit states of %s's user manager (%s)" % (self.user, exc)) from None

    def unit(self, unit):
        try:
            return self.units([unit]).get(unit, {})
        except HostUnreadable:
            return {}

    @staticmethod
    def probe(url, body=None):
        return config_txn.probe(url, body=body, timeout=5)

    def journal(self, unit, lines):
        return self.manager.journal(unit, lines)

    @staticmethod
    def listeners(port):
        """PIDs of the processes listening on port."""
        _rc, out, _err = run_command(["ss", "-Hltnp", "sport = :%d" % port], timeout=30)
        return sorted({int(pid) for pid in re.findall(r"pid=(\d+)", out)})

    @staticmethod
    def owner(pid):
        """uid of a process, or None when it is gone."""
        try:
            return os.stat("/proc/%d" % pid).st_uid
        except OSError:
            return None

    @staticmethod
    def cgroup(pid):
        return (fileops.read_bytes("/proc/%d/cgroup" % pid, limit=65536) or b"").decode("utf-8", "replace")

    @staticmethod
    def kill(pid, sig):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)

    @staticmethod
    def alive(pid):
        return os.path.exists("/proc/%d" % pid)

    monotonic = staticmethod(time.monotonic)
    sleep = staticmethod(time.sleep)
