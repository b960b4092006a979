#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: violation
short_description: Record a violation in the fleet's penalty ledger, with an optional permanent amendment
version_added: 0.1.0
description:
  - Appends one entry to the penalty ledger on the host (C(ledger.jsonl) in O(state_dir), JSON
    lines, root's; the source of truth) - agent, time, what happened, why (root cause), what
    changed (the systemic fix), severity and an optional amendment.
  - Vague entries are refused with a message naming each empty or boilerplate field
    (C(made a mistake), C(be more careful), fewer than four words); nothing is written.
  - An amendment is permanent - it applies to one agent, to every agent of its role, or to
    the fleet (O(amendment_scope)), appears in the affected agents' C(CONSTITUTION.md) and
    C(AGENTS.md) block from then on, and no later deploy drops it (the role renders from the
    ledger).
  - The affected agents' files are rendered again in the same task, exactly as the
    constitution role would. An amendment that would push an agent's C(AGENTS.md) over
    OpenClaw's bootstrap budget is refused before anything is written.
  - The same entry (same agent, what, why and changed) given again is recorded once.
  - Needs the constitution role deployed first (it writes C(fleet.json) in O(state_dir)).
author:
  - agentfleet.vps developers (@agentfleet)
options:
  agent:
    description: The agent that broke an article.
    type: str
    required: true
  what:
    description: The exact failure - what happened, where, with which command or file.
    type: str
    required: true
  why:
    description: The root cause, not the symptom.
    type: str
    required: true
  changed:
    description: The systemic fix - what is different now so it cannot happen again.
    type: str
    required: true
  severity:
    description: How bad it was.
    type: str
    choices: [low, medium, high, critical]
    default: medium
  amendment:
    description: A rule to add to the constitution permanently.
    type: str
  amendment_scope:
    description: V(agent) (only O(agent)), V(role) (every agent with O(agent)'s role) or V(fleet).
    type: str
    choices: [agent, role, fleet]
    default: agent
  recorded_by:
    description: Who records it, for the ledger. Default the sudo user, else the login user.
    type: str
  state_dir:
    description: Where the ledger and C(fleet.json) are.
    type: path
    default: /var/lib/agentfleet/constitution
extends_documentation_fragment:
  - agentfleet.vps.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Record a violation with an amendment for every specialist
  agentfleet.vps.violation:
    agent: coder
    what: Reported the login fix as done in ticket 42 without running the test suite; CI failed on test_login.
    why: The task prompt said urgent and the agent skipped article I's build-and-test step to save time.
    changed: The review checklist now requires the CI run URL in every done message; added to the coder's HANDOFF.md template.
    severity: high
    amendment: A task is reported done only with the passing CI run's URL in the same message.
    amendment_scope: role
"""

RETURN = r"""
entry:
  description: The ledger entry (new, or the one already recorded).
  returned: success
  type: dict
recorded:
  description: Whether this call added the entry (false when it was already in the ledger).
  returned: success
  type: bool
affected_agents:
  description: Agents whose files were rendered again.
  returned: success
  type: list
  elements: str
problems:
  description: Why the entry was refused.
  returned: failure
  type: list
  elements: str
"""

import contextlib
import datetime
import getpass
import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.agentfleet.vps.plugins.module_utils import constitution as law
from ansible_collections.agentfleet.vps.plugins.module_utils import fileops


def main():
    module = AnsibleModule(
        argument_spec=dict(
            agent=dict(type="str", required=True),
            what=dict(type="str", required=True),
            why=dict(type="str", required=True),
            changed=dict(type="str", required=True),
            severity=dict(type="str", choices=list(law.VIOLATION_SEVERITIES), default="medium"),
            amendment=dict(type="str"),
            amendment_scope=dict(type="str", choices=list(law.SCOPES), default="agent"),
            recorded_by=dict(type="str"),
            state_dir=dict(type="path", default=law.STATE_DIR),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        fleet = law.load_fleet(p["state_dir"])
    except law.ConstitutionError as exc:
        module.fail_json(msg=str(exc))
    agents = {a["name"]: a for a in fleet["agents"]}
    if p["agent"] not in agents:
        module.fail_json(msg="agent=%s is not a present agent of the fleet; allowed: %s" % (
            p["agent"], ", ".join(sorted(agents))))
    problems = law.vague_fields(p)
    if problems:
        module.fail_json(msg="violation refused, nothing was written:\n- " + "\n- ".join(problems), problems=problems)

    ledger_file = law.ledger_path(p["state_dir"])
    # The duplicate check and the append under one lock: the same entry
    # recorded twice at the same moment lands once.
    with contextlib.nullcontext() if module.check_mode else fileops.lock(ledger_file + ".lock"):
        ledger = law.read_ledger(ledger_file)
        agent = agents[p["agent"]]
        entry_id = law.entry_id(p["agent"], p["what"], p["why"], p["changed"])
        known = [e for e in ledger if e["id"] == entry_id]
        if known:
            module.exit_json(changed=False, recorded=False, entry=known[0], affected_agents=[])

        entry = {"id": entry_id, "agent": p["agent"], "role": agent["role"],
                 "time": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
                 "what": p["what"].strip(), "why": p["why"].strip(), "changed": p["changed"].strip(),
                 "severity": p["severity"], "recorded_by": p["recorded_by"] or os.environ.get("SUDO_USER")
                 or getpass.getuser()}
        if p["amendment"]:
            target = {"agent": agent["name"], "role": agent["role"], "fleet": None}[p["amendment_scope"]]
            entry["amendment"] = {"text": " ".join(p["amendment"].split()), "scope": p["amendment_scope"],
                                  "target": target}
            affected = [a for a in fleet["agents"] if law.applies_to(entry["amendment"], a)]
        else:
            affected = [agent]

        new_ledger = ledger + [entry]
        plans, problems = [], []
        for each in affected:
            planned, too_big = law.plan_agent(law.agent_view(each), new_ledger, fleet["violations_shown"])
            plans.append(planned)
            problems += too_big
        if problems:
            module.fail_json(msg="violation refused, nothing was written:\n- " + "\n- ".join(problems), problems=problems)

        if not module.check_mode:
            owners = []
            for each in affected:
                try:
                    owners.append(law.owner_ids(each, fleet.get("owner")))
                except KeyError:
                    module.fail_json(msg="agent %s: its user %s does not exist on the host; nothing was written"
                                     % (each["name"], each.get("user") or fleet.get("owner")))
            fileops.append_line(ledger_file, json.dumps(entry, sort_keys=True) + "\n", 0o644)
            for each, planned, owner in zip(affected, plans, owners):
                law.write_planned(planned, *owner)
                law.write_rendered(p["state_dir"], each["name"], planned)

        result = dict(changed=True, recorded=True, entry=entry, affected_agents=[a["name"] for a in affected])
        if module._diff:
            result["diff"] = [{"before_header": ledger_file, "after_header": ledger_file, "before": "",
                               "after": json.dumps(entry, sort_keys=True, indent=2) + "\n"}]
            result["diff"] += [d for planned in plans for d in law.diff_of(planned)]
        module.exit_json(**result)


if __name__ == "__main__":
    main()
