# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn the inventory into the checked fleet plan.

The logic lives in module_utils (fleet_plan, fleet_read, files,
compile_cache); these wrappers only turn a PlanError into an
AnsibleFilterError, so the play stops with our message. Each filter's
documentation is plugins/filter/NAME.yml (ansible-doc -t filter, and
docs/filters.md generated from it).
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.agentfleet.vps.plugins.module_utils import compile_cache, files, fleet_plan, fleet_read, host_sources


def _plain(value):
    """Inventory data arrives as Ansible's lazy, tagged containers, which
    deepcopy cannot copy; the plan logic wants plain Python values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def _wrap(func):
    def wrapper(*args, **kwargs):
        args = [_plain(a) for a in args]
        kwargs = {k: _plain(v) for k, v in kwargs.items()}
        try:
            return func(*args, **kwargs)
        except fleet_plan.PlanError as exc:
            raise AnsibleFilterError(str(exc)) from None
    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


def fleet_port_plan(agents, base=18800, stride=200, ss_output="", passwd=None, fleet_credentials=None,
                    prefix=fleet_plan.DEFAULT_USER, store=None):
    """Validated plan of the fleet; see module_utils/fleet_plan.build_plan.
    passwd: getent's passwd facts (user -> [x, uid, ...])."""
    listeners = fleet_plan.parse_listeners(ss_output)
    uids = {user: int(fields[1]) for user, fields in (passwd or {}).items() if fields and str(fields[1]).isdigit()}
    return fleet_plan.build_plan(agents, base, stride, listeners, uids, fleet_credentials, prefix, store)


def fleet_env_files(plan, agents, fleet_credentials):
    """agent_files env_files entries (the secrets) of every present agent.
    A token not given in the inventory is generated on the host once."""
    by_name = {agent["name"]: agent for agent in agents}
    result = []
    for entry in plan:
        if entry["state"] != "present":
            continue
        agent = by_name[entry["name"]]
        creds = fleet_plan.credentials_for(agent, fleet_credentials)
        result.append({
            "path": entry["env_file"],
            "agent": entry["name"],
            "owner": entry["user"],
            "values": fleet_plan.gateway_env(entry, creds, agent.get("token"), agent.get("channels")),
            "generate": ["OPENCLAW_GATEWAY_TOKEN"],
        })
    return result


def fleet_auth_profiles_entry(entry):
    """auth_profiles entry of one planned agent: whose store, as which user,
    which profiles."""
    return {"name": entry["name"], "user": entry["user"], "state_dir": entry["state_dir"],
            "compile_cache": entry["compile_cache"], "profiles": entry.get("auth_profiles") or {}}


def fleet_gateway_probe(entry):
    """gateway_ready entry of one planned agent: its user manager, port,
    unit and openclaw.json, whose last good copy (in the entry's store)
    readiness moves."""
    probe = {"name": entry["name"], "user": entry["user"], "port": entry["port"],
             "unit": entry["unit"], "config": entry["config"]}
    if entry.get("store"):
        probe["store"] = entry["store"]
    return probe


def fleet_workspaces(agents, prefix):
    """constitution_files entries of every present agent: its user, and
    workspace and bootstrap limits as the inventory plans them
    (agents.defaults of its config), never as the agent may have rewritten
    them on the host."""
    result = []
    for agent in agents:
        if agent.get("state", "present") != "present":
            continue
        entry = {"name": agent["name"], "role": agent.get("role", "specialist"),
                 "user": fleet_plan.service_user(prefix, agent["name"]),
                 "workspace": fleet_plan.workspace(agent, fleet_plan.state_dir(prefix, agent["name"]))}
        entry.update(_bootstrap_limits(agent))
        result.append(entry)
    return result


def _bootstrap_limits(agent):
    """The bootstrap limits the inventory sets in the agent's config."""
    defaults = ((agent.get("config") or {}).get("agents") or {}).get("defaults") or {}
    limits = (("max_chars", "bootstrapMaxChars"), ("total_max_chars", "bootstrapTotalMaxChars"))
    return {key: defaults[limit] for key, limit in limits if defaults.get(limit)}


def fleet_audit_agents(plan, agents):
    """The overseers' view of every present planned agent: from its plan
    entry its user, role, unit, port, state dir, openclaw.json, workspace and
    config store; from the inventory its bootstrap limits."""
    by_name = {agent["name"]: agent for agent in agents}
    result = []
    for entry in plan:
        if entry.get("state", "present") != "present" or entry["name"] not in by_name:
            continue
        result.append(dict(_bootstrap_limits(by_name[entry["name"]]), name=entry["name"], role=entry["role"],
                           user=entry["user"], workspace=entry["workspace"], port=entry["port"],
                           unit=entry["unit"], state_dir=entry["state_dir"], config=entry["config"],
                           compile_cache=entry["compile_cache"], store_dir=entry.get("store")))
    return result


def fleet_service_users(agents, prefix):
    """The Linux user of every present agent, in inventory order."""
    return [fleet_plan.service_user(prefix, agent["name"]) for agent in agents
            if agent.get("state", "present") == "present"]


def fleet_memory_high(memory_max):
    """MemoryHigh= of a gateway unit for its MemoryMax= (90 %, in MiB)."""
    return fleet_plan.memory_high(memory_max)


class FilterModule:
    """agentfleet.vps fleet plan filters."""

    def filters(self):
        return {
            "fleet_port_plan": _wrap(fleet_port_plan),
            "fleet_memory_high": _wrap(fleet_memory_high),
            "fleet_service_users": _wrap(fleet_service_users),
            "fleet_audit_agents": _wrap(fleet_audit_agents),
            "fleet_env_files": _wrap(fleet_env_files),
            "fleet_gateway_probe": _wrap(fleet_gateway_probe),
            "fleet_unit": _wrap(fleet_plan.unit_name),
            "fleet_units_in_place": _wrap(fleet_plan.units_in_place),
            "fleet_log_dir": _wrap(fleet_plan.log_dir),
            "fleet_openclaw_config": _wrap(fleet_plan.openclaw_config),
            "fleet_auth_profiles_entry": _wrap(fleet_auth_profiles_entry),
            "fleet_auth_in_place": _wrap(fleet_read.auth_in_place),
            "fleet_last_good_paths": _wrap(fleet_read.last_good_paths),
            "fleet_ready_in_place": _wrap(fleet_read.ready_in_place),
            "fleet_workspaces": _wrap(fleet_workspaces),
            "fleet_upgrade_plan": _wrap(fleet_plan.upgrade_plan),
            "fleet_running_versions": _wrap(fleet_plan.running_versions),
            "fleet_files_in_place": _wrap(files.in_place),
            "fleet_compile_cache_env": _wrap(compile_cache.env),
            "fleet_compile_cache_env_args": _wrap(compile_cache.env_args),
            "fleet_host_sources": _wrap(host_sources.closure),
        }
