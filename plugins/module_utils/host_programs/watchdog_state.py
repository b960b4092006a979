# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The watchdog's own state, root's (watchdog.py): the lock that allows one
run at a time, the breaker per agent, and the incident log, ALERTS.md line
and webhook of each incident."""

from __future__ import annotations

import contextlib
import json
import os
import socket

from ansible_collections.agentfleet.vps.plugins.module_utils import fileops
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import alerts, endpoints
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs.watchdog_host import LockHeld

LOCK_NAME = "run.lock"


BREAKER_NAME = "breaker.json"


def load_breaker(state_dir):
    try:
        data = json.loads(fileops.read_bytes(os.path.join(state_dir, BREAKER_NAME)) or b"{}")
    except ValueError:
        data = {}
    return data if isinstance(data, dict) else {}


def save_breaker(state_dir, data):
    fileops.write_if_changed(os.path.join(state_dir, BREAKER_NAME),
                             (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"), 0o600)


def recent(entry, now, window):
    cutoff = now.timestamp() - window
    return [t for t in entry.get("attempts", []) if t >= cutoff]


def reset_breakers(state_dir, agents=None, check_mode=False):
    """Names of the agents whose breaker was open and is now closed."""
    with run_lock(state_dir, wait=60):
        data = load_breaker(state_dir)
        cleared = sorted(name for name, entry in data.items()
                         if (agents is None or name in agents) and (entry.get("tripped") or entry.get("attempts")))
        if cleared and not check_mode:
            save_breaker(state_dir, {k: v for k, v in data.items() if k not in cleared})
    tripped = sorted(name for name in cleared if data[name].get("tripped"))
    return cleared, tripped


def alert_line(incident):
    return "- %s watchdog: **%s** %s -> %s (%s)\n" % (
        incident["time"], incident["agent"], alerts.quote(incident["symptom"]), incident["action"], incident["result"])


def record(config, incident):
    """The incident log line (the oversight audit reads it), a line in
    the coordinator's ALERTS.md, and the webhook when one is set."""
    state_dir = config["state_dir"]
    fileops.append_line(config.get("incident_log") or os.path.join(state_dir, "incidents.jsonl"),
                        json.dumps(incident, sort_keys=True) + "\n", 0o600)
    if config.get("alerts_file"):
        with contextlib.suppress(OSError):
            alerts.append(config["alerts_file"], alert_line(incident))
    url = config["secrets"].get("webhook_url")
    if url:
        try:
            text = "agentfleet watchdog on %s: %s" % (socket.gethostname(), alert_line(incident).strip("- \n"))
            endpoints.post_json(url, alerts.webhook_payload(text, config.get("webhook_format", "slack")), timeout=15)
        except (OSError, ValueError) as exc:
            incident["webhook_error"] = str(exc)


@contextlib.contextmanager
def run_lock(state_dir, wait=0):
    """One watchdog at a time; a second one gives up at once (cron starts
    the next one within watchdog_interval minutes anyway) unless asked to wait."""
    path = os.path.join(state_dir, LOCK_NAME)
    fileops.makedirs(state_dir, 0o700)
    try:
        with fileops.lock(path, timeout=wait) as fd:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
            yield
    except fileops.LockTimeout:
        holder = (fileops.read_bytes(path, limit=64) or b"?").decode("ascii", "replace").strip() or "?"
        raise LockHeld("lock held by another watchdog run (PID %s, %s); this run does nothing"
                       % (holder, path)) from None
