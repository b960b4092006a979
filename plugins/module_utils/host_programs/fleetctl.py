# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`agentfleet`, the command on the host that says how the fleet is doing.

It reads what the overseers already keep, all of it root's: the audit's
config and reports, the watchdog's incident log, the penalty ledger, the
backup manifests and root's last good copy of each agent's config; it
asks each user manager for its gateway unit and each gateway for /readyz.
It writes nothing; `audit` starts the audit service once (the timer's
sandbox, lock and state) and shows the report it wrote.

Much of what it shows was written by an agent or a model (a finding's
summary quotes logs and answers, an incident its symptom): in text every
such field is one line with control characters replaced, so nothing an
agent wrote can move the operator's cursor or forge a line; --json is
JSON.

Standard library only (and the collection's module_utils beside it).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.agentfleet.vps.plugins.module_utils import config_txn, fileops
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import backup
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs.alerts import quote
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs.audit import AuditError, load_config, now_utc, unit_states
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs.audit_checks import parse_time
from ansible_collections.agentfleet.vps.plugins.module_utils.constitution import ledger_path

DEFAULT_CONFIG = "/etc/agentfleet/oversight.json"
AUDIT_SERVICE = "agentfleet-audit.service"
REPORT = re.compile(r"^audit-(\d{8})T\d{6}Z\.json$")
# Logs an agent's actions grow: read at most their last this many bytes.
MAX_LOG = 8 * 1024 * 1024
MAX_REPORT = 16 * 1024 * 1024
TEXT_LIMIT = 160
MAX_DAYS = 3650


def json_lines(path):
    """The JSON objects of a .jsonl file, oldest first; a line that is not
    one (or was cut by the tail read) is left out."""
    data = fileops.read_bytes(path, limit=MAX_LOG, tail=True) if path else None
    found = []
    for line in (data or b"").decode("utf-8", "replace").splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict):
            found.append(item)
    return found


def read_json(path, limit=None):
    """The JSON document of a root file; None when it is missing, too large
    or not JSON (nested past the parser's depth included)."""
    limit = limit or MAX_REPORT
    try:
        data = fileops.read_bytes(path, limit=limit + 1)
        return json.loads(data) if data and len(data) <= limit else None
    except (OSError, ValueError, RecursionError):
        return None


def since_days(entries, now, days, field="time"):
    start = now - datetime.timedelta(days=days)
    return [e for e in entries if (parse_time(e.get(field)) or start) > start]


# ------------------------------------------------------------------ sources

def incidents(config, now, days=7, agent=None):
    found = since_days(json_lines(config.get("incident_log")), now, days)
    return [i for i in found if agent is None or i.get("agent") == agent]


def violations(config, now, days=7, agent=None):
    state_dir = config.get("constitution_state_dir")
    found = since_days(json_lines(ledger_path(state_dir)) if state_dir else [], now, days)
    return [v for v in found if agent is None or v.get("agent") == agent]


def report_names(config):
    """The audit's JSON reports, oldest first (their names sort by time)."""
    try:
        return sorted(n for n in fileops.listdir(os.path.join(config["report_dir"], "reports")) if REPORT.match(n))
    except FileNotFoundError:
        return []


def latest_report(config):
    """The newest report, found by name: latest.json is a link, and
    nothing here follows one."""
    names = report_names(config)
    if not names:
        return {}
    report = read_json(os.path.join(config["report_dir"], "reports", names[-1]))
    # Said, not shown as a clean report.
    return report if isinstance(report, dict) else {"unreadable": names[-1]}


def audit_time(report):
    return report.get("unreadable") and "%s (unreadable)" % report["unreadable"] or report.get("time")


def findings_of_day(config, day):
    """Every finding of the day's reports, once each (by its stable key),
    with the first and last report that had it."""
    reports = os.path.join(config["report_dir"], "reports")
    names = [n for n in report_names(config) if REPORT.match(n).group(1) == day]
    seen = {}
    for name in names:
        report = read_json(os.path.join(reports, name))
        if not isinstance(report, dict):
            seen[name] = {"key": name, "rule": "report-unreadable", "severity": "warning", "agent": "-",
                          "summary": "report %s is too large or not JSON" % name, "reports": 1}
            continue
        for item in report.get("findings") or []:
            if not isinstance(item, dict) or "key" not in item:
                continue
            entry = seen.setdefault(item["key"], dict(item, first_seen=report.get("time"), reports=0))
            entry.update(last_seen=report.get("time"), reports=entry["reports"] + 1)
            entry.pop("new", None)
    return sorted(seen.values(), key=lambda f: (str(f.get("first_seen")), str(f.get("rule")), str(f.get("agent"))))


def backups(config, now):
    """agent -> its kept archives' count and the newest one's age and size."""
    directory = (config.get("backups") or {}).get("dir")
    result = {}
    for agent in config["agents"]:
        kept = backup.listing(os.path.join(directory, agent["name"])) if directory else []
        newest = kept[-1] if kept else None
        made = parse_time(newest.get("created")) if newest else None
        result[agent["name"]] = {
            "count": len(kept), "newest": newest.get("archive") if newest else None,
            "created": newest.get("created") if newest else None,
            "age_hours": round((now - made).total_seconds() / 3600, 1) if made else None,
            "size": newest.get("size") if newest else None, "trigger": newest.get("trigger") if newest else None}
    return result


def planned_model(agent):
    """The primary model of root's last good copy of the agent's config:
    what the deploy wrote, or the agent's own config that a readiness
    check promoted, so any shape at all."""
    node = read_json(os.path.join(agent.get("store_dir") or "/nonexistent", "openclaw.json.last-good"), 1024 * 1024)
    for key in ("agents", "defaults", "model"):
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node = node.get("primary")
    return node if isinstance(node, str) else None


# ------------------------------------------------------------------- views

def status(config, now, units=None, ready=None):
    """Each agent: its unit, whether it is ready, its model, its last
    incident and its last finding."""
    agents = config["agents"]
    ready = ready or config_txn.readyz
    units = unit_states(config, agents) if units is None else units
    with ThreadPoolExecutor(max_workers=max(1, min(len(agents), 8))) as pool:
        answers = list(pool.map(lambda a: ready(a["port"], timeout=3), agents))
    report = latest_report(config)
    logged = incidents(config, now, days=MAX_DAYS)
    result = []
    for agent, (is_ready, detail) in zip(agents, answers):
        unit = units.get(agent["unit"], {})
        last_incident = next((i for i in reversed(logged) if i.get("agent") == agent["name"]), None)
        last_finding = next((f for f in report.get("findings") or [] if f.get("agent") == agent["name"]), None)
        result.append({
            "name": agent["name"], "role": agent.get("role"), "unit": agent["unit"], "port": agent["port"],
            "active": unit.get("ActiveState"), "sub": unit.get("SubState"), "restarts": unit.get("NRestarts"),
            "ready": is_ready, "readyz": detail, "model": planned_model(agent),
            "last_incident": {k: last_incident.get(k) for k in ("time", "symptom", "action", "result")}
            if last_incident else None,
            "last_finding": {k: last_finding.get(k) for k in ("rule", "severity", "summary")}
            if last_finding else None,
            "last_audit": audit_time(report)})
    return result


def sitrep(config, now):
    """The day (UTC) so far: each agent's status, the findings, incidents
    and violations of the day, usage and backups."""
    day = now.date().isoformat()
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    report = latest_report(config)
    usage = report.get("usage") if (report.get("usage") or {}).get("day") == day else None
    return {
        "host": os.uname().nodename, "time": now.isoformat(timespec="seconds"), "day": day,
        "agents": status(config, now),
        "findings": findings_of_day(config, day.replace("-", "")),
        "incidents": [i for i in incidents(config, now, days=1) if (parse_time(i.get("time")) or start) >= start],
        "violations": [v for v in violations(config, now, days=1) if (parse_time(v.get("time")) or start) >= start],
        "usage": usage, "backups": backups(config, now), "last_audit": audit_time(report)}


def run_audit(config, runner=subprocess.run):
    """Start the audit service once and wait for it; the report it wrote."""
    done = runner(["systemctl", "start", AUDIT_SERVICE], capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        said = (done.stderr or "").strip()[-300:]
        raise RuntimeError("systemctl start %s exited %d: %s" % (AUDIT_SERVICE, done.returncode, said))
    return latest_report(config)


# -------------------------------------------------------------------- text

def q(value, limit=TEXT_LIMIT):
    """One field for the terminal: its own line's worth, controls gone."""
    return "-" if value is None or value == "" else quote(value, limit)[1:-1]


def table(rows, header):
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    return ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header] + rows]


def text_status(agents):
    rows = [[q(a["name"], 40), q(a["active"], 40), "yes" if a["ready"] else "NO", q(a["model"], 60), a["port"],
             q(a["restarts"], 10),
             q("%s %s -> %s" % (a["last_incident"]["time"], a["last_incident"]["symptom"],
                                a["last_incident"]["result"]), 70) if a["last_incident"] else "-",
             q("%s %s" % (a["last_finding"]["rule"], a["last_finding"]["summary"]), 70) if a["last_finding"] else "-"]
            for a in agents]
    return table(rows, ["AGENT", "UNIT", "READY", "MODEL", "PORT", "RESTARTS", "LAST INCIDENT", "LAST FINDING"])


def text_findings(findings):
    return ["- [%s] %s %s: %s (%s..%s, %d reports)" % (
        q(f.get("severity"), 10), q(f.get("rule"), 40), q(f.get("agent"), 40), q(f.get("summary")),
        q(f.get("first_seen"), 30), q(f.get("last_seen"), 30), f.get("reports", 0)) for f in findings] or ["- none"]


def text_incidents(found):
    return ["- %s %s: %s -> %s (%s)" % (q(i.get("time"), 30), q(i.get("agent"), 40), q(i.get("symptom")),
                                        q(i.get("action"), 30), q(i.get("result"), 30)) for i in found] or ["- none"]


def text_violations(found):
    return ["- %s %s [%s] %s; changed: %s" % (q(v.get("time"), 30), q(v.get("agent"), 40), q(v.get("severity"), 20),
                                              q(v.get("what")), q(v.get("changed"))) for v in found] or ["- none"]


def text_usage(usage):
    if not usage:
        return ["- no audit of today yet"]
    rows = [[q(name, 40), u.get("messages", 0), u.get("input", 0), u.get("output", 0), u.get("totalTokens", 0),
             "%.4f" % float(u.get("cost") or 0)] for name, u in sorted((usage.get("agents") or {}).items())]
    return table(rows, ["AGENT", "MESSAGES", "INPUT", "OUTPUT", "TOTAL TOKENS", "COST USD"])


def text_backups(kept):
    rows = [[q(name, 40), b["count"], q(b["newest"], 60), "-" if b["age_hours"] is None else b["age_hours"],
             "-" if b["size"] is None else b["size"]] for name, b in kept.items()]
    return table(rows, ["AGENT", "KEPT", "NEWEST", "AGE HOURS", "BYTES"])


def text_sitrep(rep):
    out = ["agentfleet sitrep of %s, %s (UTC day %s; last audit %s)" % (
        q(rep["host"], 80), rep["time"], rep["day"], q(rep["last_audit"], 40)), "", "Agents"]
    out += text_status(rep["agents"])
    out += ["", "Findings today (%d)" % len(rep["findings"])] + text_findings(rep["findings"])
    out += ["", "Watchdog incidents today (%d)" % len(rep["incidents"])] + text_incidents(rep["incidents"])
    out += ["", "Violations recorded today (%d)" % len(rep["violations"])] + text_violations(rep["violations"])
    out += ["", "Usage today"] + text_usage(rep["usage"])
    out += ["", "Backups"] + text_backups(rep["backups"])
    return out


def text_audit(report):
    if "unreadable" in report:
        return ["the newest audit report, %s, is too large or not JSON" % q(report["unreadable"], 80)]
    out = ["audit of %s at %s: %s" % (q(report.get("host"), 80), q(report.get("time"), 40), ", ".join(
        "%s %s" % (n, s) for s, n in sorted((report.get("counts") or {}).items())))]
    return out + text_findings([dict(f, first_seen=report.get("time"), last_seen=report.get("time"), reports=1)
                                for f in report.get("findings") or []])


# --------------------------------------------------------------------- CLI

def days(text):
    value = int(text)
    if not 1 <= value <= MAX_DAYS:
        raise argparse.ArgumentTypeError("give 1 to %d days" % MAX_DAYS)
    return value


def parser():
    top = argparse.ArgumentParser(prog="agentfleet", description="How the agent fleet on this host is doing.")
    top.add_argument("--config", default=DEFAULT_CONFIG, help="the audit's config (default %(default)s)")
    commands = top.add_subparsers(dest="command", required=True)
    for name, text in (("status", "each agent: unit, ready, model, last incident, last finding"),
                       ("sitrep", "today's findings, incidents, violations, usage and backups"),
                       ("incidents", "the watchdog's incidents"), ("violations", "the penalty ledger's entries"),
                       ("audit", "run the oversight audit now and show its report")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--json", action="store_true", help="JSON instead of text")
        if name in ("incidents", "violations"):
            command.add_argument("--agent", help="only this agent's")
            command.add_argument("--days", type=days, default=7, help="how far back (default %(default)s)")
    return top


def answer(args, config, now):
    """(JSON-able result, its text lines) of one command."""
    if args.command == "status":
        result = status(config, now)
        return result, text_status(result)
    if args.command == "sitrep":
        result = sitrep(config, now)
        return result, text_sitrep(result)
    if args.command == "incidents":
        result = incidents(config, now, args.days, args.agent)
        return result, text_incidents(result)
    if args.command == "violations":
        result = violations(config, now, args.days, args.agent)
        return result, text_violations(result)
    result = run_audit(config)
    return result, text_audit(result)


def main(argv=None, out=sys.stdout):
    args = parser().parse_args(argv)
    if os.geteuid() != 0:
        sys.stderr.write("agentfleet: it reads root's records (reports, incidents, ledger, backups): "
                         "run it as root, e.g. sudo agentfleet %s\n" % args.command)
        return 2
    if out is sys.stdout:
        # Whatever the terminal's encoding, an unusual character is printed
        # escaped, never a crash halfway through the report.
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        config = load_config(args.config)
        result, lines = answer(args, config, now_utc())
    except (AuditError, OSError, ValueError, RuntimeError, subprocess.SubprocessError) as exc:
        sys.stderr.write("agentfleet: %s\n" % exc)
        return 1
    out.write(json.dumps(result, indent=2, sort_keys=True) + "\n" if args.json else "\n".join(lines) + "\n")
    return 0
