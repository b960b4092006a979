#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: auth_profiles
short_description: Put each agent's model keys into OpenClaw's auth profile store as references to its env file
version_added: 0.1.0
description:
  - OpenClaw rotates a rate-limited model to the next auth profile of the same provider
    (C(auth.order.<provider>)) before it falls back to the next model; keys that only live in
    the environment never take part in that rotation. The config names and orders the profiles;
    the credentials live in the agent's own SQLite store.
  - For each agent, this module makes that store hold one C(api_key) profile per key whose
    C(keyRef) names an env variable of the agent's C(gateway.env), so no key is ever written
    into the store, C(openclaw.json) or a log. It writes with OpenClaw's own
    C(openclaw secrets apply), run as the agent's user, then asks the running gateway to take the
    profiles up with C(openclaw secrets reload).
  - The store is read from a private copy before and after; an agent whose store already holds
    the profiles costs no OpenClaw process, so a re-run changes nothing.
  - C(secrets apply) rewrites the config it is given; it is given a throwaway copy, so the
    deployed C(openclaw.json) (and its last good copy) never changes here.
author:
  - agentfleet.vps developers (@agentfleet)
options:
  agents:
    description: The agents whose stores to check.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Agent (OpenClaw profile) name.
        type: str
        required: true
      user:
        description: The agent's Linux user; OpenClaw runs as this user, never as root.
        type: str
        required: true
      state_dir:
        description: The agent's OpenClaw state directory (C(~/.openclaw-NAME)).
        type: path
        required: true
      compile_cache:
        description:
          - Directory of the agent's own Node.js compile cache (its gateway's, the fleet plan's
            C(compile_cache)), so the OpenClaw CLI runs do not compile OpenClaw again. Without
            it, OpenClaw's default under the temp dir is used.
        type: path
      profiles:
        description:
          - Provider to a list of C([profile id, env variable]) pairs, in rotation order, as the fleet
            plan's C(auth_profiles). An agent without any is skipped.
        type: dict
        default: {}
  openclaw:
    description: The OpenClaw command.
    type: path
    default: /opt/agentfleet/bin/openclaw
  reload:
    description: Ask each changed agent's running gateway to reload its secrets. A gateway that is not running reads the store when it starts.
    type: bool
    default: true
extends_documentation_fragment:
  - agentfleet.vps.attributes
attributes:
  check_mode:
    support: full
    details: Reads the stores and reports which agents would change; runs no OpenClaw command.
  diff_mode:
    support: full
    details: Profile ids and the env variables they reference, before and after; never a key.
"""

EXAMPLES = r"""
- name: Two Anthropic keys as the primary model's two tiers
  agentfleet.vps.auth_profiles:
    agents:
      - name: coder
        user: openclaw-coder
        state_dir: /home/openclaw-coder/.openclaw-coder
        profiles:
          anthropic: [[anthropic:key-1, ANTHROPIC_API_KEY], [anthropic:key-2, ANTHROPIC_API_KEY_2]]
"""

RETURN = r"""
changed_agents:
  description: Agents whose store was (or in check mode would be) written.
  returned: always
  type: list
  elements: str
  sample: [coder]
reload:
  description: Per changed agent, what C(openclaw secrets reload) answered (C(ok) false when its gateway was not running).
  returned: always
  type: dict
  sample: {coder: {ok: true}}
"""

import json
import os
import pwd
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.agentfleet.vps.plugins.module_utils import auth_store, compile_cache, fileops
from ansible_collections.agentfleet.vps.plugins.module_utils.files import last_json, read_env

WORKERS = 3


def as_agent(module, agent, args, env):
    argv = ["runuser", "-u", agent["user"], "--", module.params["openclaw"]] + args
    return module.run_command(argv, environ_update=env, cwd="/")


def apply(module, agent, want, work, env):
    """Run secrets apply as the agent on a copy of its config; the failure
    in OpenClaw's own words, or None."""
    user = pwd.getpwnam(agent["user"])
    plan_file = os.path.join(work, "plan.json")
    with open(plan_file, "w", encoding="utf-8") as handle:
        json.dump(auth_store.plan(want), handle)
    os.chmod(plan_file, 0o644)
    # The config copy lives in a directory the agent owns (apply rewrites
    # it and keeps a .bak); root writes it before handing the directory over.
    scratch = os.path.join(work, "config")
    os.mkdir(scratch, 0o700)
    config = os.path.join(scratch, "openclaw.json")
    with open(config, "wb") as handle:
        handle.write(fileops.read_bytes(os.path.join(agent["state_dir"], "openclaw.json")) or b"{}")
    for path in (config, scratch):
        os.chown(path, user.pw_uid, user.pw_gid)
    os.chmod(work, 0o711)
    env = dict(env, OPENCLAW_STATE_DIR=agent["state_dir"], OPENCLAW_CONFIG_PATH=config)
    rc, out, err = as_agent(module, agent, ["secrets", "apply", "--from", plan_file, "--json"], env)
    if rc != 0:
        return "agent %s: openclaw secrets apply exited %d: %s" % (agent["name"], rc, (err or out).strip()[-800:])
    return None


def reload(module, agent, env):
    rc, out, err = as_agent(module, agent, ["--profile", agent["name"], "secrets", "reload", "--json"], env)
    answer = last_json(out)
    return {"ok": rc == 0 and answer.get("ok") is True, "rc": rc,
            "detail": "" if rc == 0 else (err or out).strip()[-300:]}


def describe(entries):
    return "\n".join("%s -> %s" % (pid, (entry.get("keyRef") or {}).get("id", "(no reference)"))
                     for pid, entry in sorted(entries.items())) + "\n"


def converge(module, agent, want):
    """Apply, verify, reload one agent; a failure message or None."""
    # The agent's keys and home: OpenClaw resolves the SecretRefs it writes.
    env = dict(read_env(os.path.join(agent["state_dir"], "gateway.env")), HOME=pwd.getpwnam(agent["user"]).pw_dir)
    if agent.get("compile_cache"):
        env.update(compile_cache.env(agent["compile_cache"]))
    work = tempfile.mkdtemp(prefix="agentfleet-auth-")
    try:
        failed = apply(module, agent, want, work, env)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failed:
        return failed, None
    left = auth_store.missing(want, auth_store.stored(agent["state_dir"]))
    if left:
        return "agent %s: after openclaw secrets apply the store still lacks %s" % (agent["name"], ", ".join(left)), None
    return None, reload(module, agent, env) if module.params["reload"] else None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            agents=dict(type="list", elements="dict", required=True, options=dict(
                name=dict(type="str", required=True),
                user=dict(type="str", required=True),
                state_dir=dict(type="path", required=True),
                compile_cache=dict(type="path"),
                profiles=dict(type="dict", default={}),
            )),
            openclaw=dict(type="path", default="/opt/agentfleet/bin/openclaw"),
            reload=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    todo, before, after = [], [], []
    for agent in module.params["agents"]:
        want = auth_store.wanted(agent["profiles"])
        have = auth_store.stored(agent["state_dir"]) if want else {}
        if want and auth_store.missing(want, have):
            todo.append((agent, want))
            before.append("# %s\n%s" % (agent["name"], describe({k: v for k, v in have.items() if k in want})))
            after.append("# %s\n%s" % (agent["name"], describe(want)))
    changed = [agent["name"] for agent, dummy in todo]
    reloads, errors = {}, []
    if todo and not module.check_mode:
        # One OpenClaw process per agent, a few at a time: each costs
        # seconds of CPU to start.
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            outcomes = list(pool.map(lambda item: converge(module, *item), todo))
        for (agent, dummy), (error, reloaded) in zip(todo, outcomes):
            if error:
                errors.append(error)
            elif reloaded is not None:
                reloads[agent["name"]] = reloaded
    if errors:
        module.fail_json(msg="; ".join(errors), changed_agents=changed)
    result = dict(changed=bool(changed), changed_agents=changed, reload=reloads)
    if module._diff and changed:
        result["diff"] = {"before": "".join(before), "after": "".join(after)}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
