#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: constitution_files
short_description: Render the constitution into every agent's workspace
version_added: 0.1.0
description:
  - Resolves each agent's articles (the fleet's, its role's extras, minus the disabled ones),
    adds the permanent amendments of the penalty ledger that apply to it, and writes into its
    workspace C(CONSTITUTION.md), C(VIOLATIONS.md) (newest first), a managed block in
    C(AGENTS.md) with the startup sequence and the law (these three owned by root, mode 0644 - the
    agent reads them and cannot rewrite them), and C(HANDOFF.md) when it does not exist yet
    (the agent's, never overwritten).
  - Workspace and bootstrap limits are the inventory's, never read from the C(openclaw.json) on
    the host, so an agent that edits its own config cannot move the law or block a deploy.
  - The workspace directory itself is made root's, with the agent's user's group and mode
    C(1770) (sticky) - the agent creates, changes and removes its own files there, but cannot
    remove or rename root's, the law.
  - No symlink or hard link in a workspace is followed; one put where a file goes is replaced.
  - Text of C(AGENTS.md) outside the managed block is never changed; the block appears once.
  - Everything is checked before anything is written - article ids, exactly one supreme
    article, and OpenClaw's bootstrap budget (C(agents.defaults.bootstrapMaxChars) per file,
    C(bootstrapTotalMaxChars) in all) for every agent. One problem fails the call and no file
    changes.
  - Also records the resolved fleet in O(state_dir)/fleet.json, so M(agentfleet.vps.violation)
    renders exactly what the next deploy would, and the checksum of every file it rendered in
    O(state_dir)/rendered/AGENT.json (for C(AGENTS.md) the managed block only), which the
    oversight audit (M(agentfleet.vps.fleet_audit)) compares with the workspace.
author:
  - agentfleet.vps developers (@agentfleet)
options:
  state_dir:
    description: Root-owned directory of C(fleet.json) and the penalty ledger C(ledger.jsonl).
    type: path
    default: /var/lib/agentfleet/constitution
  owner:
    description:
      - Owner of C(HANDOFF.md), and the group of the workspace directory, of every agent that does not
        name its own O(agents[].user).
    type: str
  agents:
    description: The present agents.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Agent name.
        type: str
        required: true
      user:
        description: The user the agent runs as, owner of its C(HANDOFF.md) and group of its workspace.
        type: str
      role:
        description: C(coordinator) or C(specialist).
        type: str
        default: specialist
      workspace:
        description: The agent's workspace (its planned C(agents.defaults.workspace)).
        type: path
        required: true
      max_chars:
        description: Its C(agents.defaults.bootstrapMaxChars) as planned; OpenClaw's default (20000) when unset.
        type: int
      total_max_chars:
        description: Its C(agents.defaults.bootstrapTotalMaxChars) as planned; OpenClaw's default (60000) when unset.
        type: int
  articles:
    description: The fleet's articles (see the constitution role's C(constitution_articles)).
    type: list
    elements: dict
    required: true
  extra_articles:
    description: Articles added for the whole fleet.
    type: list
    elements: dict
    default: []
  disabled:
    description: Article ids dropped for the whole fleet.
    type: list
    elements: str
    default: []
  role_articles:
    description: Per agent role, C(extra) articles and C(disabled) ids.
    type: dict
    default: {}
  violations_shown:
    description: Ledger entries shown in each C(VIOLATIONS.md).
    type: int
    default: 10
extends_documentation_fragment:
  - agentfleet.vps.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Render the constitution for two agents
  agentfleet.vps.constitution_files:
    articles: "{{ constitution_articles }}"
    agents:
      - name: coordinator
        user: openclaw-coordinator
        role: coordinator
        workspace: /home/openclaw-coordinator/.openclaw-coordinator/workspace
      - name: coder
        user: openclaw-coder
        max_chars: 30000
        workspace: /home/openclaw-coder/.openclaw-coder/workspace
"""

RETURN = r"""
changed_agents:
  description: Agents with at least one file written.
  returned: always
  type: list
  elements: str
changed_paths:
  description: Workspace directories protected and files written (or in check mode to be), the fleet record and the rendered digests in O(state_dir) included.
  returned: always
  type: list
  elements: str
"""

import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.agentfleet.vps.plugins.module_utils import constitution as law
from ansible_collections.agentfleet.vps.plugins.module_utils import fileops


def resolved_fleet(params):
    agents, problems = [], []
    for agent in params["agents"]:
        articles = law.resolve_articles(params["articles"], params["extra_articles"], params["disabled"],
                                        params["role_articles"], agent["role"])
        problems += law.check_articles(articles, "agent %s (%s)" % (agent["name"], agent["role"]))
        agents.append(dict(agent, articles=articles))
    return {"agents": agents, "violations_shown": params["violations_shown"], "owner": params["owner"]}, problems


def write_fleet(state_dir, fleet, check_mode):
    """fleet.json, root's, readable by all (the agents may read the law,
    not change it); True when it changed (or would)."""
    data = (json.dumps(fleet, indent=2, sort_keys=True) + "\n").encode("utf-8")
    if not check_mode:
        fileops.makedirs(state_dir, 0o755)
    return fileops.write_if_changed(law.fleet_path(state_dir), data, 0o644, check_mode=check_mode)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state_dir=dict(type="path", default=law.STATE_DIR),
            owner=dict(type="str"),
            agents=dict(type="list", elements="dict", required=True, options=dict(
                name=dict(type="str", required=True),
                user=dict(type="str"),
                role=dict(type="str", default="specialist"),
                workspace=dict(type="path", required=True),
                max_chars=dict(type="int"),
                total_max_chars=dict(type="int"),
            )),
            articles=dict(type="list", elements="dict", required=True),
            extra_articles=dict(type="list", elements="dict", default=[]),
            disabled=dict(type="list", elements="str", default=[]),
            role_articles=dict(type="dict", default={}),
            violations_shown=dict(type="int", default=10),
        ),
        supports_check_mode=True,
    )
    p = module.params
    fleet, problems = resolved_fleet(p)
    ledger = law.read_ledger(law.ledger_path(p["state_dir"]))
    plans = {}
    for agent in fleet["agents"]:
        view = law.agent_view(agent)
        planned, too_big = law.plan_agent(view, ledger, p["violations_shown"])
        plans[agent["name"]] = planned
        problems += too_big
    if problems:
        module.fail_json(msg="the constitution cannot be deployed; nothing was written:\n- " + "\n- ".join(problems),
                         problems=problems)

    owners = {}
    for agent in fleet["agents"]:
        try:
            owners[agent["name"]] = law.owner_ids(agent, p["owner"])
        except KeyError:
            if not module.check_mode:
                module.fail_json(msg="agent %s: its user %s does not exist on the host"
                                 % (agent["name"], agent.get("user") or p["owner"]))
            owners[agent["name"]] = None
    # Workspaces that are not yet root's with the sticky bit, or missing.
    unprotected = [a["workspace"] for a in fleet["agents"]
                   if owners[a["name"]] is None or law.workspace_unprotected(a["workspace"], owners[a["name"]][1])]
    changed_paths = unprotected + [path for planned in plans.values()
                                   for path, content, _current in planned if content is not None]
    fleet_changed = write_fleet(p["state_dir"], fleet, module.check_mode)
    if not module.check_mode:
        for name, planned in plans.items():
            law.write_planned(planned, *owners[name])
    # What was rendered, for the oversight audit's integrity check.
    digests_changed = [name for name, planned in plans.items()
                       if law.write_rendered(p["state_dir"], name, planned, module.check_mode)]

    changed_paths += ([law.fleet_path(p["state_dir"])] if fleet_changed else []) + [
        law.rendered_path(p["state_dir"], name) for name in digests_changed]
    result = dict(changed=bool(changed_paths), changed_paths=changed_paths,
                  changed_agents=sorted(name for name, planned in plans.items()
                                        if any(content is not None for _p, content, _c in planned)))
    if module._diff:
        result["diff"] = [d for planned in plans.values() for d in law.diff_of(planned)]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
