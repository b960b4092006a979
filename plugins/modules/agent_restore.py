#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: agent_restore
short_description: Restore one agent's state and workspace from a kept backup
version_added: 0.2.0
description:
  - Restores one agent from an archive the C(agentfleet-backup) command (the backup role's timer) keeps in
    O(backup_dir)C(/NAME/) - the newest, or O(backup).
  - Nothing changes before the archive has passed every check - its sha256 against the manifest written
    when it was made, OpenClaw's own C(backup restore) (which verifies the archive before it unpacks it,
    as the agent's user, into a staging directory in the agent's home), the restored C(openclaw.json)
    parsing and each SQLite database passing C(PRAGMA quick_check).
  - Then the watchdog is held off the agent, its gateway stopped, and, as the agent's user, its files
    swapped for the archive's - the state directory without C(gateway.env) and C(openclaw.json) (the
    deploy's secrets and config stay; M(agentfleet.vps.config_change) keeps the config's history), and
    the workspace without root's C(CONSTITUTION.md), C(VIOLATIONS.md), C(AGENTS.md) and C(ALERTS.md).
  - The gateway is started and must answer C(/readyz) within O(ready_timeout) seconds. When it does not,
    every file moved goes back, the gateway is started again, and the task fails saying whether it is
    ready on its previous files.
  - Root never reads or writes a path the agent controls; it hands the archive to the agent's process on
    its standard input.
author:
  - agentfleet.vps developers (@agentfleet)
options:
  agent:
    description: The agent, as the fleet plan has it.
    type: dict
    required: true
    suboptions:
      name:
        description: C(fleet_agents[].name); its archives are in O(backup_dir)C(/NAME/).
        required: true
        type: str
      user:
        description: The agent's Linux user; every command on its files runs as this user.
        required: true
        type: str
      state_dir:
        description: Its OpenClaw profile directory.
        type: path
        required: true
      workspace:
        description: Its workspace.
        type: path
        required: true
      unit:
        description: Its gateway's user unit.
        type: str
        required: true
      port:
        description: Its gateway's port.
        type: int
        required: true
      compile_cache:
        description: Its compile cache, shared with the OpenClaw CLI runs.
        type: path
  backup_dir:
    description: Root's backup directory (one subdirectory per agent).
    type: path
    default: /var/lib/agentfleet/backups
  backup:
    description: Archive name in the agent's directory (C(20261203T030000Z.tar.gz)); default the newest.
    type: str
  openclaw:
    description: The OpenClaw command.
    type: path
    default: /opt/agentfleet/bin/openclaw
  hold_dir:
    description: Directory of the watchdog's hold files; the agent is held while its gateway is stopped.
    type: path
    default: /var/lib/agentfleet/hold
  ready_timeout:
    description: Seconds the restored gateway (and, when it fails, the put-back one) has to become ready.
    type: int
    default: 120
extends_documentation_fragment:
  - agentfleet.vps.attributes
attributes:
  check_mode:
    support: full
    details: Checks the archive's checksum and reports which archive it would restore; changes nothing.
  diff_mode:
    support: full
    details: Before - the agent's files now; after - the archive's name and time.
"""

EXAMPLES = r"""
- name: Restore the coder from its newest backup
  agentfleet.vps.agent_restore:
    agent:
      name: coder
      user: openclaw-coder
      state_dir: /home/openclaw-coder/.openclaw-coder
      workspace: /home/openclaw-coder/.openclaw-coder/workspace
      unit: openclaw-gateway-coder.service
      port: 19000

- name: Restore a named archive
  agentfleet.vps.agent_restore:
    agent: "{{ coder_plan_entry }}"
    backup: 20261203T030000Z.tar.gz
"""

RETURN = r"""
archive:
  description: The archive restored (or, in check mode, that would be).
  returned: success
  type: str
  sample: 20261203T030000Z.tar.gz
created:
  description: When that archive was made (UTC, ISO 8601).
  returned: success
  type: str
  sample: "2026-12-03T03:00:00+00:00"
ready:
  description: Whether the gateway answered C(/readyz) on the restored files.
  returned: success and not check mode
  type: bool
detail:
  description: The gateway's last C(/readyz) answer.
  returned: success and not check mode
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import backup


def main():
    module = AnsibleModule(
        argument_spec=dict(
            agent=dict(type="dict", required=True, options=dict(
                name=dict(type="str", required=True),
                user=dict(type="str", required=True),
                state_dir=dict(type="path", required=True),
                workspace=dict(type="path", required=True),
                unit=dict(type="str", required=True),
                port=dict(type="int", required=True),
                compile_cache=dict(type="path"),
            )),
            backup_dir=dict(type="path", default="/var/lib/agentfleet/backups"),
            backup=dict(type="str"),
            openclaw=dict(type="path", default="/opt/agentfleet/bin/openclaw"),
            hold_dir=dict(type="path", default="/var/lib/agentfleet/hold"),
            ready_timeout=dict(type="int", default=120),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["backup"] is not None and not backup.ARCHIVE.match(params["backup"]):
        module.fail_json(msg="backup=%s is not an archive name: give one like 20261203T030000Z.tar.gz "
                             "(agentfleet-backup --list on the host lists them)" % params["backup"])
    config = {"dir": params["backup_dir"], "openclaw": params["openclaw"], "hold_dir": params["hold_dir"]}
    try:
        result = backup.restore(config, params["agent"], params["backup"], check_mode=module.check_mode,
                                ready_timeout=params["ready_timeout"])
    except (backup.BackupError, OSError) as exc:
        module.fail_json(msg=str(exc), changed=False)
    result["diff"] = {"before": "%s: its files now\n" % params["agent"]["name"],
                      "after": "%s: %s (made %s)\n" % (params["agent"]["name"], result["archive"], result["created"])}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
