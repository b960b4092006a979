# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resource guardrails the audit reports on and the watchdog acts on: a
gateway's memory against its budget, free disk, the size of an agent's
session stores. Reads only; standard library only (and fileops.py)."""

from __future__ import annotations

import os
import re

from ansible_collections.agentfleet.vps.plugins.module_utils import fileops

# systemd's "no value" for a memory property (and its "infinity").
UNSET = 2 ** 64 - 1
# Entries counted in an agent's directory before its size counts as
# "at least": an agent can make any number of files.
MAX_ENTRIES = 200000
_RSS = re.compile(rb"^VmRSS:\s+([0-9]+) kB$", re.M)


def _number(props, key):
    try:
        value = int(props.get(key) or 0)
    except ValueError:
        return 0
    return value if 0 < value < UNSET else 0


def gateway_memory(props, uid):
    """Bytes a gateway uses: its unit's MemoryCurrent (cgroup v2), else the
    resident size of its main process when that process is the agent's
    own (uid); None when neither is known. props come from the agent's
    own user manager, so a PID it names is only read when its owner fits."""
    current = _number(props, "MemoryCurrent")
    if current:
        return current
    pid = _number(props, "MainPID")
    if not pid:
        return None
    try:
        if os.stat("/proc/%d" % pid).st_uid != uid:
            return None
        with open("/proc/%d/status" % pid, "rb") as handle:
            found = _RSS.search(handle.read(65536))
    except OSError:
        return None
    return int(found.group(1)) * 1024 if found else None


def over_budget(props, uid, percent):
    """{used, budget, limit} in bytes when the gateway uses more than
    percent of its unit's MemoryMax; None when within it, when either is
    unknown, or when percent is 0 (off)."""
    limit = _number(props, "MemoryMax")
    if not percent or not limit:
        return None
    used = gateway_memory(props, uid)
    budget = limit * int(percent) // 100
    return {"used": used, "budget": budget, "limit": limit} if used is not None and used > budget else None


def disk_free(path):
    """(free bytes for unprivileged users, total bytes) of path's filesystem."""
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize, stat.f_blocks * stat.f_frsize


def tree_size(path, limit=MAX_ENTRIES):
    """(bytes of the regular files under path, complete): walked through
    directory descriptors without following a link (the agent may swap a
    directory for one while it is read), and after `limit` files the sum is
    a lower bound."""
    total = 0
    for seen, (_name, info) in enumerate(fileops.files_under(path), 1):
        if seen > limit:
            return total, False
        total += info.st_size
    return total, True


def mib(value):
    return "%.1f MiB" % (value / 1048576.0)
