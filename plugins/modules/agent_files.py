#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: agent_files
short_description: Write the files of many OpenClaw agents in one call
version_added: 0.1.0
description:
  - Creates directories, writes files and secrets env files, and removes paths for a whole
    fleet of agents in a single module call, so a re-run costs the same whether the fleet
    has six agents or fifty.
  - Files are compared byte for byte; only changed files are written, each through a temp
    file in the target directory, C(fsync) and an atomic rename, with owner and mode set
    before the rename.
  - Root works in directories the agent can write to, so no symlink is ever followed - every
    path is walked component by component without following links, and a link (or hard link)
    standing where a file or directory goes is replaced, never written through.
  - A file with O(files[].validate) is checked as a candidate before anything is written. If
    any candidate of the whole call is rejected, nothing at all is written.
  - Env files are secret. Their values never appear in the output or the diff, only the
    names of the keys that changed.
author:
  - agentfleet.vps developers (@agentfleet)
options:
  owner:
    description:
      - Owner of every directory and file written that does not name its own owner.
      - Each agent runs as its own user, so one call can write several agents' files, each
        entry with its own C(owner).
    type: str
  group:
    description:
      - Group of the entries owned by O(owner). Defaults to the primary group of O(owner).
      - An entry with its own C(owner) gets that user's primary group.
    type: str
  directories:
    description: Directories to create (with parents) and keep at the given mode.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      mode:
        description: Octal mode as a string.
        type: str
        default: "0700"
      agent:
        description: Agent this directory belongs to, reported in RV(changed_agents).
        type: str
      owner:
        description: Owner of this directory. Defaults to O(owner).
        type: str
      root_owned:
        description:
          - Owned by root, with the owner's group as its group. With mode C(1770), the agent creates and
            removes its own files there but not root's (an agent's workspace, where the law lives).
        type: bool
        default: false
  files:
    description: Files with their full content.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      content:
        description: Full content of the file.
        type: str
        required: true
      mode:
        description: Octal mode as a string.
        type: str
        default: "0644"
      agent:
        description: Agent this file belongs to, reported in RV(changed_agents).
        type: str
      owner:
        description: Owner of this file. Defaults to O(owner).
        type: str
      validate:
        description:
          - Command that checks a candidate before it replaces the file; C(%s) is replaced by
            the candidate's path. A non-zero exit rejects the candidate and fails the call.
        type: str
      schema:
        description:
          - JSON Schema file on the host the (JSON) content must satisfy, checked before
            O(files[].validate). Every violation is reported with its JSON path.
        type: path
      backup:
        description:
          - Treat the file as a managed config, the way M(agentfleet.vps.config_change) does -
            under its per-file lock, back the current file up to O(files[].store) and append an
            C(applied) line to the change log there.
          - The C(last-good) copy is not moved here; M(agentfleet.vps.gateway_ready) moves it
            once the gateway is ready on the new file.
        type: bool
        default: false
      store:
        description:
          - With O(files[].backup), the directory of the file's backups, C(last-good) copy, lock
            and change log; keep it where the agent cannot write (the agents role uses
            C(fleet_config_store/NAME)). Default C(config-backups/) beside the file.
        type: path
      stop_unit:
        description:
          - A unit of the file owner's user manager that watches this file, stopped (when it is
            running) just before the file is replaced; whoever restarts the unit afterwards starts
            it on the new file. Only for a file that exists already.
          - A running OpenClaw gateway applies its own C(openclaw.json) when it changes, and
            restarts itself for keys it cannot apply live (C(gateway.bind) for one). A restart of
            the unit arriving during that restart of its own is ignored by OpenClaw ("received
            SIGTERM during shutdown"), and the unit then stays stopping until C(TimeoutStopSec).
            Stopped first, the gateway never sees the change.
        type: str
  env_files:
    description: Secret C(KEY="value") files, as systemd C(EnvironmentFile=) reads them.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      values:
        description: The variables; never logged.
        type: dict
        default: {}
      generate:
        description:
          - Keys to generate when not given in O(env_files[].values) - a random 64 hex digit
            token - and to keep unchanged once the file on the host has them.
        type: list
        elements: str
        default: []
      mode:
        description: Octal mode as a string.
        type: str
        default: "0600"
      agent:
        description: Agent this file belongs to, reported in RV(changed_agents).
        type: str
      owner:
        description: Owner of this file. Defaults to O(owner).
        type: str
  secret_files:
    description:
      - Files whose whole content is secret, such as a JSON file of API keys. Their content never
        appears in the output or the diff, which only says that the file changed.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      content:
        description: Full content of the file; never logged.
        type: str
        required: true
      mode:
        description: Octal mode as a string.
        type: str
        default: "0600"
      agent:
        description: Agent this file belongs to, reported in RV(changed_agents).
        type: str
      owner:
        description: Owner of this file. Defaults to O(owner).
        type: str
  absent:
    description: Paths to remove; directories are removed with their content.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      agent:
        description: Agent this path belongs to, reported in RV(changed_agents).
        type: str
notes:
  - Runs as root; validation commands run as root too and see only the candidate file.
extends_documentation_fragment:
  - agentfleet.vps.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Write an agent's files
  agentfleet.vps.agent_files:
    owner: openclaw-coder
    directories:
      - path: /home/openclaw-coder/.openclaw-coder
        agent: coder
    files:
      - path: /home/openclaw-coder/.openclaw-coder/openclaw.json
        content: "{{ coder_config | to_nice_json }}"
        mode: "0600"
        agent: coder
        validate: /usr/bin/env OPENCLAW_CONFIG_PATH=%s /opt/agentfleet/openclaw/current/bin/openclaw config validate --json
    env_files:
      - path: /home/openclaw-coder/.openclaw-coder/gateway.env
        agent: coder
        values:
          ANTHROPIC_API_KEY: "{{ vault_anthropic_api_key }}"
        generate:
          - OPENCLAW_GATEWAY_TOKEN
  register: __agents_files
"""

RETURN = r"""
changed_agents:
  description: Agents with at least one created, changed or removed path, sorted.
  returned: always
  type: list
  elements: str
  sample: [coder]
changed_paths:
  description: Paths that were (or in check mode would be) created, changed or removed.
  returned: always
  type: list
  elements: str
  sample: [/home/openclaw-coder/.openclaw-coder/openclaw.json]
"""

import json
import os
import secrets
import stat
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.agentfleet.vps.plugins.module_utils import config_txn as txn
from ansible_collections.agentfleet.vps.plugins.module_utils import fileops
from ansible_collections.agentfleet.vps.plugins.module_utils import files
from ansible_collections.agentfleet.vps.plugins.module_utils.systemd_user import UserManager, running


def _mode(value):
    return int(str(value), 8)


class Owners:
    """uid and gid of each entry: its own owner (and that user's primary
    group), else the call's owner and group. Looked up once per user."""

    def __init__(self, module, owner, group):
        self.module, self.owner, self.group, self.cache = module, owner, group, {}

    def __call__(self, item):
        owner = item.get("owner") or self.owner
        if not owner:
            self.module.fail_json(msg="%s has no owner: set owner on the entry or on the call" % item["path"])
        group = None if item.get("owner") else self.group
        if (owner, group) not in self.cache:
            self.cache[(owner, group)] = self._lookup(owner, group)
        return self.cache[(owner, group)]

    def _lookup(self, owner, group):
        import grp
        import pwd
        try:
            uid = pwd.getpwnam(owner).pw_uid
            gid = grp.getgrnam(group).gr_gid if group else pwd.getpwnam(owner).pw_gid
        except KeyError as exc:
            if self.module.check_mode:
                # --check before the runtime role ever ran: the user comes later.
                return -1, -1
            self.module.fail_json(msg="user or group %s does not exist on the host" % exc)
        return uid, gid


def _meta_differs(path, mode, uid, gid):
    st = fileops.lstat(path)
    return (st.st_mode & 0o7777) != mode or st.st_uid != uid or st.st_gid != gid


def _current(path):
    """Bytes of the regular file at path; None when missing or when the
    agent put a link there (the write replaces it, never follows it)."""
    try:
        return fileops.read_bytes(path)
    except fileops.UnsafePath:
        return None


def _is_dir(path):
    info = fileops.lstat(path)
    return info is not None and stat.S_ISDIR(info.st_mode)


class Change:
    def __init__(self, kind, path, agent, data=None, mode=None, validate=None, diff=None, schema=None, backup=False,
                 store=None, uid=-1, gid=-1, own_uid=None, stop_unit=None):
        self.kind, self.path, self.agent = kind, path, agent
        self.data, self.mode, self.validate, self.diff = data, mode, validate, diff
        self.schema, self.backup, self.store, self.stop_unit = schema, backup, store, stop_unit
        self.uid, self.gid = uid, gid
        # Owner of a created directory itself when not uid (root_owned).
        self.own_uid = uid if own_uid is None else own_uid


def plan_directories(params, owners):
    changes = []
    for item in params:
        mode = _mode(item["mode"])
        uid, gid = owners(item)
        # A root-owned directory's parents still belong to the agent.
        own_uid = 0 if item.get("root_owned") else uid
        if not _is_dir(item["path"]):
            changes.append(Change("mkdir", item["path"], item.get("agent"), mode=mode, uid=uid, gid=gid, own_uid=own_uid,
                                  diff={"before_header": item["path"], "after_header": item["path"],
                                        "before": "(absent)\n", "after": "directory %04o\n" % mode}))
        elif _meta_differs(item["path"], mode, own_uid, gid):
            changes.append(Change("meta", item["path"], item.get("agent"), mode=mode, uid=own_uid, gid=gid))
    return changes


def plan_files(params, owners, secret=False):
    changes = []
    for item in params:
        uid, gid = owners(item)
        data = item["content"].encode("utf-8")
        mode = _mode(item["mode"])
        current = _current(item["path"])
        if current != data:
            if secret:
                before, after = "" if current is None else "(secret)\n", "(secret, changed)\n"
            elif item.get("backup"):  # a managed config: show it as config_change does, secrets masked
                before, after = txn.masked_text(current), txn.masked_text(data)
            else:
                before, after = (current or b"").decode("utf-8", "replace"), item["content"]
            changes.append(Change("write", item["path"], item.get("agent"), data, mode, item.get("validate"),
                                  {"before_header": item["path"], "after_header": item["path"],
                                   "before": before, "after": after},
                                  schema=item.get("schema"), backup=item.get("backup"), store=item.get("store"),
                                  uid=uid, gid=gid, stop_unit=item.get("stop_unit") if current is not None else None))
        elif _meta_differs(item["path"], mode, uid, gid):
            changes.append(Change("meta", item["path"], item.get("agent"), mode=mode, uid=uid, gid=gid))
    return changes


def plan_env_files(params, owners):
    changes = []
    for item in params:
        uid, gid = owners(item)
        current = _current(item["path"])
        old = files.parse_env(current.decode("utf-8", "replace")) if current is not None else {}
        new = dict(item["values"] or {})
        for key in item["generate"]:
            if not new.get(key):
                new[key] = old.get(key) or secrets.token_hex(32)
        data = files.render_env(new)
        mode = _mode(item["mode"])
        if current != data:
            keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            masked = "changed keys (values hidden): %s\n" % ", ".join(keys)
            changes.append(Change("write", item["path"], item.get("agent"), data, mode, None,
                                  {"before_header": item["path"], "after_header": item["path"],
                                   "before": "" if current is None else "(secret)\n", "after": masked},
                                  uid=uid, gid=gid))
        elif _meta_differs(item["path"], mode, uid, gid):
            changes.append(Change("meta", item["path"], item.get("agent"), mode=mode, uid=uid, gid=gid))
    return changes


def plan_absent(params):
    changes = []
    for item in params:
        if fileops.lstat(item["path"]) is not None:
            changes.append(Change("remove", item["path"], item.get("agent"),
                                  diff={"before_header": item["path"], "after_header": item["path"],
                                        "before": "(present)\n", "after": "(absent)\n"}))
    return changes


def schema_problems(module, change, schemas):
    """Error string for a candidate that breaks its JSON Schema, else None."""
    if change.schema not in schemas:
        try:
            with open(change.schema, "rb") as handle:
                schemas[change.schema] = json.load(handle)
        except FileNotFoundError:
            if not module.check_mode:
                module.fail_json(msg="JSON Schema %s of %s does not exist" % (change.schema, change.path))
            module.warn("%s: not checked against %s, which is not installed yet (check mode)" % (
                change.path, change.schema))
            schemas[change.schema] = None
    if schemas[change.schema] is None:
        return None
    try:
        errors = txn.schema_errors(json.loads(change.data), schemas[change.schema])
    except ImportError:
        module.fail_json(msg=missing_required_lib("jsonschema (Debian: python3-jsonschema)"))
    except ValueError as exc:
        errors = [{"path": "$", "message": "not JSON: %s" % exc}]
    if not errors:
        return None
    return "%s (agent %s) breaks the JSON Schema %s:\n%s" % (
        change.path, change.agent, change.schema, "\n".join("  %s: %s" % (e["path"], e["message"]) for e in errors))


def run_validations(module, changes):
    """Validate every candidate in a private temp dir; return error strings."""
    schemas = {}
    problems = [schema_problems(module, c, schemas) for c in changes if c.kind == "write" and c.schema]
    todo = [c for c in changes if c.kind == "write" and c.validate]
    if not todo:
        return [p for p in problems if p]

    def check(change):
        rc, out, err = txn.run_candidate(module.run_command, change.validate, change.data, os.path.basename(change.path))
        if rc == 127 and module.check_mode:
            # --check on a host where the validator is not installed yet.
            module.warn("%s: not validated, the command of '%s' is not installed yet (check mode)" % (change.path, change.validate))
            return None
        if rc != 0:
            return "%s (agent %s) was rejected by '%s':\n%s" % (
                change.path, change.agent, change.validate, (out + err).strip()[-4000:])
        return None

    # Two at a time: each validation is a node process of about 2 s of CPU.
    with ThreadPoolExecutor(max_workers=2) as pool:
        return [e for e in problems + list(pool.map(check, todo)) if e]


def stop_watcher(module, change):
    """Stops change.stop_unit when its manager says it runs (see the
    option's documentation); a manager that does not answer has no running
    gateway to stop. The unit's user is the file's owner."""
    import pwd
    manager = UserManager(module.run_command, pwd.getpwuid(change.uid).pw_name)
    try:
        state = manager.show([change.stop_unit]).get(change.stop_unit, {})
    except RuntimeError:
        return
    if running(state):
        rc, out, err = manager.systemctl("stop", change.stop_unit)
        if rc != 0:
            module.fail_json(msg="could not stop %s before replacing %s: %s"
                             % (change.stop_unit, change.path, (err or out).strip()[-500:]))


def write_config(module, change):
    """The config_change path without the restart: lock, back up, write,
    log. The handler restarts and gateway_ready verifies."""
    store = txn.ConfigStore(change.path, change.store, mode=change.mode)
    with store.lock():
        before = _current(change.path)
        backup = store.backup(before) if before is not None else None
        if change.stop_unit:
            stop_watcher(module, change)
        fileops.write_atomic(change.path, change.data, change.mode, change.uid, change.gid)
        store.log({"result": "applied", "user": "agentfleet.vps.agents role", "backup": backup,
                   "checksum_before": txn.checksum(before), "checksum_after": txn.checksum(change.data)})


def log_rejections(changes, errors):
    """One change-log line per managed config of a rejected call."""
    for change in changes:
        if change.kind == "write" and change.backup and _is_dir(os.path.dirname(change.path)):
            mine = [e for e in errors if e.startswith(change.path + " ")]
            current = _current(change.path)
            txn.ConfigStore(change.path, change.store).log({
                "result": "rejected", "user": "agentfleet.vps.agents role",
                "checksum_before": txn.checksum(current), "checksum_after": txn.checksum(current),
                "errors": [e[-1000:] for e in mine] or ["another file of the same call was rejected"]})


def apply(module, changes):
    """Every change through fileops: no symlink an agent put in its home is
    followed, and one standing where a file or directory goes is replaced."""
    for change in changes:
        if change.kind == "mkdir":
            if fileops.lstat(change.path) is not None:
                fileops.remove(change.path)
            fileops.makedirs(os.path.dirname(change.path), 0o755, change.uid, change.gid)
            fileops.makedirs(change.path, change.mode, change.own_uid, change.gid)
        elif change.kind == "meta":
            fileops.set_meta(change.path, change.mode, change.uid, change.gid)
        elif change.kind == "write" and change.backup:
            write_config(module, change)
        elif change.kind == "write":
            fileops.write_atomic(change.path, change.data, change.mode, change.uid, change.gid)
        elif change.kind == "remove":
            fileops.remove(change.path)


def main():
    path_agent = dict(path=dict(type="path", required=True), agent=dict(type="str"))
    owned = dict(path_agent, owner=dict(type="str"))
    module = AnsibleModule(
        argument_spec=dict(
            owner=dict(type="str"),
            group=dict(type="str"),
            directories=dict(type="list", elements="dict", default=[], options=dict(
                owned, mode=dict(type="str", default="0700"), root_owned=dict(type="bool", default=False))),
            files=dict(type="list", elements="dict", default=[], options=dict(
                owned, content=dict(type="str", required=True), mode=dict(type="str", default="0644"),
                validate=dict(type="str"), schema=dict(type="path"), backup=dict(type="bool", default=False),
                store=dict(type="path"), stop_unit=dict(type="str"))),
            secret_files=dict(type="list", elements="dict", default=[], no_log=False, options=dict(
                owned, content=dict(type="str", required=True, no_log=True), mode=dict(type="str", default="0600"))),
            env_files=dict(type="list", elements="dict", default=[], options=dict(
                owned, values=dict(type="dict", default={}, no_log=True),
                generate=dict(type="list", elements="str", default=[], no_log=False),
                mode=dict(type="str", default="0600"))),
            absent=dict(type="list", elements="dict", default=[], options=dict(path_agent)),
        ),
        supports_check_mode=True,
    )
    params = module.params
    owners = Owners(module, params["owner"], params["group"])

    changes = (plan_directories(params["directories"], owners)
               + plan_files(params["files"], owners)
               + plan_files(params["secret_files"], owners, secret=True)
               + plan_env_files(params["env_files"], owners)
               + plan_absent(params["absent"]))

    errors = run_validations(module, changes)
    if errors:
        if not module.check_mode:
            log_rejections(changes, errors)
        module.fail_json(msg="%d candidate file(s) failed validation; nothing was written:\n%s"
                         % (len(errors), "\n\n".join(errors)), changed=False, errors=errors)

    if changes and not module.check_mode:
        apply(module, changes)

    result = dict(
        changed=bool(changes),
        changed_agents=sorted(set(c.agent for c in changes if c.agent)),
        changed_paths=[c.path for c in changes],
    )
    if module._diff:
        result["diff"] = [c.diff for c in changes if c.diff]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
