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

Standard library only (and the module_utils the watchdog role installs
beside it); jsonschema from Debian is used only to check an LLM answer,
and its absence only means the ladder.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import pwd
import re
import signal
import socket
import sys
import time

from ansible_collections.agentfleet.vps.plugins.module_utils import alerts, config_txn, endpoints, fileops, fleet_plan, guardrails
from ansible_collections.agentfleet.vps.plugins.module_utils.files import read_env
from ansible_collections.agentfleet.vps.plugins.module_utils.systemd_user import UserManager, agent_user, exited, run_command, states_of

DEFAULT_CONFIG = "/etc/agentfleet/watchdog.json"
ACTIONS = ("restart", "reset_failed_start", "restore_last_good", "doctor_fix", "kill_port_holder")
UNIT_PROPERTIES = ("Id", "ActiveState", "SubState", "Result", "ExecMainStatus", "NRestarts", "MainPID",
                   "ActiveEnterTimestampMonotonic", "ControlGroup", "MemoryCurrent", "MemoryMax")
LADDER = ("restart", "restore_last_good")
ANSWER_SCHEMA = {
    "type": "object",
    "required": ["diagnosis", "action"],
    "additionalProperties": False,
    "properties": {
        "diagnosis": {"type": "string", "minLength": 1, "maxLength": 2000},
        "action": {"enum": list(ACTIONS) + ["run_script"]},
        "script": {"type": "string", "maxLength": 20000},
    },
}
PROMPT = (
    "You are the watchdog of an OpenClaw gateway that is down. From the unit state and the last log lines, "
    "diagnose the cause in one or two sentences and choose exactly one action: restart (restart the unit), "
    "reset_failed_start (clear a start limit and start), restore_last_good (put back the last config that was "
    "verified healthy, then restart), doctor_fix (openclaw doctor --fix for this profile, then restart), "
    "kill_port_holder (stop a stray process of the agent's own user that holds the gateway's port, then restart), "
    "or run_script with a POSIX shell script in `script`. Answer with one JSON object and nothing else, "
    "matching this JSON Schema: " + json.dumps(ANSWER_SCHEMA, sort_keys=True))
LOCK_NAME = "run.lock"
# A hold file older than this is a playbook that died; its agent is healed again.
HOLD_MAX_AGE = 6 * 3600
BREAKER_NAME = "breaker.json"


class WatchdogError(Exception):
    pass


class LockHeld(WatchdogError):
    pass


class HostUnreadable(WatchdogError):
    """The unit states could not be read: acting would mean treating every
    agent as down, so the run changes nothing."""


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


def load_config(path):
    data = json.loads(fileops.read_bytes(path) or b"null")
    if not isinstance(data, dict):
        raise WatchdogError("%s does not exist: deploy the watchdog role (playbooks/site.yml) first" % path)
    secrets = data.get("secrets_file")
    data["secrets"] = json.loads(fileops.read_bytes(secrets) or b"{}") if secrets else {}
    return data


# ------------------------------------------------------------ the host

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
        rc, out, err = self.systemctl("show", "-p", ",".join(UNIT_PROPERTIES), *units)
        if rc != 0:
            raise HostUnreadable("cannot read the unit states of %s's user manager (systemctl exited %d: %s)"
                                 % (self.user, rc, (err or out).strip()[-300:]))
        return states_of(out, units, UNIT_PROPERTIES)

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


# ----------------------------------------------------------- diagnosis

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
        return read_env(os.path.join(agent["state_dir"], "gateway.env"))
    except OSError:
        return {}


def secret_values(agent):
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
    return config_txn.scrub(text, secret_values(agent))


def ask_llm(config, agent, symptom, excerpt):
    """(answer dict, None) or (None, reason). Never raises."""
    llm = config.get("llm") or {}
    if not llm.get("url"):
        return None, "no LLM configured"
    user = "Agent %s (unit %s, port %d): %s\n\n%s" % (agent["name"], agent["unit"], agent["port"], symptom, excerpt)
    try:
        text = endpoints.chat(llm["url"], llm.get("model"), config["secrets"].get("llm_api_key"), PROMPT, user,
                              llm.get("timeout", 30))
        return endpoints.json_answer(text, ANSWER_SCHEMA), None
    except ImportError as exc:
        return None, "cannot check the answer: %s" % exc
    except (OSError, ValueError) as exc:
        return None, "LLM %s: %s" % (llm.get("model"), exc)


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


# ------------------------------------------------------------- actions

def _restart(host, agent, start_only=False):
    # A deliberate restart must not trip StartLimitBurst.
    host.systemctl("reset-failed", agent["unit"])
    rc, _out, err = host.systemctl("start" if start_only else "restart", agent["unit"])
    return rc == 0, ("started" if start_only else "restarted") if rc == 0 else err.strip()[-500:]


def act_restart(host, config, agent, answer):
    return _restart(host, agent)


def act_reset_failed_start(host, config, agent, answer):
    return _restart(host, agent, start_only=True)


def act_restore_last_good(host, config, agent, answer):
    """The last config config_change or a ready deploy verified, under the
    same lock and into the same change log as config_change."""
    store = config_txn.ConfigStore(agent["config"], agent.get("store_dir"))
    try:
        with store.lock(timeout=60):
            good = store.last_good()
            try:
                current = store.read()
            except config_txn.ChangeError:
                current = None  # a link in its place: put() replaces the link itself
            if good is None:
                return False, "no last known good config in %s" % store.backup_dir
            if current == good:
                detail = "config already equals last known good"
            else:
                backup = store.backup(current) if current is not None else None
                store.put(good)
                store.log({"user": "watchdog", "result": "restored", "backup": backup,
                           "checksum_before": config_txn.checksum(current), "checksum_after": config_txn.checksum(good)})
                detail = "restored last known good %s (was %s, kept as %s)" % (
                    config_txn.checksum(good)[:12], config_txn.checksum(current)[:12], os.path.basename(backup or "-"))
    except (OSError, config_txn.ChangeError) as exc:
        return False, "cannot restore: %s" % exc
    ok, restarted = _restart(host, agent)
    return ok, "%s; %s" % (detail, restarted)


def act_doctor_fix(host, config, agent, answer):
    env = dict(gateway_env(agent), OPENCLAW_STATE_DIR=agent["state_dir"], OPENCLAW_CONFIG_PATH=agent["config"])
    rc, out, err = host.run_as([config.get("openclaw", "openclaw"), "--profile", agent["name"], "doctor", "--fix",
                                "--non-interactive"], timeout=int(config.get("doctor_timeout", 180)), env=env)
    if rc != 0:
        return False, "openclaw doctor --fix exited %d: %s" % (rc, (err or out).strip()[-500:])
    ok, restarted = _restart(host, agent)
    return ok, "doctor --fix: %s; %s" % (out.strip()[-300:], restarted)


def act_kill_port_holder(host, config, agent, answer):
    """Stop processes of the agent's own user that listen on its port from
    outside its unit (a gateway started by hand, an orphan). Root never
    signals a process of anyone else on an agent's word."""
    props = host.unit(agent["unit"])
    own = props.get("ControlGroup") or "/%s" % agent["unit"]
    strays = [pid for pid in host.listeners(agent["port"])
              if host.owner(pid) == host.uid and own not in host.cgroup(pid)]
    if not strays:
        return False, "no stray process holds port %d" % agent["port"]
    for pid in strays:
        host.kill(pid, signal.SIGTERM)
    deadline = host.monotonic() + 10
    while any(host.alive(pid) for pid in strays) and host.monotonic() < deadline:
        host.sleep(0.5)
    for pid in strays:
        if host.alive(pid):
            host.kill(pid, signal.SIGKILL)
    ok, restarted = _restart(host, agent)
    return ok, "stopped stray PID(s) %s on port %d; %s" % (", ".join(map(str, strays)), agent["port"], restarted)


SCRIPT_SANDBOX = (
    "ProtectSystem=strict", "PrivateTmp=yes", "PrivateDevices=yes", "PrivateNetwork=yes", "NoNewPrivileges=yes",
    "CapabilityBoundingSet=", "RestrictSUIDSGID=yes", "ProtectKernelTunables=yes", "ProtectControlGroups=yes",
    "InaccessiblePaths=-/etc/agentfleet -/var/lib/agentfleet -/run/user")


def act_run_script(host, config, agent, answer):
    """Only with allow_generated_scripts: a transient system unit running
    as the agent's user (never root) that sees nothing of /home but the
    agent's state dir (its gateway.env hidden), no network, no user bus,
    none of the overseers' files, gains no privileges and is killed after
    script_timeout."""
    timeout = int(config.get("script_timeout", 60))
    state_dir = agent["state_dir"]
    props = [p for prop in SCRIPT_SANDBOX for p in ("-p", prop)]
    argv = ["systemd-run", "--wait", "--collect", "--pipe", "--quiet",
            "--unit", "agentfleet-watchdog-script-%s-%d" % (agent["name"], os.getpid()),
            "--uid", str(host.uid), "--gid", str(host.gid), *props,
            "-p", "TemporaryFileSystem=/home:ro", "-p", "BindPaths=%s" % state_dir,
            "-p", "InaccessiblePaths=-%s/gateway.env" % state_dir, "-p", "WorkingDirectory=%s" % state_dir,
            "-p", "RuntimeMaxSec=%d" % timeout, "/bin/sh", "-c", answer["script"]]
    rc, out, err = host.run(argv, timeout=timeout + 30)
    if rc != 0:
        return False, "script exited %d: %s" % (rc, (err or out).strip()[-500:])
    ok, restarted = _restart(host, agent)
    return ok, "script ran: %s; %s" % (out.strip()[-300:], restarted)


RUNNERS = {"restart": act_restart, "reset_failed_start": act_reset_failed_start,
           "restore_last_good": act_restore_last_good, "doctor_fix": act_doctor_fix,
           "kill_port_holder": act_kill_port_holder, "run_script": act_run_script}


def verify(host, agent, timeout):
    """(ready, detail): /readyz says ready within timeout. Stops early when
    the gateway exited (failed, inactive, waiting to be restarted) or was
    restarted meanwhile, which a gateway that comes up does not do."""
    restarts = host.unit(agent["unit"]).get("NRestarts", "0")
    deadline = host.monotonic() + timeout
    while True:
        ok, detail = host.probe(health_url(agent, "readyz"), config_txn.READY_BODY)
        if ok:
            return True, detail
        props = host.unit(agent["unit"])
        gone = exited(props)
        if gone:
            return False, gone
        if props.get("NRestarts", "0") != restarts:
            return False, "gateway exited and systemd restarted it (NRestarts %s -> %s); last probe: %s" % (
                restarts, props.get("NRestarts"), detail)
        if host.monotonic() >= deadline:
            return False, "not ready within %d s: %s" % (timeout, detail)
        host.sleep(2)


def plan(config, answer):
    """Actions to try, in order, and the steps already decided (a script
    that is not allowed is recorded as refused, not run)."""
    refused = []
    if answer is None:
        return list(LADDER), refused
    first = answer["action"]
    if first == "run_script" and not (config.get("allow_generated_scripts") and answer.get("script")):
        refused.append({"action": "run_script", "result": "refused", "script": answer.get("script", ""),
                        "detail": "generated scripts are not run (watchdog_allow_generated_scripts is false)"
                        if not config.get("allow_generated_scripts") else "no script in the answer"})
        return list(LADDER), refused
    return [first] + (["restore_last_good"] if first != "restore_last_good" else []), refused


def memory_symptom(host, config, props):
    """A healthy gateway over its memory budget (memory_budget_percent of
    its MemoryMax): the symptom of a planned restart, else None."""
    share = int(config.get("memory_budget_percent") or 0)
    over = guardrails.over_budget(props, host.uid, share) if share else None
    if not over:
        return None
    return "memory %s over its budget %s (%d %% of MemoryMax %s)" % (
        guardrails.mib(over["used"]), guardrails.mib(over["budget"]), share, guardrails.mib(over["limit"]))


def planned_restart(host, config, agent, symptom):
    """A restart the watchdog plans (no LLM, no ladder), verified like any
    remediation; a dict ready to log."""
    ok, detail = act_restart(host, config, agent, None)
    step = {"action": "restart", "detail": detail}
    if ok:
        ok, step["verify"] = verify(host, agent, int(config.get("ready_timeout", 90)))
    step["result"] = "recovered" if ok else "failed"
    return {"agent": agent["name"], "symptom": symptom, "log_excerpt": "",
            "diagnosis": "over its memory budget: a planned restart before the kernel kills it",
            "llm": {"used": False, "action": None, "error": None}, "action": "restart", "steps": [step],
            "result": step["result"]}


def remediate(host, config, agent, symptom):
    """One incident: diagnose, act, verify; a dict ready to log."""
    excerpt = log_excerpt(host, config, agent)
    answer, llm_error = ask_llm(config, agent, symptom, excerpt)
    actions, steps = plan(config, answer)
    result = "not_recovered"
    for action in actions:
        ok, detail = RUNNERS[action](host, config, agent, answer)
        step = {"action": action, "detail": detail}
        if action == "run_script":
            step["script"] = answer["script"]
        if ok:
            ok, step["verify"] = verify(host, agent, int(config.get("ready_timeout", 90)))
        step["result"] = "recovered" if ok else "failed"
        steps.append(step)
        if ok:
            result = "recovered"
            break
    done = [s for s in steps if s["result"] != "refused"]
    return {"agent": agent["name"], "symptom": symptom, "log_excerpt": excerpt[-8000:],
            "diagnosis": answer["diagnosis"] if answer else llm_error,
            "llm": {"used": answer is not None, "action": answer["action"] if answer else None,
                    "error": llm_error if answer is None else None},
            "action": done[-1]["action"] if done else "none", "steps": steps, "result": result}


# ------------------------------------------------------------- breaker

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


# ---------------------------------------------------------- incidents

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


# ----------------------------------------------------------------- run

@contextlib.contextmanager
def run_lock(state_dir, wait=0):
    """One watchdog at a time; a second one gives up at once (cron starts
    the next in 15 minutes anyway) unless asked to wait."""
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
