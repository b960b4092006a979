#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gateway_ready
short_description: Wait until OpenClaw gateways answer C(/readyz)
version_added: 0.1.0
description:
  - Polls C(http://127.0.0.1:PORT/readyz) of every listed gateway at the same time until
    each reports C(ready), or the timeout passes.
  - When a gateway is not ready in time the task fails, naming each such agent with the
    last lines of its unit's journal.
  - For a gateway with O(gateways[].config), readiness verifies that config - its
    C(last-good) copy in O(gateways[].store) moves to the file as it is now (the only
    change this module makes). With O(rollback), a gateway that is not ready is put back on
    its C(last-good) config the way M(agentfleet.vps.config_change) does - under the file's
    lock, with a backup and a change log line - restarted and waited for again (at least 180
    seconds, however short O(timeout)); it stays on the last good config even when that start
    is slow, and the task still fails and says so.
  - The wait for a gateway ends early when its process is gone - its unit failed, stopped, or
    waiting out C(RestartSec) before systemd starts it again (read every few seconds); a gateway
    that comes up does not exit first, so a config it cannot run goes to O(rollback) in seconds,
    not after O(timeout).
  - With O(start_retries), such a gateway is first started again at once, at most that many
    times, within the same timeout. OpenClaw exits with status 78 when its startup state
    migration gives up, which a busy machine can cause on a first start or after an upgrade; the
    next start usually completes it. A config OpenClaw rejects fails again on each start, so it
    still ends in O(rollback).
author:
  - agentfleet.vps developers (@agentfleet)
options:
  user:
    description: Owner of the user manager of every gateway that does not name its own O(gateways[].user).
    type: str
  gateways:
    description: The gateways to wait for.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Agent name.
        type: str
        required: true
      port:
        description: Gateway base port.
        type: int
        required: true
      unit:
        description: User unit that runs the gateway.
        type: str
        required: true
      user:
        description: Owner of the user manager that runs that unit (each agent has its own). Defaults to O(user).
        type: str
      config:
        description: The gateway's C(openclaw.json), whose C(last-good) copy readiness moves.
        type: path
      store:
        description:
          - Directory of that config's backups, C(last-good) copy, lock and change log, as
            M(agentfleet.vps.config_change) names it O(agentfleet.vps.config_change#module:backup_dir).
          - Default C(config-backups/) beside O(gateways[].config).
        type: path
  rollback:
    description: Put a gateway that is not ready back on its C(last-good) config, when it has one.
    type: bool
    default: false
  start_retries:
    description: Times a gateway whose process exited while being waited for is started again at once.
    type: int
    default: 0
  timeout:
    description: Seconds to wait for all gateways together.
    type: int
    default: 240
  journal_lines:
    description: Journal lines to show for each gateway that is not ready.
    type: int
    default: 30
extends_documentation_fragment:
  - agentfleet.vps.attributes
attributes:
  check_mode:
    support: full
    details: Waits and reports; moves no C(last-good) copy, starts nothing again and rolls nothing back.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Wait for the fleet, and put back the last good config of any gateway that is not ready
  agentfleet.vps.gateway_ready:
    rollback: true
    gateways:
      - name: coder
        user: openclaw-coder
        port: 19000
        unit: openclaw-gateway-coder.service
        config: /home/openclaw-coder/.openclaw-coder/openclaw.json
        store: /var/lib/agentfleet/config/coder
"""

RETURN = r"""
gateways:
  description: Readiness of each gateway, in the order given.
  returned: always
  type: list
  elements: dict
  sample:
    - name: coder
      port: 19000
      ready: true
      detail: '{"ready":true,"failing":[]}'
restarted:
  description: Agents whose failed unit was started again (O(start_retries)), with how many times.
  returned: always
  type: dict
  sample: {coder: 1}
last_good_moved:
  description: Agents whose C(last-good) config copy moved to their current config.
  returned: always
  type: list
  elements: str
rolled_back:
  description: Agents put back on their C(last-good) config, with whether they became ready on it.
  returned: always
  type: dict
  sample: {coder: {recovered: true, backup: /var/lib/agentfleet/config/coder/openclaw.json.20261128T041500.123456Z.bak}}
"""

import time
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.agentfleet.vps.plugins.module_utils import config_txn as txn
from ansible_collections.agentfleet.vps.plugins.module_utils.systemd_user import Managers, exited

POLL_SECONDS = 2
# A gateway put back on its last good config is waited for at least this long.
RECOVERY_SECONDS = txn.RECOVERY_SECONDS
# The unit's state is read every few polls: it is a systemctl call per
# gateway, on a bus its agent owns.
UNIT_CHECK_POLLS = 2


def wait_for(port, deadline, watch=None):
    """(ready, detail) once /readyz says ready, the deadline passes, or
    watch() says the gateway will not come up (txn.wait_ready)."""
    return txn.wait_ready(port, deadline - time.monotonic(), gone=watch, delay=POLL_SECONDS,
                          check=lambda: txn.readyz(port), gone_every=UNIT_CHECK_POLLS * POLL_SECONDS)


class UnitWatch:
    """Notices a gateway whose process is gone (systemd_user.exited): starts
    its unit again at once, at most `retries` times, then ends the wait.
    systemd leaves a unit failed on exit status 78, which OpenClaw also uses
    when its startup migration gives up under load; any other exit would
    wait out RestartSec. A gateway that exited more often than that is not
    coming up on this config, and a rollback should not wait the whole
    timeout for it."""

    def __init__(self, manager, unit, retries):
        self.manager, self.unit, self.left, self.done = manager, unit, retries, 0

    def __call__(self):
        """None while the gateway may still come up; why not otherwise."""
        try:
            state = self.manager.show([self.unit]).get(self.unit, {})
        except RuntimeError:
            return None  # the agent's manager did not answer: wait on /readyz alone
        gone = exited(state)
        if not gone:
            return None
        if self.left > 0:
            self.left -= 1
            self.done += 1
            # restart, not start: a start job on a unit waiting out
            # RestartSec waits for that restart.
            self.manager.restart(self.unit)
            return None
        return "the gateway exited%s: %s" % (" after %d start(s) again" % self.done if self.done else "", gone)


def promote(gateway):
    """Take the config a ready gateway runs as its last good one; whether
    that moved it."""
    store = txn.ConfigStore(gateway["config"], gateway["store"])
    with store.lock():
        current = store.read()
        return current is not None and store.promote(current)


def roll_back(module, manager, gateway):
    """Put gateway on its last good config, restart it, wait again.
    None when there is nothing different to go back to."""
    store = txn.ConfigStore(gateway["config"], gateway["store"])
    with store.lock():
        good, current = store.last_good(), store.read()
        if good is None or good == current:
            return None
        # The last good config stays whether or not it is ready in time: a
        # gateway slow to start on a busy host must not be sent back to the
        # config that just failed.
        backup = store.backup(current) if current is not None else None
        store.put(good)
        rc, out, err = manager.restart(gateway["unit"])
        if rc == 0:
            watch = UnitWatch(manager, gateway["unit"], 0 if module.check_mode else module.params["start_retries"])
            recovered, detail = wait_for(gateway["port"], time.monotonic() + max(module.params["timeout"], RECOVERY_SECONDS),
                                         watch)
        else:
            recovered, detail = False, "restart failed: %s" % (err or out).strip()[-300:]
        store.log({"result": "rolled_back", "user": "agentfleet.vps.gateway_ready", "backup": backup,
                   "checksum_before": txn.checksum(current), "checksum_after": txn.checksum(store.read()),
                   "error": "gateway not ready on the new config", "recovered": recovered,
                   "recovery_detail": detail[:300]})
    return {"recovered": recovered, "backup": backup}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            user=dict(type="str"),
            gateways=dict(type="list", elements="dict", required=True, options=dict(
                name=dict(type="str", required=True),
                port=dict(type="int", required=True),
                unit=dict(type="str", required=True),
                user=dict(type="str"),
                config=dict(type="path"),
                store=dict(type="path"),
            )),
            rollback=dict(type="bool", default=False),
            start_retries=dict(type="int", default=0),
            timeout=dict(type="int", default=240),
            journal_lines=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    gateways = module.params["gateways"]
    managers = Managers(module.run_command, {g["unit"]: g["user"] for g in gateways if g["user"]}, module.params["user"])
    try:
        for gateway in gateways:
            managers.of(gateway["unit"])
    except KeyError as exc:
        module.fail_json(msg="user %s does not exist on the host" % exc.args[0])
    retries = 0 if module.check_mode else module.params["start_retries"]
    watches = [UnitWatch(managers.of(g["unit"]), g["unit"], retries) for g in gateways]
    deadline = time.monotonic() + module.params["timeout"]
    with ThreadPoolExecutor(max_workers=max(1, len(gateways))) as pool:
        answers = list(pool.map(lambda g, w: wait_for(g["port"], deadline, w), gateways, watches))
    restarted = {g["name"]: w.done for g, w in zip(gateways, watches) if w.done}

    results = [dict(name=g["name"], port=g["port"], ready=ready, detail=detail)
               for g, (ready, detail) in zip(gateways, answers)]
    moved, rolled = [], {}
    if not module.check_mode:
        for gateway, result in zip(gateways, results):
            if result["ready"] and gateway["config"]:
                # One agent's file (a link it planted, say) must not keep
                # the others' last good copies from moving.
                try:
                    if promote(gateway):
                        moved.append(gateway["name"])
                except txn.ChangeError as exc:
                    result.update(ready=False, detail="ready, but its config was not taken as good: %s" % exc)
    failed = [(g, r) for g, r in zip(gateways, results) if not r["ready"]]
    changed = bool(moved or restarted)
    if failed:
        parts = []
        for gateway, result in failed:
            part = "agent '%s' (port %d, %s) is not ready (waited up to %d s): %s\nlast %d journal lines:\n%s" % (
                gateway["name"], gateway["port"], gateway["unit"], module.params["timeout"], result["detail"],
                module.params["journal_lines"], managers.of(gateway["unit"]).journal(gateway["unit"], module.params["journal_lines"]))
            if gateway["name"] in restarted:
                part += "\n(its gateway had exited and was started again %d time(s))" % restarted[gateway["name"]]
            if module.params["rollback"] and gateway["config"] and not module.check_mode:
                try:
                    outcome = roll_back(module, managers.of(gateway["unit"]), gateway)
                except txn.ChangeError as exc:
                    outcome = None
                    part += "\nNot rolled back: %s" % exc
                if outcome:
                    rolled[gateway["name"]] = outcome
                    part += "\nRolled back to its last good config (%s): %s." % (
                        txn.ConfigStore(gateway["config"], gateway["store"]).last_good_path,
                        "ready again" if outcome["recovered"] else "NOT ready on that one either")
            parts.append(part)
        module.fail_json(msg="\n\n".join(parts), gateways=results, changed=changed or bool(rolled),
                         last_good_moved=moved, rolled_back=rolled, restarted=restarted)
    module.exit_json(changed=changed, gateways=results, last_good_moved=moved, rolled_back=rolled,
                     restarted=restarted)


if __name__ == "__main__":
    main()
