# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The self-healing watchdog: the layer that still works when everything
above it is broken.

Cron runs it as root (/etc/cron.d), out of the agents' reach: its
config, secrets, state, lock and breaker are root's, and it never follows
a path an agent can change. For each agent whose unit is not active
or whose /health does not answer, it collects the last log lines, asks
the optional LLM for a diagnosis and one allow-listed action (or takes
the ladder: restart, then restore last known good), verifies /readyz,
restores last known good when that failed, and logs the incident. A
breaker stops it after `breaker_max` remediations of one agent in an
hour, until an operator resets it.

This file is the run and its command line; the rest is split by concern:
watchdog_host (the agent user's manager and processes, as root sees
them), watchdog_diagnosis (symptom, log excerpt, holds, memory budget),
watchdog_llm (the optional diagnosis), watchdog_actions (the allow-listed
actions, the ladder, verify) and watchdog_state (lock, breaker,
incidents). Standard library only, and the module_utils the watchdog role
installs beside it (read from these imports); jsonschema from Debian is
used only to check an LLM answer, and its absence only means the ladder.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys

from ansible_collections.agentfleet.vps.plugins.module_utils import fileops
from ansible_collections.agentfleet.vps.plugins.module_utils.systemd_user import agent_user
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs.watchdog_actions import planned_restart, remediate
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs.watchdog_diagnosis import hold_reason, memory_symptom, symptom_of
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs.watchdog_host import Host, HostUnreadable, LockHeld, WatchdogError
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs.watchdog_state import (
    alert_line, load_breaker, recent, record, reset_breakers, run_lock, save_breaker)

DEFAULT_CONFIG = "/etc/agentfleet/watchdog.json"


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


def load_config(path):
    data = json.loads(fileops.read_bytes(path) or b"null")
    if not isinstance(data, dict):
        raise WatchdogError("%s does not exist: deploy the watchdog role (playbooks/site.yml) first" % path)
    secrets = data.get("secrets_file")
    data["secrets"] = json.loads(fileops.read_bytes(secrets) or b"{}") if secrets else {}
    return data


def run(config, host=None, now=None, trigger="manual"):
    """Check every agent, heal what is down; the summary of this run. host
    (tests) stands in for every agent user's manager."""
    hosts, by_user = {}, {}
    for agent in config["agents"]:
        by_user.setdefault(agent_user(agent, config), []).append(agent)

    state_dir = config["state_dir"]
    window, limit = int(config.get("breaker_window", 3600)), int(config.get("breaker_max", 3))
    summary = {"trigger": trigger, "healthy": [], "incidents": [], "left_alone": [], "unreadable": [], "held": []}
    with run_lock(state_dir):
        breaker = load_breaker(state_dir)
        # One unit read per user manager; a manager that cannot be read
        # (or a user that does not exist) leaves its agents alone.
        states = {}
        for user, agents in by_user.items():
            try:
                hosts[user] = host or Host(user)
                states.update(hosts[user].units([a["unit"] for a in agents]))
            except (HostUnreadable, KeyError) as exc:
                summary["unreadable"] += ["%s (%s)" % (a["name"], exc) for a in agents]
        for agent in config["agents"]:
            if agent["unit"] not in states:
                continue
            held = hold_reason(config, agent)
            if held:
                summary["held"].append("%s (%s)" % (agent["name"], held))
                continue
            host_now = hosts[agent_user(agent, config)]
            symptom = symptom_of(host_now, agent, int(config.get("ready_timeout", 90)), states[agent["unit"]])
            heal = remediate
            if symptom is None:
                symptom, heal = memory_symptom(host_now, config, states[agent["unit"]]), planned_restart
            if symptom is None:
                summary["healthy"].append(agent["name"])
                continue
            entry = breaker.setdefault(agent["name"], {})
            stamp = now or now_utc()
            if entry.get("tripped"):
                summary["left_alone"].append(agent["name"])
                continue
            entry["attempts"] = recent(entry, stamp, window)
            if len(entry["attempts"]) >= limit:
                entry["tripped"] = stamp.isoformat()
                incident = {"agent": agent["name"], "symptom": symptom, "action": "none", "result": "breaker_tripped",
                            "diagnosis": "%d remediation(s) in the last %d s; left alone until "
                                         "playbooks/watchdog_reset.yml" % (len(entry["attempts"]), window),
                            "log_excerpt": "", "steps": []}
            else:
                incident = heal(host_now, config, agent, symptom)
                entry["attempts"].append(stamp.timestamp())
            # `time` is when the line is written: the audit reads lines
            # newer than its last run, and a remediation takes minutes.
            incident = dict(incident, time=now_utc().isoformat() if now is None else stamp.isoformat(),
                            detected=stamp.isoformat(), trigger=trigger)
            save_breaker(state_dir, breaker)
            record(config, incident)
            summary["incidents"].append(incident)
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(prog="agentfleet-watchdog", description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--trigger", default="manual", help="recorded in each incident (cron passes 'cron')")
    parser.add_argument("--reset", action="store_true", help="close open breakers instead of checking")
    parser.add_argument("--agent", action="append", help="with --reset: only these agents")
    parser.add_argument("--check", action="store_true", help="with --reset: only say what would be reset")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        if args.reset:
            cleared, tripped = reset_breakers(config["state_dir"], args.agent, args.check)
            sys.stdout.write(json.dumps({"cleared": cleared, "tripped": tripped}) + "\n")
            return 0
        summary = run(config, trigger=args.trigger)
    except LockHeld as exc:
        sys.stdout.write("agentfleet-watchdog: %s\n" % exc)
        return 0
    except (WatchdogError, OSError, ValueError, KeyError) as exc:
        sys.stderr.write("agentfleet-watchdog: %s\n" % exc)
        return 1
    for incident in summary["incidents"]:
        sys.stdout.write(alert_line(incident).lstrip("- "))
    sys.stdout.write("watchdog (%s): %d healthy, %d incident(s), left alone (breaker open): %s\n" % (
        args.trigger, len(summary["healthy"]), len(summary["incidents"]),
        ", ".join(summary["left_alone"]) or "none"))
    if summary["held"]:
        sys.stdout.write("left alone, deliberate work (nothing changed for them): %s\n" % "; ".join(summary["held"]))
    if summary["unreadable"]:
        sys.stdout.write("left alone, unit state unreadable (nothing changed for them): %s\n"
                         % "; ".join(summary["unreadable"]))
    return 0
