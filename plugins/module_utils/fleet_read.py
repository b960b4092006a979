# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the one host read (host_facts) tells the agents role it can skip:
a re-run that finds everything in place spends no module call on it.
Controller side only (the fleet filters); the host programs never load it.
"""

from __future__ import annotations

from ansible_collections.agentfleet.vps.plugins.module_utils import auth_store, config_txn, files, fleet_plan


def _last_good_path(config, store_dir):
    return config_txn.ConfigStore(config, store_dir).last_good_path


def last_good_paths(agents, store, prefix):
    """The last good copy of every present agent's openclaw.json (root's
    store), for the host read that decides whether readiness needs a call."""
    return [_last_good_path(fleet_plan.config_path(fleet_plan.state_dir(prefix, agent["name"])),
                            fleet_plan.store_dir(store, agent["name"]))
            for agent in agents if agent.get("state", "present") == "present"]


def ready_in_place(plan, read, written, key=None):
    """Whether waiting for readiness would find nothing to do: the host read
    (host_facts with gateway_probe, and the last good copies in its paths,
    checksummed under key) found each planned agent's gateway ready on its
    planned port, and its last good copy equal to the openclaw.json the
    agents' files task wrote (written: its files)."""
    ready = read.get("gateway_ready") or {}
    configs = {entry["path"]: entry["content"] for entry in written}
    last_good = []
    for entry in plan:
        probe = ready.get(entry["unit"]) or {}
        config = configs.get(entry["config"])
        if probe.get("ready") is not True or probe.get("port") != entry["port"] or config is None:
            return False
        last_good.append({"path": _last_good_path(entry["config"], entry["store"]), "mode": "0600",
                          "content": config})
    return files.in_place(read.get("paths") or {}, files=last_good, key=key)


def auth_in_place(plan, stored):
    """Whether every planned agent's store held each auth profile it should
    when the host was read (host_facts' auth_profiles answer)."""
    return all(not auth_store.missing(auth_store.wanted(entry["auth_profiles"]), stored.get(entry["name"]) or {})
               for entry in plan if entry.get("auth_profiles"))
