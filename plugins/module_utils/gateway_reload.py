# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an OpenClaw gateway did with a config file it saw change.

The gateway watches its openclaw.json and applies most keys itself
(gateway.reload.mode hybrid, OpenClaw's default): a hot reload, or an
in-process restart for keys that need one. Its verdict is a line of
subsystem gateway/reload in its own JSON-lines log; this module reads the
lines the log gained after a mark and says which verdict came first.

The log is the agent's own file: it is read through fileops (no link
followed), in bounded pieces, and a line is only ever matched against
fixed prefixes. An agent can forge a verdict about its own gateway; the
caller still probes /readyz before it believes one.
"""

from __future__ import annotations

import json
import os
import time

from ansible_collections.agentfleet.vps.plugins.module_utils import fileops, fleet_plan

RELOAD_SUBSYSTEM = "gateway/reload"
# (message prefix, outcome), first match wins.
VERDICTS = (
    ("config hot reload applied", "applied"),
    ("config change applied", "applied"),
    ("config change requires gateway restart", "restart"),
    ("config reload skipped (invalid config)", "invalid"),
    ("config reload skipped (config file not found)", "failed"),
    ("config reload failed", "failed"),
    ("config restart failed", "failed"),
    ("config reload disabled", "off"),
)
CHUNK = 1 << 20
LINE_MAX = 4096


def verdict(line):
    """(outcome, message) of one log line, or None when it is no verdict."""
    if len(line) > LINE_MAX:
        return None
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    if not isinstance(entry, dict):
        return None
    meta = entry.get("_meta") if isinstance(entry.get("_meta"), dict) else {}
    if RELOAD_SUBSYSTEM not in str(meta.get("name") or entry.get("0") or ""):
        return None
    message = str(entry.get("message") or entry.get("1") or "")
    for prefix, outcome in VERDICTS:
        if message.startswith(prefix):
            return outcome, message[:300]
    return None


class LogTail:
    """The lines a gateway's daily logs gain after mark(), across midnight."""

    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.name, self.offset, self.rest = None, 0, b""

    def _names(self):
        try:
            return sorted(n for n in fileops.listdir(self.log_dir) if fleet_plan.LOG_FILE_RE.fullmatch(n))
        except OSError:
            return []

    def mark(self):
        names = self._names()
        self.name = names[-1] if names else None
        try:
            info = fileops.lstat(os.path.join(self.log_dir, self.name)) if self.name else None
        except OSError:
            info = None
        self.offset, self.rest = (info.st_size if info else 0), b""

    def lines(self):
        """Complete lines written since the last call (at most CHUNK bytes a call)."""
        names = [n for n in self._names() if self.name is None or n >= self.name]
        if not names:
            return []
        if names[0] != self.name:
            self.name, self.offset, self.rest = names[0], 0, b""
        data, info = fileops.read_range(os.path.join(self.log_dir, self.name), self.offset, CHUNK)
        if info is not None and info.st_size < self.offset:  # replaced: start over
            self.offset, self.rest = 0, b""
            data, info = fileops.read_range(os.path.join(self.log_dir, self.name), 0, CHUNK)
        self.offset += len(data)
        data = self.rest + data
        complete, dummy, self.rest = data.rpartition(b"\n")
        self.rest = self.rest[-LINE_MAX:]
        if not data and len(names) > 1:  # this day's file is done: go on with the next
            self.name, self.offset, self.rest = names[1], 0, b""
        return [line.decode("utf-8", "replace") for line in complete.split(b"\n") if line] if complete else []


def wait_verdict(tail, timeout, sleep=time.sleep, clock=time.monotonic, interval=0.1):
    """(outcome, message) of the first verdict the log gains, or (None, why)
    when none comes within timeout seconds."""
    deadline = clock() + timeout
    while True:
        try:
            lines = tail.lines()
        except OSError as exc:  # e.g. a link where the log should be
            return None, "the reload log is unreadable: %s" % exc
        for line in lines:
            found = verdict(line)
            if found:
                return found
        if clock() >= deadline:
            return None, "no reload verdict in %s within %ss" % (tail.log_dir, timeout)
        sleep(interval)
