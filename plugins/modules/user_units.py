#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: user_units
short_description: Enable, start, restart and stop many user-level systemd units at once
version_added: 0.1.0
description:
  - Manages units of lingering users' systemd managers (each agent of the fleet runs as its own
    user) with one C(systemctl --user show) per manager to read every unit's state and at most
    one C(systemctl) call per manager and action.
  - Runs C(systemctl --user) as each unit's user with its C(XDG_RUNTIME_DIR) and session bus.
author:
  - agentfleet.vps developers (@agentfleet)
options:
  user:
    description: Owner of the user manager of every unit not in O(users).
    type: str
  users:
    description: Unit name -> owner of the user manager that runs it.
    type: dict
    default: {}
  daemon_reload:
    description: Reload unit files before anything else.
    type: bool
    default: false
  present:
    description: Units that must be enabled (C(WantedBy=) of their unit file).
    type: list
    elements: str
    default: []
  start:
    description:
      - Start the O(present) units that are not active. With V(false) the units are only
        enabled (staging); they start at the next boot of the user manager.
    type: bool
    default: true
  restart:
    description:
      - Units to restart because their files changed. A unit this call started is not
        restarted again; a stopped unit is left alone when O(start=false).
    type: list
    elements: str
    default: []
  absent:
    description: Units to stop and disable.
    type: list
    elements: str
    default: []
  journal_lines:
    description:
      - When a start or restart fails, the failure message ends with this many journal lines
        (the gateway's output and its user manager's messages) of each unit that is not active.
    type: int
    default: 30
  stop:
    description:
      - Units to stop and leave enabled, e.g. while their state is copied. Stopped before
        anything is started or restarted; reported in RV(stopped).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - agentfleet.vps.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Enable and start the gateways, restart the changed ones
  agentfleet.vps.user_units:
    users:
      openclaw-gateway-coordinator.service: openclaw-coordinator
      openclaw-gateway-coder.service: openclaw-coder
    daemon_reload: true
    present:
      - openclaw-gateway-coordinator.service
      - openclaw-gateway-coder.service
    restart:
      - openclaw-gateway-coder.service
"""

RETURN = r"""
enabled:
  description: Units this call enabled.
  returned: always
  type: list
  elements: str
started:
  description: Units this call started.
  returned: always
  type: list
  elements: str
restarted:
  description: Units this call restarted.
  returned: always
  type: list
  elements: str
stopped:
  description: Units this call stopped (and disabled, for O(absent)).
  returned: always
  type: list
  elements: str
states:
  description: State of every O(present) and O(absent) unit after the call.
  returned: always
  type: dict
  sample:
    openclaw-gateway-coder.service:
      ActiveState: active
      UnitFileState: enabled
      MainPID: "4242"
      NRestarts: "0"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.agentfleet.vps.plugins.module_utils.systemd_user import Managers, running


def main():
    module = AnsibleModule(
        argument_spec=dict(
            user=dict(type="str"),
            users=dict(type="dict", default={}),
            daemon_reload=dict(type="bool", default=False),
            present=dict(type="list", elements="str", default=[]),
            start=dict(type="bool", default=True),
            restart=dict(type="list", elements="str", default=[]),
            absent=dict(type="list", elements="str", default=[]),
            stop=dict(type="list", elements="str", default=[]),
            journal_lines=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    p = module.params
    managers = Managers(module.run_command, p["users"], p["user"])
    listed = p["present"] + p["absent"] + p["stop"]
    try:
        for unit in listed + p["restart"]:
            managers.of(unit)
    except KeyError as exc:
        if module.check_mode:
            # --check before the runtime role ever ran: every unit is new.
            module.exit_json(changed=bool(p["present"]), enabled=p["present"],
                             started=p["present"] if p["start"] else [], restarted=[], stopped=[], states={})
        module.fail_json(msg="user %s does not exist on the host" % exc.args[0])

    def run(action, units, *flags):
        for manager, mine in managers.grouped(units):
            if action in ("start", "restart"):
                rc, out, err = manager.restart(mine, action, *flags)
            else:
                rc, out, err = manager.systemctl(action, *(list(flags) + mine))
            if rc == 0:
                continue
            msg = "systemctl --user %s %s (user %s) failed: %s" % (action, " ".join(mine), manager.user, (err or out).strip())
            if action in ("start", "restart"):
                # systemctl only points at the journal; the reason is in it.
                states = manager.show(mine)
                for unit in mine:
                    if states.get(unit, {}).get("ActiveState") != "active":
                        msg += "\nlast %d journal lines of %s:\n%s" % (
                            p["journal_lines"], unit, manager.journal(unit, p["journal_lines"]).rstrip())
            module.fail_json(msg=msg)

    if p["daemon_reload"] and not module.check_mode:
        for manager, _units in managers.grouped(listed + p["restart"]):
            rc, out, err = manager.systemctl("daemon-reload")
            if rc != 0:
                module.fail_json(msg="systemctl --user daemon-reload (user %s) failed: %s" % (manager.user, (err or out).strip()))

    before = managers.show(listed)

    def state(unit, key):
        return before.get(unit, {}).get(key, "")

    def runs(unit):
        return running(before.get(unit, {}))

    to_stop = [u for u in p["absent"] if runs(u) or state(u, "UnitFileState") == "enabled"]
    to_halt = [u for u in p["stop"] if runs(u)]
    to_enable = [u for u in p["present"] if state(u, "UnitFileState") != "enabled"]
    inactive = [u for u in p["present"] if u in to_halt or not runs(u)]
    to_start = inactive if p["start"] else []
    to_restart = [u for u in p["restart"] if u not in inactive]

    if not module.check_mode:
        if to_stop:
            run("disable", to_stop, "--now")
        if to_halt:
            run("stop", to_halt)
        if to_enable:
            run("enable", to_enable)
        if to_start:
            run("start", to_start)
        if to_restart:
            # Blocking: it returns once the old process is gone, so a
            # readiness probe right after cannot mistake it for the new one.
            run("restart", to_restart)

    changed = bool(to_stop or to_halt or to_enable or to_start or to_restart)
    # Nothing done: the states read before are the states now.
    after = managers.show(listed) if changed and not module.check_mode else before
    module.exit_json(
        changed=changed,
        enabled=to_enable, started=to_start, restarted=to_restart, stopped=to_stop + to_halt,
        states={u: after.get(u, {}) for u in listed},
    )


if __name__ == "__main__":
    main()
