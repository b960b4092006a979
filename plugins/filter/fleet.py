# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn the inventory into the checked fleet plan.

The logic lives in module_utils/fleet_plan.py; these wrappers only turn a
PlanError into an AnsibleFilterError, so the play stops with our message.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.agentfleet.vps.plugins.module_utils import fleet_plan


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


def fleet_port_plan(agents, base=18800, stride=200, ss_output="", fleet_uid=None, fleet_credentials=None):
    """Validated plan of the fleet; see module_utils/fleet_plan.build_plan."""
    listeners = fleet_plan.parse_listeners(ss_output)
    uid = int(fleet_uid) if fleet_uid not in (None, "") else None
    return fleet_plan.build_plan(agents, base, stride, listeners, uid, fleet_credentials)


def fleet_env_files(plan, agents, fleet_credentials, home):
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
            "path": "%s/.openclaw-%s/gateway.env" % (home, entry["name"]),
            "agent": entry["name"],
            "values": fleet_plan.gateway_env(entry, creds, agent.get("token")),
            "generate": ["OPENCLAW_GATEWAY_TOKEN"],
        })
    return result


def fleet_gateway_probe(entry, home=None, store=None):
    """gateway_ready entry of one planned agent; with the service user's
    home, also its openclaw.json, whose last good copy (in store/NAME)
    readiness moves."""
    probe = {"name": entry["name"], "port": entry["port"], "unit": fleet_plan.unit_name(entry["name"])}
    if home:
        probe["config"] = "%s/.openclaw-%s/openclaw.json" % (home, entry["name"])
    if store:
        probe["store"] = "%s/%s" % (store, entry["name"])
    return probe


def fleet_workspaces(agents, home):
    """constitution_files entries of every present agent: workspace and
    bootstrap limits as the inventory plans them (agents.defaults of its
    config), never as the agent may have rewritten them on the host."""
    result = []
    for agent in agents:
        if agent.get("state", "present") != "present":
            continue
        state_dir = "%s/.openclaw-%s" % (home, agent["name"])
        defaults = ((agent.get("config") or {}).get("agents") or {}).get("defaults") or {}
        entry = {"name": agent["name"], "role": agent.get("role", "specialist"),
                 "workspace": defaults.get("workspace") or state_dir + "/workspace"}
        for key, limit in (("max_chars", "bootstrapMaxChars"), ("total_max_chars", "bootstrapTotalMaxChars")):
            if defaults.get(limit):
                entry[key] = defaults[limit]
        result.append(entry)
    return result


def fleet_audit_agents(plan, agents, home, store=None):
    """The oversight audit's view of every present planned agent: its unit,
    port, state dir, openclaw.json, workspace and config store."""
    workspaces = {w["name"]: w for w in fleet_workspaces(agents, home)}
    result = []
    for entry in plan:
        if entry.get("state", "present") != "present" or entry["name"] not in workspaces:
            continue
        state_dir = "%s/.openclaw-%s" % (home, entry["name"])
        result.append(dict(workspaces[entry["name"]], port=entry["port"], unit=fleet_plan.unit_name(entry["name"]),
                           state_dir=state_dir, config=state_dir + "/openclaw.json",
                           store_dir="%s/%s" % (store, entry["name"]) if store else None))
    return result


def fleet_memory_high(memory_max):
    """MemoryHigh= of a gateway unit for its MemoryMax= (90 %, in MiB)."""
    return fleet_plan.memory_high(memory_max)


class FilterModule:
    """agentfleet.vps fleet plan filters."""

    def filters(self):
        return {
            "fleet_port_plan": _wrap(fleet_port_plan),
            "fleet_memory_high": _wrap(fleet_memory_high),
            "fleet_audit_agents": _wrap(fleet_audit_agents),
            "fleet_env_files": _wrap(fleet_env_files),
            "fleet_gateway_probe": _wrap(fleet_gateway_probe),
            "fleet_unit": _wrap(fleet_plan.unit_name),
            "fleet_log_dir": _wrap(fleet_plan.log_dir),
            "fleet_openclaw_config": _wrap(fleet_plan.openclaw_config),
            "fleet_workspaces": _wrap(fleet_workspaces),
            "fleet_upgrade_plan": _wrap(fleet_plan.upgrade_plan),
            "fleet_running_versions": _wrap(fleet_plan.running_versions),
        }
