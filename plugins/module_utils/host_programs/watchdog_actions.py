# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the watchdog does for an agent that is down (watchdog.py): the
allow-listed actions, the ladder (restart, then restore last known good),
and the readiness check after each."""

from __future__ import annotations

import os
import signal

from ansible_collections.agentfleet.vps.plugins.module_utils import config_txn, fleet_plan, systemd_user
from ansible_collections.agentfleet.vps.plugins.module_utils.systemd_user import exited
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs.watchdog_diagnosis import gateway_env, health_url, log_excerpt
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs.watchdog_llm import ask_llm

LADDER = ("restart", "restore_last_good")


def _restart(host, agent, start_only=False):
    rc, _out, err = systemd_user.restart(host.systemctl, agent["unit"], "start" if start_only else "restart")
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
            "-p", "InaccessiblePaths=-%s" % fleet_plan.env_path(state_dir), "-p", "WorkingDirectory=%s" % state_dir,
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
    """(ready, detail): /readyz says ready within timeout (config_txn's
    one readiness wait). Stops early when the gateway exited (failed,
    inactive, waiting to be restarted) or was restarted meanwhile, which a
    gateway that comes up does not do."""
    restarts = host.unit(agent["unit"]).get("NRestarts", "0")
    why = []

    def gone():
        props = host.unit(agent["unit"])
        reason = exited(props)
        if not reason and props.get("NRestarts", "0") != restarts:
            reason = "gateway exited and systemd restarted it (NRestarts %s -> %s)" % (restarts, props.get("NRestarts"))
        if reason:
            why.append(reason)
        return reason

    ok, detail = config_txn.wait_ready(agent["port"], timeout, gone=gone, sleep=host.sleep, clock=host.monotonic,
                                       check=lambda: host.probe(health_url(agent, "readyz"), config_txn.READY_BODY))
    if ok or why:
        return ok, detail
    return False, "not ready within %d s: %s" % (timeout, detail)


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
