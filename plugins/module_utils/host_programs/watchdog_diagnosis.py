# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the watchdog reads of an agent before it acts (watchdog.py): its
symptom, the log excerpt it shows the LLM (secrets masked), whether a
playbook holds it, and a memory budget overrun."""

from __future__ import annotations

import json
import os
import time

from ansible_collections.agentfleet.vps.plugins.module_utils import config_txn, fileops, fleet_plan
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import guardrails
from ansible_collections.agentfleet.vps.plugins.module_utils.files import read_env

# A hold file older than this is a playbook that died; its agent is healed again.
HOLD_MAX_AGE = 6 * 3600


def health_url(agent, path="health"):
    return "http://127.0.0.1:%d/%s" % (agent["port"], path)


def symptom_of(host, agent, grace, props):
    """None when healthy (or still starting, for at most grace seconds),
    else a one-line description; props: the unit's state."""
    state = props.get("ActiveState", "unknown")
    entered = int(props.get("ActiveEnterTimestampMonotonic") or 0) / 1e6
    starting = bool(entered) and host.monotonic() - entered < grace
    if state == "active":
        ok, detail = host.probe(health_url(agent))
        if ok or starting:
            return None
        return "unit active but /health fails: %s" % detail
    if state in ("activating", "reloading") and props.get("SubState") != "auto-restart" and starting:
        return None
    text = "unit %s (%s, result %s" % (state, props.get("SubState", "?"), props.get("Result", "?"))
    status = props.get("ExecMainStatus", "0")
    if status not in ("", "0"):
        text += ", exit status %s%s" % (status, " = invalid config" if status == "78" else "")
    return text + ")"


def gateway_env(agent):
    """The agent's gateway.env; {} when it cannot be read."""
    try:
        return read_env(fleet_plan.env_path(agent["state_dir"]))
    except OSError:
        return {}


def env_secrets(agent):
    """Values of the agent's gateway.env (token, API keys): masked in
    everything the watchdog sends or writes."""
    return [value for value in gateway_env(agent).values() if len(value) >= 6]


def readable(line):
    """OpenClaw's JSON log line as `time level message`; other lines as they are."""
    try:
        entry = json.loads(line)
    except ValueError:
        return line[:600]
    if not isinstance(entry, dict) or "message" not in entry:
        return line[:600]
    return "%s %s %s" % (entry.get("time", ""), (entry.get("_meta") or {}).get("logLevelName", ""),
                         str(entry["message"])[:500])


def gateway_log(state_dir, lines):
    """The last lines of the agent's newest daily log file."""
    logs = fleet_plan.log_dir(state_dir)
    try:
        files = sorted(n for n in fileops.listdir(logs) if fleet_plan.LOG_FILE_RE.fullmatch(n))
        # OpenClaw's lines run to about 1 KiB; read enough for `lines` of them.
        data = fileops.read_bytes(os.path.join(logs, files[-1]), limit=2048 * lines, tail=True) if files else b""
    except OSError as exc:
        return "(not read: %s)" % exc
    tail = (data or b"").decode("utf-8", "replace").splitlines()
    return "\n".join(readable(line) for line in tail[-lines:])


def log_excerpt(host, config, agent):
    lines = int(config.get("log_lines", 50))
    text = "## journal (%s)\n%s\n## %s\n%s" % (
        agent["unit"], host.journal(agent["unit"], lines), "OpenClaw log file",
        gateway_log(agent["state_dir"], lines))
    return config_txn.scrub(text, env_secrets(agent))


def hold_reason(config, agent, now=None):
    """Why the watchdog must leave agent alone now because someone is
    working on it on purpose, or None: a staged deploy, a playbook's hold
    file (upgrade.yml), a config change holding the config's lock."""
    if config.get("staged"):
        return "staged: the deploy installed its unit without starting it (agents_start=false)"
    if config.get("hold_dir"):
        path = os.path.join(config["hold_dir"], agent["name"])
        info = fileops.lstat(path)
        if info is not None and (now or time.time()) - info.st_mtime < HOLD_MAX_AGE:
            text = (fileops.read_bytes(path, limit=300) or b"").decode("utf-8", "replace").strip()
            return "held by a playbook (%s): %s" % (path, text or "no reason given")
    if config_txn.ConfigStore(agent["config"], agent.get("store_dir")).busy():
        return "a config change of it is in flight (its config lock is held)"
    return None


def memory_symptom(host, config, props):
    """A healthy gateway over its memory budget (memory_budget_percent of
    its MemoryMax): the symptom of a planned restart, else None."""
    share = int(config.get("memory_budget_percent") or 0)
    over = guardrails.over_budget(props, host.uid, share) if share else None
    if not over:
        return None
    return "memory %s over its budget %s (%d %% of MemoryMax %s)" % (
        guardrails.mib(over["used"]), guardrails.mib(over["budget"]), share, guardrails.mib(over["limit"]))
