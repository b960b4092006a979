#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_facts
short_description: Read in one call what the fleet's roles need to know about the host
version_added: 0.3.0
description:
  - Reads the users, their lingering and user managers, the listening TCP ports, the agents'
    gateway units, paths, Debian packages and system units a role decides on, in a single module
    call. Each of these was a task of its own, and every task costs a round trip to the host;
    a re-run that finds everything in place now skips the tasks that would change it.
  - Changes nothing on the host.
  - Reads files under the agents' homes as root without following any link, and at most 64 KiB
    of a unit file. A unit that is a link, a hard link or not a regular file (a FIFO) is listed by
    name but never read; at most 64 gateway unit names per agent user are listed, each a valid
    agent name.
author:
  - agentfleet.vps developers (@agentfleet)
options:
  users:
    description: Users whose uid, home, lingering and user manager state to report in RV(users).
    type: list
    elements: str
    default: []
  listeners:
    description: Report the listening TCP sockets (C(ss -Htlne)) in RV(listeners).
    type: bool
    default: false
  agent_user_prefix:
    description:
      - With a prefix such as C(openclaw-), every user named C(openclaw-NAME) is an agent's
        user. Its gateway units are listed in RV(gateway_units), and the C(ExecStart=) line of
        the unit of its own agent (C(openclaw-gateway-NAME.service)) goes into RV(exec_start).
      - A unit one agent wrote for another agent's name is listed, never read.
    type: str
  gateway_states:
    description:
      - With O(agent_user_prefix), ask each agent user's manager for the state of its own gateway
        unit, in RV(gateway_states); a manager that is not running gives none. The agents role
        skips its unit task when every gateway is enabled and running.
    type: bool
    default: false
  gateway_probe:
    description:
      - With O(gateway_states), ask each agent's gateway that is active whether it is ready (C(/readyz) on the
        port of its own unit's C(ExecStart=)), all at once, in RV(gateway_ready). The agents role skips its wait for
        readiness when every gateway was ready and nothing of theirs changed since.
    type: bool
    default: false
  auth_profiles:
    description:
      - With O(agent_user_prefix), report what each agent's auth profile store holds, in RV(auth_profiles) - per
        profile only its C(type), C(provider) and C(keyRef) (the name of an environment variable, never a key).
        The agents role skips writing the profiles when every one it wants is there.
    type: bool
    default: false
  paths:
    description:
      - Root's own paths (not in an agent's home) whose existence and link target to report in RV(paths).
        The path itself is not followed when it is a link; links among its parents are.
    type: list
    elements: path
    default: []
  checksum_key:
    description:
      - A secret for this read only. With it, the C(sha256) of each path in RV(paths) is the
        HMAC-SHA256 of the file under this key, so reading a file of secrets (which a role
        compares with what it would write) puts nothing about its content in the output.
    type: str
  packages:
    description: Debian packages to look up; those not installed are in RV(packages_missing).
    type: list
    elements: str
    default: []
  services:
    description: System units (full names, such as C(cron.service)) whose enablement and state to report in RV(services).
    type: list
    elements: str
    default: []
notes:
  - Also sets the fact C(getent_passwd), in the form M(ansible.builtin.getent) gives it.
  - Reports the distribution and the init system too (RV(system)), so a play needs no fact
    gathering.
"""

EXAMPLES = r"""
- name: Read the host
  agentfleet.vps.host_facts:
    users: [openclaw-coder, openclaw-lead]
    listeners: true
    agent_user_prefix: openclaw-
    paths: [/opt/agentfleet/node/current]
    packages: [cron, iproute2]
    services: [cron.service]
  register: __host

- name: Install cron only where it is missing
  ansible.builtin.apt:
    name: "{{ __host.packages_missing }}"
  when: __host.packages_missing | length > 0
"""

RETURN = r"""
ansible_facts:
  description: C(getent_passwd), every user of the host as M(ansible.builtin.getent) reports it.
  returned: always
  type: dict
system:
  description:
    - C(distribution) and C(version) (C(ID) and C(VERSION_ID) of C(/etc/os-release)), C(os_family)
      (C(Debian) for Debian and the distributions whose C(ID_LIKE) names it) and C(service_mgr)
      (C(systemd) when systemd runs as init, else the name of process 1).
  returned: always
  type: dict
  sample: {"distribution": "Debian", "version": "13", "os_family": "Debian", "service_mgr": "systemd"}
users:
  description:
    - Per user of O(users) - C(exists), C(uid), C(home), C(lingering) and C(manager), the ActiveState of its
      C(user@UID.service) (C(missing) for a user that does not exist).
  returned: always
  type: dict
  sample: {"openclaw-coder": {"exists": true, "uid": 1001, "home": "/home/openclaw-coder", "lingering": true, "manager": "active"}}
listeners:
  description: Output of C(ss -Htlne); empty unless O(listeners).
  returned: always
  type: str
gateway_units:
  description: Paths of every C(openclaw-gateway-*.service) in the unit directory of every agent user.
  returned: always
  type: list
  elements: str
exec_start:
  description: C(PATH:ExecStart=...) lines of each agent's own gateway unit, the form of C(grep -H ^ExecStart=).
  returned: always
  type: list
  elements: str
paths:
  description:
    - Per path of O(paths) - C(exists); C(link), the target of a symlink (else null); C(type) (C(file),
      C(directory), C(link), C(other), null when missing); C(mode) (octal string), C(uid), C(gid), C(nlink); and
      C(sha256) of a regular file up to 1 MiB (else null; keyed by O(checksum_key) when given), so a role
      can skip writing what is in place.
  returned: always
  type: dict
  sample: {"/opt/agentfleet/bin/openclaw": {"exists": true, "link": null, "type": "file", "mode": "0755", "uid": 0,
           "gid": 0, "nlink": 1, "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}}
gateway_states:
  description:
    - With O(gateway_states), per agent's own gateway unit whose user manager answered, its
      C(Id), C(LoadState), C(ActiveState), C(SubState), C(UnitFileState), C(MainPID) and C(NRestarts) as
      M(agentfleet.vps.user_units) reports them. Each manager (the agent's own) answers only for its own unit,
      within 30 seconds.
  returned: always
  type: dict
  sample: {"openclaw-gateway-coder.service": {"ActiveState": "active", "UnitFileState": "enabled"}}
gateway_ready:
  description:
    - With O(gateway_probe), per agent's own gateway unit that is active - C(port), the port of its C(ExecStart=)
      (null when it names none), and C(ready), whether C(/readyz) answered ready within 5 seconds (the whole
      exchange; a redirect is not followed).
  returned: always
  type: dict
  sample: {"openclaw-gateway-coder.service": {"port": 19000, "ready": true}}
auth_profiles:
  description:
    - With O(auth_profiles), per agent (its name) - its store's profiles, each reduced to C(type), C(provider)
      and C(keyRef) (C(source), C(provider), C(id), an environment variable name). A profile whose id or fields
      do not look like names is left out; a store that cannot be read, is not a plain table or holds more than 64
      profiles gives none.
  returned: always
  type: dict
  sample: {"coder": {"anthropic:key-1": {"type": "api_key", "provider": "anthropic",
                                         "keyRef": {"source": "env", "provider": "default", "id": "ANTHROPIC_API_KEY"}}}}
packages_missing:
  description: Packages of O(packages) that are not installed.
  returned: always
  type: list
  elements: str
packages_installed:
  description: Packages of O(packages) that are installed (with RV(packages_missing), every package asked about).
  returned: always
  type: list
  elements: str
services:
  description:
    - Per unit of O(services) (full names, C(cron.service)) - C(enabled), its UnitFileState (empty for a unit
      systemd does not know), and C(active), its ActiveState.
  returned: always
  type: dict
  sample: {"cron.service": {"enabled": "enabled", "active": "active"}}
"""

import os
import pwd
import re
import stat
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.agentfleet.vps.plugins.module_utils import auth_store, config_txn, fileops, files, fleet_plan, systemd_user

LINGER_DIR = "/var/lib/systemd/linger"
UNIT_READ_LIMIT = 64 * 1024
# Root's own small files (commands, configs) are compared by checksum.
CHECKSUM_LIMIT = 1024 * 1024
# An agent can fill its unit directory: what is reported of it is bounded,
# and only names a gateway unit can have are reported at all.
UNITS_PER_USER = 64
# Seconds an agent's user manager gets to answer for its gateway's state.
MANAGER_TIMEOUT = 30
# Seconds a gateway gets to answer /readyz.
PROBE_TIMEOUT = 5
PORT = re.compile(r"\s--port\s+([0-9]{1,5})(?:\s|$)")
# What is reported of an agent's own store is bounded: it can hold anything.
PROFILES_PER_AGENT = 64
PROFILE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")
WORD = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def os_release(path="/etc/os-release"):
    fields = {}
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                key, sep, value = line.strip().partition("=")
                if sep:
                    fields[key] = value.strip().strip('"')
    except OSError:
        pass
    return fields


def distribution(release):
    """(distribution, os_family) as Ansible's facts name them."""
    name = release.get("ID", "unknown").capitalize()
    ids = [release.get("ID", "")] + release.get("ID_LIKE", "").split()
    return name, "Debian" if {"debian", "ubuntu"} & set(ids) else name


def system():
    release = os_release()
    name, family = distribution(release)
    if os.path.isdir("/run/systemd/system"):
        manager = "systemd"
    else:
        try:
            with open("/proc/1/comm", encoding="utf-8") as handle:
                manager = handle.read().strip()
        except OSError:
            manager = "unknown"
    return {"distribution": name, "version": release.get("VERSION_ID", ""), "os_family": family, "service_mgr": manager}


def passwd():
    return {entry.pw_name: ["x", str(entry.pw_uid), str(entry.pw_gid), entry.pw_gecos, entry.pw_dir, entry.pw_shell]
            for entry in pwd.getpwall()}


def unit_states(module, units):
    """Id -> {ActiveState, UnitFileState} of system units, one `systemctl
    show` for all (a unit systemd does not know is inactive, with no file
    state)."""
    try:
        return systemd_user.show(lambda *args: module.run_command(["systemctl"] + list(args)), list(units),
                                 ("Id", "ActiveState", "UnitFileState"))
    except RuntimeError as exc:
        module.fail_json(msg=str(exc))


def users(names, db, managers, states):
    """managers: user -> its user@UID.service, for the users that exist."""
    if not names:
        return {}
    lingering = set(fileops.listdir(LINGER_DIR))
    report = {}
    for name in names:
        entry = db.get(name)
        manager = states.get(managers[name], {}) if entry else {}
        report[name] = {
            "exists": entry is not None,
            "uid": int(entry[1]) if entry else None,
            "home": entry[4] if entry else None,
            "lingering": name in lingering,
            "manager": manager.get("ActiveState", "missing"),
        }
    return report


def exec_start_line(path):
    try:
        data = fileops.read_bytes(path, UNIT_READ_LIMIT)
    except OSError:
        return None  # a link or hard link where the unit goes: not a unit we wrote
    for line in (data or b"").decode("utf-8", "replace").splitlines():
        if line.startswith("ExecStart="):
            return "%s:%s" % (path, line)
    return None


def agent_users(prefix, db):
    """Every user named prefix + something: an agent's user."""
    return sorted(name for name in db if name.startswith(prefix) and len(name) > len(prefix))


def gateway_units(prefix, db):
    """(unit paths, ExecStart lines, own unit -> its user)."""
    found, lines, owners = [], [], {}
    for user in agent_users(prefix, db):
        unit_dir = fleet_plan.unit_dir(db[user][4])
        try:
            names = fileops.listdir(unit_dir)
        except OSError:
            continue  # a link where the unit directory goes
        own = fleet_plan.unit_name(user[len(prefix):])
        units = sorted(name for name in names if name.startswith(fleet_plan.UNIT_PREFIX) and name.endswith(".service")
                       and fleet_plan.PROFILE_NAME.fullmatch(name[len(fleet_plan.UNIT_PREFIX):-len(".service")]))
        if own in units:  # however many others there are
            units = [own] + [name for name in units if name != own]
            owners[own] = user
        for name in units[:UNITS_PER_USER]:
            found.append(os.path.join(unit_dir, name))
            line = exec_start_line(found[-1]) if name == own else None
            if line:
                lines.append(line)
    return found, lines, owners


def unit_port(line):
    """The --port of an ExecStart line, or None."""
    match = PORT.search(line or "")
    return int(match.group(1)) if match and 0 < int(match.group(1)) < 65536 else None


def probes(lines, owners, states):
    """unit -> {port, ready} of each own gateway unit that is active, probed
    together."""
    ports = {}
    for line in lines:
        path, dummy, command = line.partition(":ExecStart=")
        unit = os.path.basename(path)
        if unit in owners and states.get(unit, {}).get("ActiveState") == "active":
            ports[unit] = unit_port(command)
    units = sorted(ports)

    def ready(unit):
        return ports[unit] is not None and config_txn.readyz(ports[unit], PROBE_TIMEOUT)[0]
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(units)))) as pool:
        return {unit: {"port": ports[unit], "ready": answer} for unit, answer in zip(units, pool.map(ready, units))}


def public_profile(pid, entry):
    """What of a stored profile may be shown, or None: names that look like
    names (never a key or token, never text of the agent's choosing)."""
    ref = entry.get("keyRef") if isinstance(entry.get("keyRef"), dict) else {}
    shown = {"type": entry.get("type"), "provider": entry.get("provider"),
             "keyRef": {"source": ref.get("source"), "provider": ref.get("provider"), "id": ref.get("id")} if ref else None}
    names = [shown["type"], shown["provider"]] + ([ref.get("source"), ref.get("provider")] if ref else [])
    if not PROFILE_ID.fullmatch(pid) or not all(isinstance(n, str) and WORD.fullmatch(n) for n in names) \
            or (ref and not (isinstance(ref.get("id"), str) and fleet_plan.ENV_NAME.fullmatch(ref["id"]))):
        return None
    return shown


def auth_profiles(prefix, db):
    """agent name -> its store's profiles, public parts only; none at all
    for a store with more than PROFILES_PER_AGENT (which then counts as not
    holding what the role wants: one idempotent write)."""
    report = {}
    for user in agent_users(prefix, db):
        name, base = user[len(prefix):], prefix[:-1]
        if not fleet_plan.PROFILE_NAME.fullmatch(name) or fleet_plan.service_user(base, name) != user:
            continue
        stored = auth_store.stored(fleet_plan.state_dir(base, name))
        shown = {pid: public_profile(pid, entry) for pid, entry in stored.items()} if len(stored) <= PROFILES_PER_AGENT else {}
        report[name] = {pid: entry for pid, entry in sorted(shown.items()) if entry}
    return report


def checksum(path, key=None):
    """sha256 of a regular file (HMAC-SHA256 under key), or None: the last
    component is not followed, and what is no longer a regular file (a
    FIFO swapped in) is not read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        digest, left = files.hasher(key), CHECKSUM_LIMIT + 1
        while left > 0:
            chunk = os.read(fd, min(left, 65536))
            if not chunk:
                return digest.hexdigest()
            digest.update(chunk)
            left -= len(chunk)
        return None  # grew past the limit
    finally:
        os.close(fd)


def path_state(path, key=None):
    """Root's own paths (the install prefix, root's crontabs): a link among
    the parents, such as /opt on another disk, is followed."""
    try:
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return {"exists": False, "link": None, "type": None, "mode": None, "uid": None, "gid": None, "nlink": None,
                "sha256": None}
    kind = "link" if stat.S_ISLNK(info.st_mode) else "directory" if stat.S_ISDIR(info.st_mode) else \
        "file" if stat.S_ISREG(info.st_mode) else "other"
    digest = checksum(path, key) if kind == "file" and info.st_size <= CHECKSUM_LIMIT else None
    return {"exists": True, "link": os.readlink(path) if kind == "link" else None, "type": kind,
            "mode": "%04o" % stat.S_IMODE(info.st_mode), "uid": info.st_uid, "gid": info.st_gid, "nlink": info.st_nlink,
            "sha256": digest}


def packages_missing(module, names):
    if not names or not module.get_bin_path("dpkg-query"):
        return list(names)
    dummy, out, dummy = module.run_command(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\\n"] + list(names))
    installed = {line.split()[0].split(":")[0] for line in out.splitlines() if line.split()[1:2] == ["ii"]}
    return [name for name in names if name not in installed]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            users=dict(type="list", elements="str", default=[]),
            listeners=dict(type="bool", default=False),
            agent_user_prefix=dict(type="str"),
            gateway_states=dict(type="bool", default=False),
            gateway_probe=dict(type="bool", default=False),
            auth_profiles=dict(type="bool", default=False),
            paths=dict(type="list", elements="path", default=[]),
            packages=dict(type="list", elements="str", default=[]),
            services=dict(type="list", elements="str", default=[]),
            checksum_key=dict(type="str", no_log=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    db = passwd()
    units, lines, owners = gateway_units(params["agent_user_prefix"], db) if params["agent_user_prefix"] else ([], [], {})
    facts = system()
    gateways = {}
    if params["gateway_states"] and owners and facts["service_mgr"] == "systemd":
        # The agent owns its manager's bus: a manager that never answers
        # costs MANAGER_TIMEOUT, not the whole run.
        def bounded(argv, environ_update=None):
            return systemd_user.run_command(argv, environ_update, MANAGER_TIMEOUT)
        gateways = systemd_user.Managers(bounded, owners).show(sorted(owners), skip_failed=True)
    ready = probes(lines, owners, gateways) if params["gateway_probe"] else {}
    # Listeners after the probes: a process of another user that answered
    # on a gateway's port is still there for the plan's clash check to see.
    listeners = ""
    if params["listeners"]:
        rc, listeners, err = module.run_command(["ss", "-Htlne"])
        if rc != 0:
            module.fail_json(msg="ss -Htlne exited %d: %s" % (rc, err.strip()))
    managers = {name: "user@%s.service" % db[name][1] for name in params["users"] if name in db}
    # Without systemd as init there is no unit to ask about (the runtime
    # preflight refuses such a host by this very answer).
    states = unit_states(module, params["services"] + list(managers.values())) if facts["service_mgr"] == "systemd" else {}
    missing = packages_missing(module, params["packages"])
    module.exit_json(
        changed=False,
        ansible_facts={"getent_passwd": db},
        system=facts,
        users=users(params["users"], db, managers, states),
        listeners=listeners,
        gateway_units=units,
        exec_start=lines,
        gateway_states=gateways,
        gateway_ready=ready,
        auth_profiles=auth_profiles(params["agent_user_prefix"], db) if params["auth_profiles"] and params["agent_user_prefix"] else {},
        paths={path: path_state(path, params["checksum_key"]) for path in params["paths"]},
        packages_missing=missing,
        packages_installed=[name for name in params["packages"] if name not in missing],
        services={unit: {"enabled": states.get(unit, {}).get("UnitFileState", ""),
                         "active": states.get(unit, {}).get("ActiveState", "inactive")} for unit in params["services"]},
    )


if __name__ == "__main__":
    main()
