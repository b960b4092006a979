#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: config_change
short_description: Change a JSON config with validation, backup, health check and automatic rollback
version_added: 0.1.0
description:
  - Changes one JSON config file (an OpenClaw C(openclaw.json) or any other) so that a bad
    value cannot stay - validate, back up, apply atomically, restart, verify, and roll back
    by itself when the service does not come back healthy.
  - B(Validate.) The candidate is checked against a JSON Schema (O(schema), O(schema_file), or
    for an OpenClaw config the schema exported from the installed OpenClaw) and then by
    O(validate_command) on a private copy. A rejected change fails with every error and its
    JSON path in RV(errors), and writes nothing and restarts nothing.
  - B(Apply.) Under a per-file lock (two runs at once are serialized), the current file is
    copied to O(backup_dir) (the newest O(keep_backups) kept) and the candidate is written to
    a temp file in the same directory, C(fsync)ed and renamed over the file. Owner and mode
    of the file are kept.
  - B(Verify.) O(unit) is restarted (or reloaded), then O(health) is probed. When either
    fails, the previous file is put back byte for byte, the unit restarted and probed again,
    and the task fails with RV(rolled_back=true) and the reason. Only a verified change
    moves the C(last-good) copy in O(backup_dir), which the watchdog and O(state=restore)
    use.
  - Content that is canonically equal to the current file changes nothing, not even the
    file's bytes. Every other attempt appends one JSON line to C(changes.jsonl) in
    O(backup_dir) - time, user, file, checksums, result, backup, errors.
  - jsonschema runs on the managed host, where the file, the lock and the unit are, so the
    whole change happens under one lock in one process; the runtime role installs Debian's
    C(python3-jsonschema) (and C(python3-json5), C(python3-yaml) for those sources) there.
author:
  - agentfleet.vps developers (@agentfleet)
options:
  path:
    description: The config file. It need not exist yet for O(state=present).
    type: path
    required: true
  state:
    description:
      - V(present) makes the file hold O(content), or the current document with O(merge)
        applied.
      - V(restore) puts back O(restore_from), with the same validation, restart and verify.
    type: str
    choices: [present, restore]
    default: present
  content:
    description:
      - The whole new document, as a mapping or as JSON, JSON5 or YAML text. Written as
        canonical JSON (sorted keys, two-space indent).
      - Mutually exclusive with O(merge).
    type: raw
  merge:
    description:
      - A JSON merge patch (RFC 7386) applied to the current document - mappings merge, C(null)
        removes a key, lists and scalars replace. A mapping or JSON, JSON5 or YAML text.
    type: raw
  restore_from:
    description:
      - For O(state=restore) - V(last-good), or the file name (or path) of one backup in
        O(backup_dir), as RV(backup) returned it.
    type: str
    default: last-good
  kind:
    description:
      - V(openclaw) turns on the OpenClaw defaults for O(schema_file) and O(validate_command).
      - V(auto) is V(openclaw) for a file named C(openclaw.json), else V(json).
    type: str
    choices: [auto, openclaw, json]
    default: auto
  schema:
    description: JSON Schema as a mapping. Mutually exclusive with O(schema_file).
    type: dict
  schema_file:
    description:
      - JSON Schema file on the host. For an OpenClaw config the default is
        C(<openclaw_prefix>/openclaw/current/openclaw.schema.json), which the runtime role
        exports from the installed OpenClaw.
    type: path
  validate_command:
    description:
      - Command run on a copy of the candidate, C(%s) replaced by its path; a non-zero exit
        rejects the change. OpenClaw's C(--json) issues are reported one by one.
      - For an OpenClaw config the default is
        C(/usr/bin/env NODE_COMPILE_CACHE=/var/cache/agentfleet/openclaw-compile-cache
        OPENCLAW_PACKAGED_COMPILE_CACHE_RESPAWNED=1 OPENCLAW_CONFIG_PATH=%s <openclaw_prefix>/bin/openclaw
        config validate --json) (root's own compile cache, so OpenClaw does not compile itself
        again at every validation).
        An empty string turns the command off.
    type: str
  openclaw_prefix:
    description: Prefix the runtime role installed OpenClaw under.
    type: path
    default: /opt/agentfleet
  backup_dir:
    description: Backups, C(last-good), lock and change log. Default C(config-backups/) beside O(path).
    type: path
  keep_backups:
    description: How many backups of this file to keep.
    type: int
    default: 10
  mode:
    description: Mode of a file created by this module; an existing file keeps its mode.
    type: str
    default: "0600"
  unit:
    description:
      - Unit to restart (or reload) after the write, and again after a rollback.
      - With O(unit_action=watch), restarted only when the service says it needs a restart or gives no
        verdict, and after a rollback.
    type: str
  unit_scope:
    description: V(user) for a unit of O(unit_user)'s systemd manager, V(system) for the system one.
    type: str
    choices: [user, system]
    default: user
  unit_user:
    description: Owner of the user manager for O(unit_scope=user). Default the owner of O(path).
    type: str
  unit_action:
    description:
      - How the unit picks up the change.
      - V(watch) is for a service that watches its own config file, as an OpenClaw gateway does
        (C(gateway.reload.mode=hybrid), its default). The module reads the verdict the gateway logs
        (subsystem C(gateway/reload)) in O(reload_log_dir) after the write. C(config hot reload
        applied) verifies by the probe alone, with no restart. On C(config change requires gateway
        restart) the gateway restarts itself in place; the module waits for its C(gateway ready)
        line, within the probe's budget, and then probes. A change to a key only a new process
        reads (C(gateway.bind), C(gateway.port), C(gateway.tls), C(gateway.tailscale)), no verdict
        within O(reload_timeout) seconds (reloading turned off), or no finished restart in time,
        restarts O(unit). An invalid config or a failed reload is rolled back.
    type: str
    choices: [restart, reload, watch]
    default: restart
  reload_log_dir:
    description:
      - For O(unit_action=watch) - the directory of the service's daily JSON-lines logs
        (C(openclaw-YYYY-MM-DD.log)). Default C(logs) beside O(path), where the agents role
        points C(logging.file).
      - Read without following links, in bounded pieces; a forged verdict in it only ever
        replaces a restart by the probe, never the probe.
    type: path
  reload_timeout:
    description: For O(unit_action=watch) - seconds to wait for the service's verdict before restarting O(unit).
    type: int
    default: 10
  health:
    description: HTTP probe that must pass after the restart; without it a successful restart verifies.
    type: dict
    suboptions:
      url:
        description: URL to probe, e.g. C(http://127.0.0.1:19000/readyz).
        type: str
        required: true
      status:
        description: Status codes that count as healthy.
        type: list
        elements: int
        default: [200]
      body:
        description: Regular expression the body must match.
        type: str
      retries:
        description:
          - Attempts before the change counts as failed; at most O(health.retries) times O(health.delay) seconds
            (plus one O(health.timeout)) in all, however long each attempt takes.
          - With O(unit), the attempts end early when the unit's process has exited (failed, stopped, or
            waiting out C(RestartSec) to be started again); a service that comes up does not exit first, so
            the rollback follows in seconds.
        type: int
        default: 60
      delay:
        description: Seconds between attempts (fractions allowed; a refused connection costs next to nothing).
        type: float
        default: 2
      timeout:
        description: Seconds one request may take.
        type: int
        default: 5
  lock_timeout:
    description: Seconds to wait for another change of the same file to finish.
    type: int
    default: 600
  changed_by:
    description: Who is changing, for the change log. Default the sudo user, else the login user.
    type: str
extends_documentation_fragment:
  - agentfleet.vps.attributes
attributes:
  check_mode:
    support: full
    details: Validates (schema and command, on a temp copy outside the config's directory) and
      reports the diff; writes, locks, logs and restarts nothing.
  diff_mode:
    support: full
    details: Canonical JSON before and after, with the values of secret-looking keys masked.
notes:
  - Runs as root. Backups, C(last-good), the lock and the change log are root's (mode C(0600)), in
    O(backup_dir) (the agents role gives root's store under C(/var/lib/agentfleet/config)), else in
    C(config-backups/) beside O(path).
  - A change that was rolled back, or that could not be recovered, fails the task; RV(recovered)
    says whether the service answered the probe again on the previous file. That probe waits at
    least 180 seconds in all, whatever O(health.retries) allow, since the previous file is known to work
    and a fresh start on a busy host can take longer than the change's own budget.
seealso:
  - name: JSON merge patch (RFC 7386)
    description: The semantics of O(merge).
    link: https://www.rfc-editor.org/rfc/rfc7386
"""

EXAMPLES = r"""
- name: Switch the coder agent to another primary model, restart and verify it
  agentfleet.vps.config_change:
    path: /home/openclaw-coder/.openclaw-coder/openclaw.json
    merge:
      agents:
        defaults:
          model:
            primary: anthropic/claude-opus-4-1
    unit: openclaw-gateway-coder.service
    health:
      url: http://127.0.0.1:19000/readyz
      body: '"ready":\s*true'

- name: Remove a key (null in a merge patch removes it)
  agentfleet.vps.config_change:
    path: /home/openclaw-coder/.openclaw-coder/openclaw.json
    merge: '{"agents": {"defaults": {"model": {"fallbacks": null}}}}'
    unit: openclaw-gateway-coder.service

- name: Put back the coder's last known good config
  agentfleet.vps.config_change:
    path: /home/openclaw-coder/.openclaw-coder/openclaw.json
    state: restore
    unit: openclaw-gateway-coder.service
    health:
      url: http://127.0.0.1:19000/readyz

- name: Any JSON file, with an inline schema and no service behind it
  agentfleet.vps.config_change:
    path: /etc/myapp/limits.json
    kind: json
    content:
      max_agents: 8
    schema:
      type: object
      properties:
        max_agents: {type: integer, minimum: 1}
      additionalProperties: false
"""

RETURN = r"""
result:
  description: >-
    V(unchanged), V(applied), V(restored), V(rejected) or V(rolled_back); in check mode
    V(unchanged) or V(would_apply).
  returned: always
  type: str
  sample: applied
errors:
  description: Every reason the candidate was rejected, each with its JSON path and the validator.
  returned: when rejected
  type: list
  elements: dict
  sample:
    - {path: $.gateway.port, message: "'x' is not of type 'integer'", source: schema}
rolled_back:
  description: Whether the change was applied and then undone because the unit or probe failed.
  returned: always
  type: bool
recovered:
  description: After a rollback, whether the service passed the probe again on the previous file.
  returned: when rolled_back
  type: bool
backup:
  description: The backup of the file as it was before this change.
  returned: when a file was replaced
  type: str
  sample: /home/openclaw-coder/.openclaw-coder/config-backups/openclaw.json.20261128T041500.123456Z.bak
last_good:
  description: Path of the last known good copy.
  returned: always
  type: str
checksum_before:
  description: SHA-256 of the file before the change; null when it did not exist.
  returned: always
  type: str
checksum_after:
  description: SHA-256 of the file after the task.
  returned: always
  type: str
health:
  description: What the last probe (or restart, or the service refusing the file) said.
  returned: when a unit or probe ran
  type: str
reload:
  description: For O(unit_action=watch) - the service's own verdict on the written file, as it logged it.
  returned: when the file was written with O(unit_action=watch)
  type: str
  sample: config hot reload applied (agents.defaults.model.primary)
applied_by:
  description: >-
    How the running service took the change - V(hot-reload) (its own, no restart), V(gateway-restart)
    (its own restart in place), V(restart) or V(reload) (the module's systemctl call), V(none) (it
    refused the file).
  returned: when the file was written and a unit is set
  type: str
  sample: hot-reload
"""

import getpass
import json
import os
import pwd
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.agentfleet.vps.plugins.module_utils import config_txn as txn
from ansible_collections.agentfleet.vps.plugins.module_utils import compile_cache, fileops, fleet_plan, gateway_reload, systemd_user
from ansible_collections.agentfleet.vps.plugins.module_utils.files import canonical_json
from ansible_collections.agentfleet.vps.plugins.module_utils.systemd_user import UserManager, exited


class ConfigChange:
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.store = txn.ConfigStore(self.p["path"], self.p["backup_dir"], self.p["keep_backups"],
                                     int(self.p["mode"], 8))
        kind = self.p["kind"]
        if kind == "auto":
            kind = "openclaw" if self.store.name == "openclaw.json" else "json"
        self.kind = kind
        self.process_keys_changed, self.marked_at = True, None
        self.result = {"changed": False, "rolled_back": False, "last_good": self.store.last_good_path,
                       "invocation": self.invocation()}

    # ----------------------------------------------------------- inputs
    def document(self, value, what):
        if isinstance(value, (dict, list)):
            doc = value
        else:
            doc = txn.load_document(value if isinstance(value, bytes) else str(value), what)
        if not isinstance(doc, dict):
            raise txn.ChangeError("%s must be a JSON object, got %s" % (what, type(doc).__name__))
        return doc

    def schema(self):
        if self.p["schema"] is not None:
            return self.p["schema"]
        path = self.p["schema_file"]
        if path is None and self.kind == "openclaw":
            path = os.path.join(self.p["openclaw_prefix"], "openclaw", "current", "openclaw.schema.json")
        if path is None:
            return None
        try:
            with open(path, "rb") as handle:
                return json.load(handle)
        except (OSError, ValueError) as exc:
            raise txn.ChangeError("cannot read the JSON Schema %s: %s" % (path, exc))

    def validate_command(self):
        command = self.p["validate_command"]
        if command is None and self.kind == "openclaw":
            command = "/usr/bin/env %s OPENCLAW_CONFIG_PATH=%%s %s config validate --json" % (
                compile_cache.env_args(), os.path.join(self.p["openclaw_prefix"], "bin", "openclaw"))
        return command or None

    def candidate(self, current):
        if self.p["state"] == "restore":
            name = self.p["restore_from"]
            data = self.store.last_good() if name == "last-good" else self.store.resolve_backup(name)
            if data is None:
                raise txn.ChangeError("no last known good copy of %s yet (%s); name a backup in restore_from: %s" % (
                    self.store.path, self.store.last_good_path,
                    ", ".join(os.path.basename(b) for b in self.store.backups()) or "none"))
            return data
        if self.p["content"] is not None:
            return canonical_json(self.document(self.p["content"], "content"))
        base = self.document(current, "the current %s" % self.store.path) if current is not None else {}
        return canonical_json(txn.merge_patch(base, self.document(self.p["merge"], "merge")))

    def validate(self, data):
        """Every error of data, secrets scrubbed."""
        doc = self.document(data, "the candidate")
        errors = []
        schema = self.schema()
        if schema is not None:
            try:
                errors += txn.schema_errors(doc, schema)
            except ImportError:
                self.module.fail_json(msg=missing_required_lib("jsonschema (Debian: python3-jsonschema)"))
        command = self.validate_command()
        if command:
            errors += txn.command_errors(self.module.run_command, command, data, self.store.name)
        secrets = txn.secret_values(doc)
        return [dict(e, message=txn.scrub(e["message"], secrets)) for e in errors]

    # ------------------------------------------------------- restart/verify
    def manager(self):
        """The user manager of the unit; KeyError when its user does not exist."""
        user = self.p["unit_user"] or pwd.getpwuid(fileops.owner(self.store.path)[0]).pw_name
        return UserManager(self.module.run_command, user)

    def systemctl(self):
        """`systemctl ARGS` on the unit's manager: the system's, or its
        user's (KeyError when that user does not exist)."""
        if self.p["unit_scope"] == "system":
            return lambda *args: self.module.run_command(["systemctl", "--no-pager"] + list(args))
        return self.manager().systemctl

    def restart(self):
        unit = self.p["unit"]
        action = "restart" if self.p["unit_action"] == "watch" else self.p["unit_action"]
        self.result["applied_by"] = action
        try:
            systemctl = self.systemctl()
        except KeyError:
            return False, "unit_user %s does not exist on the host" % (self.p["unit_user"] or "(owner of path)")
        rc, out, err = systemd_user.restart(systemctl, unit, action)
        if rc != 0:
            return False, "systemctl %s %s failed: %s" % (action, unit, (err or out).strip()[-1000:])
        return True, "%s: %s done" % (unit, action)

    def watch(self):
        """Let the service apply the file itself and take its verdict; our
        own restart when it needs one or gives none (reloading off)."""
        outcome, message = gateway_reload.wait_verdict(self.tail, self.p["reload_timeout"])
        self.result["reload"] = message
        if outcome == "applied":
            self.result["applied_by"] = "hot-reload"
            return True, message
        if outcome in ("invalid", "failed"):
            self.result["applied_by"] = "none"
            return False, "the service did not apply it: %s" % message
        if outcome == "restart" and not self.process_keys_changed:
            # The gateway restarts itself in place; a restart of the unit on
            # top of it would only make the operator wait for both.
            restarted, detail = gateway_reload.wait_restarted(self.tail, self.restart_budget())
            if restarted == "ready" and self.server_newer_than_write():
                self.result["applied_by"] = "gateway-restart"
                return True, "%s; the gateway restarted itself (%s)" % (message, detail)
            if restarted == "ready":
                detail = "a 'gateway ready' line, but the server's uptime does not start after the write"
            message = "%s; %s" % (message, detail)
        # A restart of the unit: the gateway gave no verdict or no finished
        # restart, or the change touches a key its in-place restart keeps
        # (gateway_reload.PROCESS_KEYS).
        ok, detail = self.restart()
        return ok, "%s; %s" % (message, detail)

    def unit_gone(self):
        """Why the unit's process is gone (systemd_user.exited), or None: the
        health wait then ends without its whole budget."""
        unit = self.p["unit"]
        try:
            state = systemd_user.show(self.systemctl(), [unit]).get(unit, {})
        except (KeyError, RuntimeError):
            return None  # unknown: the probes alone decide
        return exited(state)

    def server_newer_than_write(self):
        """The log line is the agent's own file: only the server's uptime
        (/readyz, shorter than the time since the write) shows that the
        restart really happened."""
        url = (self.p["health"] or {}).get("url")
        uptime = gateway_reload.uptime_seconds(url) if url else None
        return uptime is not None and uptime < time.monotonic() - self.marked_at

    def restart_budget(self):
        """Seconds the gateway's own restart may take: the probe's budget."""
        health = self.p["health"] or {}
        return max(self.p["reload_timeout"], int((health.get("retries") or 0) * (health.get("delay") or 0)))

    def health_wait(self, health):
        """A callable waiting on health (None without one), which the unit's
        exit ends early when there is a unit."""
        if not health:
            return None
        gone = self.unit_gone if self.p["unit"] else None
        return lambda: txn.wait_healthy(health, gone=gone)

    def hooks(self):
        """(apply, recover, verify) callables for txn.apply_verified."""
        verify = self.health_wait(self.p["health"])
        if not self.p["unit"]:
            return None, None, verify
        if self.p["unit_action"] != "watch":
            return self.restart, self.restart, verify
        # Marked before the write, so the verdict read is this change's. A
        # rollback restarts: the service's state is not known then.
        self.tail = gateway_reload.LogTail(self.p["reload_log_dir"] or
                                           fleet_plan.log_dir(os.path.dirname(self.store.path)))
        self.tail.mark()
        self.marked_at = time.monotonic()
        return self.watch, self.restart, verify

    # ------------------------------------------------------------------ run
    def log(self, result, before, after, **extra):
        if self.module.check_mode:
            return
        self.store.log(dict(extra, user=self.changed_by(), result=result,
                            checksum_before=txn.checksum(before), checksum_after=txn.checksum(after)))

    def changed_by(self):
        if self.p["changed_by"]:
            return self.p["changed_by"]
        return os.environ.get("SUDO_USER") or getpass.getuser()

    def run(self):
        current = self.store.read()
        data = self.candidate(current)
        self.result.update(checksum_before=txn.checksum(current), checksum_after=txn.checksum(current))
        if current is not None and self.same(current, data):
            self.result["result"] = "unchanged"
            return self.result
        if self.module._diff:
            self.result["diff"] = {"before_header": self.store.path, "after_header": self.store.path,
                                   "before": txn.masked_text(current), "after": txn.masked_text(data)}
        errors = self.validate(data)
        if errors:
            self.log("rejected", current, current, errors=errors[:20])
            self.result.update(result="rejected", errors=errors)
            self.fail("%d error(s); %s was not changed:\n%s" % (
                len(errors), self.store.path,
                "\n".join("  %s: %s (%s)" % (e["path"], e["message"], e["source"]) for e in errors)))
        self.result["changed"] = True
        if self.module.check_mode:
            self.result["result"] = "would_apply"
            return self.result
        # Against the running process's file too: the live file may already
        # hold the new value (an edit whose in-place restart kept the old one).
        last_good = self.store.last_good()
        self.process_keys_changed = self.touches_process_keys(current, data) or (
            last_good is not None and self.touches_process_keys(last_good, data))
        apply_hook, recover_hook, verify = self.hooks()
        verify_recovery = self.health_wait(self.p["health"] and txn.recovery_probe(self.p["health"]))
        outcome = txn.apply_verified(self.store, data, apply_hook, verify, recover=recover_hook,
                                     verify_recovery=verify_recovery)
        applied = "restored" if self.p["state"] == "restore" else "applied"
        after = self.store.read()
        self.result.update(backup=outcome["backup"], checksum_after=txn.checksum(after), health=outcome["detail"])
        if outcome["ok"]:
            self.log(applied, current, after, backup=outcome["backup"])
            self.result["result"] = applied
            return self.result
        self.log("rolled_back", current, after, backup=outcome["backup"],
                 error=outcome["detail"][:1000], recovered=outcome["recovered"])
        self.result.update(result="rolled_back", rolled_back=True, recovered=outcome["recovered"])
        self.fail("%s was rolled back: %s. %s" % (
            self.store.path, outcome["detail"],
            "The previous file is back and healthy." if outcome["recovered"] else
            "The previous file is back but NOT healthy either: %s" % outcome["recovery_detail"]))

    def touches_process_keys(self, current, data):
        """Whether only a new process of the service would read the change."""
        try:
            before = txn.load_document(current) if current is not None else {}
            return gateway_reload.needs_process_restart(before, txn.load_document(data))
        except txn.ChangeError:
            return True

    def same(self, current, data):
        """Canonically equal documents are the same change."""
        try:
            return canonical_json(txn.load_document(current)) == canonical_json(txn.load_document(data))
        except txn.ChangeError:
            return current == data

    def fail(self, msg):
        self.module.fail_json(msg=msg, **self.result)

    def invocation(self):
        """Module args as Ansible echoes them, with secret values of content
        and merge masked (no_log on them would blank every diff line)."""
        args = dict(self.p)
        for key in ("content", "merge"):
            value = args[key]
            if isinstance(value, (str, bytes)):
                try:
                    value = txn.load_document(value, key)
                except txn.ChangeError:
                    value = "(unreadable text, %d characters)" % len(value)
            args[key] = txn.mask_secrets(value)
        return {"module_args": args}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", choices=["present", "restore"], default="present"),
            content=dict(type="raw"),
            merge=dict(type="raw"),
            restore_from=dict(type="str", default="last-good"),
            kind=dict(type="str", choices=["auto", "openclaw", "json"], default="auto"),
            schema=dict(type="dict"),
            schema_file=dict(type="path"),
            validate_command=dict(type="str"),
            openclaw_prefix=dict(type="path", default="/opt/agentfleet"),
            backup_dir=dict(type="path"),
            keep_backups=dict(type="int", default=10),
            mode=dict(type="str", default="0600"),
            unit=dict(type="str"),
            unit_scope=dict(type="str", choices=["user", "system"], default="user"),
            unit_user=dict(type="str"),
            unit_action=dict(type="str", choices=["restart", "reload", "watch"], default="restart"),
            reload_log_dir=dict(type="path"),
            reload_timeout=dict(type="int", default=10),
            health=dict(type="dict", options=dict(
                url=dict(type="str", required=True),
                status=dict(type="list", elements="int", default=[200]),
                body=dict(type="str"),
                retries=dict(type="int", default=60),
                delay=dict(type="float", default=2),
                timeout=dict(type="int", default=5),
            )),
            lock_timeout=dict(type="int", default=600),
            changed_by=dict(type="str"),
        ),
        mutually_exclusive=[("content", "merge"), ("schema", "schema_file")],
        required_if=[("state", "present", ("content", "merge"), True)],
        supports_check_mode=True,
    )
    change = ConfigChange(module)
    try:
        if module.check_mode:
            result = change.run()
        else:
            with change.store.lock(module.params["lock_timeout"]):
                result = change.run()
    except txn.ChangeError as exc:
        errors = exc.errors or [{"path": "$", "message": str(exc), "source": "input"}]
        try:
            current = change.store.read()
        except txn.ChangeError:
            current = None
        change.log("rejected", current, current, errors=errors)
        change.result.update(result="rejected", errors=errors)
        module.fail_json(msg=str(exc), **change.result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
