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
import urllib.request

from ansible_collections.agentfleet.vps.plugins.module_utils import fileops, fleet_plan, netio

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
# What the gateway logs (subsystem gateway) once a start, its in-process
# restart included, is complete.
READY_SUBSYSTEM = "gateway"
READY_MESSAGE = "gateway ready"
# Read once per process (the unit's --port wins anyway): the gateway's own
# in-process restart keeps their old values, so a change to them needs a
# restart of the unit (seen: a new gateway.bind was not bound).
PROCESS_KEYS = ("gateway.bind", "gateway.port", "gateway.tls", "gateway.tailscale")
CHUNK = 1 << 20
LINE_MAX = 4096


def _entry(line):
    """(subsystem name, message) of one JSON log line, or None."""
    if len(line) > LINE_MAX:
        return None
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    if not isinstance(entry, dict):
        return None
    meta = entry.get("_meta") if isinstance(entry.get("_meta"), dict) else {}
    name = str(meta.get("name") or entry.get("0") or "")
    try:
        subsystem = json.loads(name).get("subsystem") if name.startswith("{") else name
    except (ValueError, AttributeError):
        subsystem = name
    return str(subsystem or ""), str(entry.get("message") or entry.get("1") or "")


def _verdict_of(entry):
    if not entry or entry[0] != RELOAD_SUBSYSTEM:
        return None
    for prefix, outcome in VERDICTS:
        if entry[1].startswith(prefix):
            return outcome, entry[1][:300]
    return None


def verdict(line):
    """(outcome, message) of one log line, or None when it is no verdict."""
    return _verdict_of(_entry(line))


def restart_outcome(line):
    """("ready", message) once the gateway's own restart completed,
    ("failed", message) when it says the restart failed, else None."""
    entry = _entry(line)
    found = _verdict_of(entry)
    if found and found[0] == "failed":
        return found
    if entry and entry[0] == READY_SUBSYSTEM and entry[1] == READY_MESSAGE:
        return "ready", READY_MESSAGE
    return None


def uptime_seconds(url, timeout=5):
    """Seconds the gateway's server at url has been up (its /readyz
    uptimeMs), or None when it does not say."""
    try:
        with netio.open_url(urllib.request.Request(url, headers={"User-Agent": "agentfleet"}), timeout,
                            proxies=False) as response:
            answer = json.loads(response.read(4096).decode("utf-8", "replace"))
    except (OSError, ValueError):
        return None
    uptime = answer.get("uptimeMs") if isinstance(answer, dict) else None
    return uptime / 1000.0 if isinstance(uptime, (int, float)) and not isinstance(uptime, bool) else None


def changed_keys(before, after, prefix=""):
    """Dotted paths of the leaves (and whole subtrees) that differ."""
    if isinstance(before, dict) and isinstance(after, dict):
        keys = set()
        for key in set(before) | set(after):
            keys |= changed_keys(before.get(key), after.get(key), "%s%s." % (prefix, key))
        return keys
    return set() if before == after else {prefix[:-1]}


def needs_process_restart(before, after):
    """Whether a change touches a key only a new process reads."""
    return any(key == name or key.startswith(name + ".") or name.startswith(key + ".")
               for key in changed_keys(before, after) for name in PROCESS_KEYS)


class LogTail:
    """The lines a gateway's daily logs gain after mark(), across midnight."""

    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.name, self.offset, self.rest = None, 0, b""
        # Lines read but not yet looked at (after a match), returned first.
        self.pending = []

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
        """Complete lines written since the last call (at most CHUNK bytes a
        call), after the lines a match left unread."""
        pending, self.pending = self.pending, []
        return pending + self._read()

    def _read(self):
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


def wait_for(tail, timeout, match, what, sleep=time.sleep, clock=time.monotonic, interval=0.1):
    """match(line) of the first line the log gains that matches, or
    (None, why) when none comes within timeout seconds."""
    deadline = clock() + timeout
    while True:
        try:
            lines = tail.lines()
        except OSError as exc:  # e.g. a link where the log should be
            return None, "the reload log is unreadable: %s" % exc
        for index, line in enumerate(lines):
            found = match(line)
            if found:
                tail.pending = lines[index + 1:] + tail.pending
                return found
        if clock() >= deadline:
            return None, "no %s in %s within %ss" % (what, tail.log_dir, timeout)
        sleep(interval)


def wait_verdict(tail, timeout, **kwargs):
    """(outcome, message) of the first reload verdict the log gains."""
    return wait_for(tail, timeout, verdict, "reload verdict", **kwargs)


def wait_restarted(tail, timeout, **kwargs):
    """("ready", message) once the gateway's own restart is complete."""
    return wait_for(tail, timeout, restart_outcome, "'%s' after the restart" % READY_MESSAGE, **kwargs)
