# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The oversight audit's rules. Each check reads the host and returns
findings; none of them changes anything.

Standard library and this collection's module_utils only: the oversight
role installs them on the host (what they import, read from the code:
module_utils/host_sources), where the timer runs them without Ansible.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import pwd
import re
import shlex
import subprocess
import urllib.request

from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import backup, endpoints, guardrails
from ansible_collections.agentfleet.vps.plugins.module_utils.config_txn import ConfigStore, checksum
from ansible_collections.agentfleet.vps.plugins.module_utils.constitution import BLOCK_RE, HANDOFF
from ansible_collections.agentfleet.vps.plugins.module_utils.systemd_user import child_env
from ansible_collections.agentfleet.vps.plugins.module_utils import fileops, fleet_plan

FINDING_SEVERITIES = ("info", "warning", "critical")
RULES = {
    "agent-down": ("critical", "Agent alive: unit active and /health answering"),
    "agent-restarted": ("warning", "Agent restarted by systemd since the last audit"),
    "config-drift": ("critical", "Config changed outside config_change"),
    "constitution-tampered": ("critical", "Constitution files as the deploy rendered them"),
    "push-without-green-ci": ("critical", "Commits reached the tracked branch without green CI"),
    "rate-limit": ("warning", "Rate-limit events above the threshold"),
    "fallback-output": ("warning", "Turns answered by a fallback model: needs review before commit"),
    "handoff-stale": ("warning", "HANDOFF.md current and filled"),
    "watchdog-incident": ("warning", "Watchdog incidents since the last audit"),
    "backup-stale": ("warning", "Each agent has a backup younger than the limit"),
    "disk-low": ("critical", "Free disk space above the threshold"),
    "memory-over-budget": ("warning", "A gateway's memory within its share of MemoryMax"),
    "session-store-large": ("warning", "An agent's session stores within their size limit"),
    "usage-over-budget": ("warning", "An agent's tokens and cost today within its daily budget"),
    "startup-sequence": ("warning", "A new session read its startup files before any other tool call"),
    "completion-without-proof": ("warning", "A task called done has evidence in the same turn"),
    "avoidable-question": ("warning", "A final answer does not end in a question the agent could answer"),
    "transcript-unreadable": ("warning", "The session transcripts the checklist reads"),
    "reviewer-finding": ("warning", "Soft check of the LLM reviewer"),
    "reviewer-error": ("warning", "The LLM reviewer answered with something unusable"),
}
# A gateway log line counts as a rate-limit event when its text matches;
# bare "429" is not enough (durationMs=429 is a normal line).
RATE_LIMIT_RE = re.compile(
    r"(status|code|http)[\"=: ]{0,3}429\b|\b429 too many requests|rate[_ -]?limit(ed|_error)?\b|"
    r"too many requests|resource[_ ]exhausted|throttlingexception", re.IGNORECASE)
# OpenClaw logs model_fallback_decision per attempt; candidate_succeeded
# after a failed attempt means a fallback model answered the turn.
# Lowercase bytes, one of which every RATE_LIMIT_RE or fallback match
# contains: found with bytes.find, they spare the regex and the JSON
# parser nearly every line (gateway logs run to megabytes a day).
LOG_HINTS = (b"429", b"rate_limit", b"rate-limit", b"rate limit", b"ratelimit", b"too many", b"exhausted", b"throttl",
             b"model_fallback_decision")
FALLBACK_RE = re.compile(r'"decision"\s*:\s*"candidate_succeeded"')
FALLBACK_EVENT = "model_fallback_decision"
PLACEHOLDER_RE = re.compile(r"^\(.*\)$", re.DOTALL)
CI_STATES = ("success", "pending", "failure", "error")


def finding(rule, agent, summary, evidence, subject=""):
    """One finding; its key is stable across runs, so a finding still
    present in the next audit is recognised and not sent again."""
    key = hashlib.sha256("|".join((rule, agent or "-", str(subject))).encode("utf-8")).hexdigest()[:16]
    return {"key": key, "rule": rule, "severity": RULES[rule][0], "agent": agent or "-",
            "summary": summary, "evidence": evidence}


# An agent's file stands where an agent can write: read at most this much
# of it, and never through a link (fileops).
MAX_AGENT_FILE = 4 * 1024 * 1024
# A link or hard link where a regular file belongs checksums as this.
NOT_A_FILE = "not-a-regular-file"


def read_agent_file(path, limit=MAX_AGENT_FILE):
    """(bytes or None when missing, None) or (None, why it was not read)."""
    try:
        return fileops.read_bytes(path, limit=limit), None
    except fileops.UnsafePath as exc:
        return None, "not read: %s (%s)" % (exc.strerror, path)
    except OSError as exc:
        return None, "not read: %s" % exc


def sha256_of(path):
    data, problem = read_agent_file(path)
    return NOT_A_FILE if problem else checksum(data)


def parse_time(text):
    """ISO 8601 (OpenClaw's log `time`, our JSON lines) -> aware datetime or None."""
    try:
        stamp = datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=datetime.timezone.utc)


# ------------------------------------------------------------------ alive

def check_alive(agents, units, health, restarts_before):
    """units: unit -> systemctl show properties; health: name -> (ok, detail).
    Returns (findings, restarts now)."""
    findings, restarts = [], {}
    for agent in agents:
        props = units.get(agent["unit"], {})
        state = props.get("ActiveState", "unknown")
        ok, detail = health.get(agent["name"], (False, "not probed"))
        if state != "active" or not ok:
            findings.append(finding("agent-down", agent["name"], "unit %s is %s; %s" % (agent["unit"], state, detail), {
                "unit": agent["unit"], "ActiveState": state, "SubState": props.get("SubState"),
                "health_url": agent["health_url"], "health": detail}))
        count = int(props.get("NRestarts") or 0)
        restarts[agent["name"]] = count
        before = restarts_before.get(agent["name"])
        if before is not None and count > before:
            findings.append(finding("agent-restarted", agent["name"], "systemd restarted it %d time(s) since the last "
                                    "audit (NRestarts %d -> %d)" % (count - before, before, count),
                                    {"unit": agent["unit"], "NRestarts_before": before, "NRestarts": count},
                                    subject=count))
    return findings, restarts


# ----------------------------------------------------------- config drift

def known_good(config_path, store_dir=None):
    """Checksums the collection wrote or verified for a config: its
    last-good copy and the last applied/restored entry of changes.jsonl,
    both in its store (root's; config-backups/ beside it by default)."""
    backups = store_dir or os.path.join(os.path.dirname(config_path), "config-backups")
    name = os.path.basename(config_path)
    known = {checksum(fileops.read_bytes(os.path.join(backups, name + ".last-good")))}
    # Newest first: the log only grows, the answer is near its end.
    lines = (fileops.read_bytes(os.path.join(backups, "changes.jsonl")) or b"").decode("utf-8", "replace").splitlines()
    for line in reversed(lines):
        if '"applied"' not in line and '"restored"' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("file") == config_path and entry.get("result") in ("applied", "restored"):
            known.add(entry.get("checksum_after"))
            break
    return {k for k in known if k}


def check_config_drift(agents):
    findings = []
    for agent in agents:
        live = sha256_of(agent["config"])
        known = known_good(agent["config"], agent.get("store_dir"))
        if live is None or not known or live in known:
            continue
        findings.append(finding("config-drift", agent["name"], "%s changed outside config_change (checksum %s, "
                                "last written or verified %s)" % (agent["config"], live[:12],
                                                                  ", ".join(sorted(k[:12] for k in known))), {
            "file": agent["config"], "checksum": live, "known_good": sorted(known),
            "modified": _mtime_iso(agent["config"])}, subject=live))
    return findings


def _mtime_iso(path):
    try:
        info = fileops.lstat(path)
    except OSError:
        return None
    return datetime.datetime.fromtimestamp(info.st_mtime, datetime.timezone.utc).isoformat() if info else None


# ----------------------------------------------------------- constitution

def check_constitution(agents, state_dir):
    findings = []
    if not state_dir:
        return findings
    for agent in agents:
        record = fileops.read_bytes(os.path.join(state_dir, "rendered", agent["name"] + ".json"))
        if record is None:
            continue
        for path, expected in sorted(json.loads(record).get("files", {}).items()):
            data, problem = read_agent_file(path)
            if data is not None and os.path.basename(path) == "AGENTS.md":
                block = BLOCK_RE.search(data.decode("utf-8", "replace"))
                data = block.group(0).encode("utf-8") if block else b""
            actual = NOT_A_FILE if problem else checksum(data)
            if actual != expected:
                what = problem if problem else "is missing" if data is None else (
                    "lost its constitution block" if not data else "differs from what the deploy rendered")
                findings.append(finding("constitution-tampered", agent["name"], "%s %s" % (path, what), {
                    "file": path, "checksum": actual, "rendered": expected, "modified": _mtime_iso(path)},
                    subject="%s|%s" % (path, actual)))
    return findings


# ------------------------------------------------------------- pushes / CI

# The repository is the agent's: git runs as the agent's user (root would
# run whatever the repository's config asks for), reads no system config,
# and has a deadline.
GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}
GIT_TIMEOUT = 60
MAX_SUBJECT = 300


def git(path, *args, user=None):
    argv = ["git", "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "-C", path] + list(args)
    if user:
        argv = ["runuser", "-u", user, "--"] + argv
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=GIT_TIMEOUT,
                              env=child_env(GIT_ENV))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 124, "", str(exc)
    return proc.returncode, proc.stdout.strip(), proc.stderr.strip()


def ci_status(repo, sha, agent, ci, token=None):
    """(state, detail) of one commit: from ci['command'] (first word of its
    output; placeholders {repo} {sha} {agent}) or the GitHub status API."""
    if ci.get("command"):
        argv = [part.format(repo=repo["path"], sha=sha, agent=agent) for part in shlex.split(ci["command"])]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=ci.get("timeout", 30), check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return "error", "CI command failed: %s" % exc
        words = proc.stdout.split()
        state = words[0].lower() if words else ""
        return (state if state in CI_STATES else "error"), proc.stdout.strip()[:200] or proc.stderr.strip()[:200]
    if repo.get("github"):
        url = "%s/repos/%s/commits/%s/status" % (ci.get("github_api", "https://api.github.com").rstrip("/"),
                                                 repo["github"], sha)
        request = urllib.request.Request(url, headers=dict({"Accept": "application/vnd.github+json"}, **(
            {"Authorization": "Bearer " + token} if token else {})))
        try:
            with endpoints.http_open(request, ci.get("timeout", 30)) as response:
                state = json.loads(response.read().decode("utf-8")).get("state", "error")
        except (OSError, ValueError) as exc:
            return "error", "GitHub status API: %s" % exc
        return state, url
    return "error", "no CI source: set oversight_ci_command or the repository's github"


def check_pushes(repositories, seen_before, since, ci, token=None, users=None):
    """Commits that reached each tracked branch since the last audit (on the
    first audit: committed within the window). users: agent -> the user git
    runs as in that agent's repositories (as root, an agent without one
    gets nobody: root never runs git in a tree an agent controls). Returns
    (findings, seen now)."""
    findings, seen = [], {}
    for agent, repos in sorted(repositories.items()):
        user = None if users is None else (users.get(agent) or "nobody")
        for repo in repos:
            branch = repo.get("branch", "origin/main")
            ident = "%s:%s" % (repo["path"], branch)
            rc, head, err = git(repo["path"], "rev-parse", "--verify", "-q", branch + "^{commit}", user=user)
            if rc != 0:
                findings.append(finding("push-without-green-ci", agent, "cannot read %s in %s: %s" % (
                    branch, repo["path"], err or "no such branch"), {"repo": repo["path"], "branch": branch},
                    subject=ident))
                continue
            seen[ident] = head
            before = seen_before.get(ident)
            if before == head:
                continue
            if before:
                rc, out, _err = git(repo["path"], "rev-list", "--max-count=50", "%s..%s" % (before, head), user=user)
            else:
                rc, out, _err = git(repo["path"], "rev-list", "--max-count=50", "--since=@%d" % int(since), head, user=user)
            for sha in out.split() if rc == 0 else []:
                state, detail = ci_status(repo, sha, agent, ci, token)
                if state != "success":
                    _rc, subject, _e = git(repo["path"], "log", "-1", "--format=%s", sha, user=user)
                    # The agent writes the subject: a bounded quote, not a
                    # report (and every alert) as large as it likes.
                    findings.append(finding("push-without-green-ci", agent, "%s reached %s in %s with CI %s" % (
                        sha[:12], branch, repo["path"], state), {
                        "repo": repo["path"], "branch": branch, "commit": sha, "subject": subject[:MAX_SUBJECT],
                        "ci_state": state, "ci_detail": str(detail)[:MAX_SUBJECT]}, subject=sha))
    return findings, seen


# ------------------------------------------------------------- gateway logs

def read_new_bytes(path, offsets):
    """Whole lines appended to path since the recorded offset (the whole
    file when it was rotated or is new), at most MAX_AGENT_FILE of them per
    audit; updates offsets[path]."""
    try:
        st = fileops.lstat(path)
    except OSError:
        return b""
    if st is None:
        return b""
    known = offsets.get(path) or {}
    start = known.get("offset", 0) if known.get("inode") == st.st_ino and known.get("offset", 0) <= st.st_size else 0
    try:
        data, _info = fileops.read_range(path, start, MAX_AGENT_FILE)
    except OSError:
        return b""
    end = data.rfind(b"\n") + 1
    offsets[path] = {"inode": st.st_ino, "offset": start + end}
    return data[:end]


def candidate_lines(data):
    """The lines of data that contain a hint; found with bytes.find, so a
    log of megabytes is never decoded or split as a whole."""
    low, spans = data.lower(), set()
    for hint in LOG_HINTS:
        pos = low.find(hint)
        while pos != -1:
            start, end = data.rfind(b"\n", 0, pos) + 1, data.find(b"\n", pos)
            end = len(data) if end == -1 else end
            spans.add((start, end))
            pos = low.find(hint, end)
    return [data[start:end].decode("utf-8", "replace") for start, end in sorted(spans)]


def gateway_log_files(state_dir, since, now):
    """The agent's daily log files from since's day to now's."""
    day, files = since.date(), []
    while day <= now.date():
        files.append(os.path.join(fleet_plan.log_dir(state_dir), fleet_plan.log_file_name(day.isoformat())))
        day += datetime.timedelta(days=1)
    return files


def check_logs(agents, since, now, offsets, threshold):
    findings = []
    for agent in agents:
        rate, fallback = [], []
        for path in gateway_log_files(agent["state_dir"], since, now):
            # Match first, parse after: most lines match nothing.
            for line in candidate_lines(read_new_bytes(path, offsets)):
                is_fallback = FALLBACK_EVENT in line and FALLBACK_RE.search(line)
                if not is_fallback and not RATE_LIMIT_RE.search(line):
                    continue
                try:
                    stamp = parse_time(json.loads(line).get("time"))
                except (ValueError, AttributeError):
                    continue
                if stamp is not None and stamp >= since:
                    (fallback if is_fallback else rate).append(line[:400])
        if len(rate) > threshold:
            findings.append(finding("rate-limit", agent["name"], "%d rate-limit events since %s (threshold %d)" % (
                len(rate), since.isoformat(timespec="seconds"), threshold),
                {"count": len(rate), "threshold": threshold, "lines": rate[-5:]}))
        if fallback:
            findings.append(finding("fallback-output", agent["name"], "%d turn(s) answered by a fallback model: "
                                    "needs review before commit" % len(fallback),
                                    {"count": len(fallback), "lines": fallback[-5:]}))
    return findings


# ---------------------------------------------------------------- handoff

def handoff_sections(text):
    """## heading -> body; a body that is empty or only OpenClaw-style
    '(placeholder)' text counts as empty."""
    sections, name, body = {}, None, []
    for line in text.splitlines():
        if line.startswith("## "):
            if name:
                sections[name] = "\n".join(body).strip()
            name, body = line[3:].strip(), []
        elif name:
            body.append(line)
    if name:
        sections[name] = "\n".join(body).strip()
    return {k: "" if PLACEHOLDER_RE.match(v) else v for k, v in sections.items()}


def last_activity(state_dir):
    """mtime of the agent's newest session store file (its sessions), or None."""
    newest = None
    try:
        for path, info in fileops.files_under(os.path.join(state_dir, "agents")):
            name = os.path.basename(path)
            if ".sqlite" in name or name.endswith(".jsonl"):
                newest = max(newest or 0, info.st_mtime)
    except OSError:
        pass
    return newest


def check_handoff(agents, max_age_hours):
    """HANDOFF.md must exist; once the agent has written it, every section
    is filled; and it is never more than max_age behind the agent's last
    session activity (a fresh agent that has not worked yet is current)."""
    findings = []
    for agent in agents:
        path = os.path.join(agent["workspace"], "HANDOFF.md")
        data, problem = read_agent_file(path)
        if data is None:
            findings.append(finding("handoff-stale", agent["name"], "%s %s" % (path, problem or "is missing"),
                                    {"file": path}))
            continue
        text = data.decode("utf-8", "replace")
        problems = []
        if text != HANDOFF:
            empty = sorted(k for k, v in handoff_sections(text).items() if not v)
            if empty:
                problems.append("empty sections: %s" % ", ".join(empty))
        active = last_activity(agent["state_dir"])
        behind = (active - fileops.lstat(path).st_mtime) / 3600.0 if active else 0
        if behind > max_age_hours:
            problems.append("not updated for %.1f h of session activity (limit %s h)" % (behind, max_age_hours))
        if problems:
            findings.append(finding("handoff-stale", agent["name"], "%s: %s" % (path, "; ".join(problems)), {
                "file": path, "modified": _mtime_iso(path), "problems": problems}))
    return findings


# -------------------------------------------------------------- watchdog

def check_incidents(path, since):
    findings = []
    if not path:
        return findings
    for line in (fileops.read_bytes(path) or b"").decode("utf-8", "replace").splitlines():
        try:
            incident = json.loads(line)
        except ValueError:
            continue
        stamp = parse_time(incident.get("time"))
        if stamp is None or stamp < since:
            continue
        findings.append(finding("watchdog-incident", incident.get("agent"), "watchdog: %s -> %s (%s)" % (
            incident.get("symptom"), incident.get("action"), incident.get("result")), incident,
            subject=incident.get("time")))
    return findings


# ---------------------------------------------------------------- backups

def first_deploy(agent):
    """When root's change log of the agent's config begins (its first
    deploy), or None."""
    if not agent.get("store_dir"):
        return None
    data = fileops.read_bytes(ConfigStore(agent["config"], agent["store_dir"]).log_path, limit=4096) or b""
    try:
        return parse_time(json.loads(data.split(b"\n", 1)[0]).get("time"))
    except (ValueError, AttributeError):
        return None


def check_backups(agents, settings, now):
    """backup-stale: an agent's newest archive (root's manifest) is older
    than max_age_hours, or it has none that long after its first deploy,
    or its off-host copy failed.
    settings: {"dir", "max_age_hours"}; no dir, no rule."""
    findings = []
    if not (settings or {}).get("dir"):
        return findings
    limit = datetime.timedelta(hours=settings.get("max_age_hours", 36))
    for agent in agents:
        directory = os.path.join(settings["dir"], agent["name"])
        manifests = backup.listing(directory)
        newest = parse_time(manifests[-1]["created"]) if manifests else None
        offsite = manifests[-1].get("offsite") if manifests else None
        if isinstance(offsite, dict) and offsite.get("ok") is False:
            findings.append(finding("backup-stale", agent["name"], "newest backup %s was not copied off the host: %s" % (
                manifests[-1]["archive"], offsite.get("detail")), {"dir": directory, "offsite": offsite},
                subject=manifests[-1]["archive"] + " offsite"))
        if newest is not None:
            if now - newest > limit:
                findings.append(finding("backup-stale", agent["name"], "newest backup %s is %.1f h old (limit %s h)" % (
                    manifests[-1]["archive"], (now - newest).total_seconds() / 3600, settings.get("max_age_hours", 36)),
                    {"dir": directory, "newest": manifests[-1]["archive"], "created": manifests[-1]["created"]},
                    subject=manifests[-1]["archive"]))
            continue
        since = first_deploy(agent)
        if since is not None and now - since > limit:
            findings.append(finding("backup-stale", agent["name"], "no backup in %s since its first deploy %s" % (
                directory, since.isoformat(timespec="seconds")), {"dir": directory, "first_deploy": since.isoformat()},
                subject="none"))
    return findings


# ------------------------------------------------------------- guardrails

def _uid(user):
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return -1


def check_guardrails(agents, units, settings):
    """disk-low, memory-over-budget and session-store-large. settings:
    disk_paths, disk_min_free_percent, memory_budget_percent,
    session_store_max_mb (0 turns a rule off); none, no rule."""
    settings, findings = settings or {}, []
    floor = float(settings.get("disk_min_free_percent") or 0)
    for path in (settings.get("disk_paths") or []) if floor else []:
        try:
            free, total = guardrails.disk_free(path)
        except OSError:
            continue
        percent = 100.0 * free / total if total else 100.0
        if percent < floor:
            findings.append(finding("disk-low", None, "%s: %s free of %s (%.1f %%, threshold %s %%)" % (
                path, guardrails.mib(free), guardrails.mib(total), percent, settings["disk_min_free_percent"]),
                {"path": path, "free_bytes": free, "total_bytes": total, "free_percent": round(percent, 2)},
                subject=path))
    share = int(settings.get("memory_budget_percent") or 0)
    store_max = float(settings.get("session_store_max_mb") or 0)
    for agent in agents:
        props = units.get(agent["unit"], {})
        over = guardrails.over_budget(props, _uid(agent.get("user", "")), share) if share else None
        if over:
            findings.append(finding("memory-over-budget", agent["name"], "gateway uses %s, over %s (%d %% of MemoryMax %s)" % (
                guardrails.mib(over["used"]), guardrails.mib(over["budget"]), share, guardrails.mib(over["limit"])),
                {"used_bytes": over["used"], "budget_bytes": over["budget"], "memory_max_bytes": over["limit"],
                 "pid": props.get("MainPID")}))
        if store_max:
            stores = os.path.join(agent["state_dir"], "agents")
            size, complete = guardrails.tree_size(stores)
            if size > store_max * 1048576:
                findings.append(finding("session-store-large", agent["name"], "%s holds %s%s (limit %s MiB)" % (
                    stores, "at least " if not complete else "", guardrails.mib(size), settings["session_store_max_mb"]),
                    {"path": stores, "bytes": size, "complete": complete}))
    return findings
