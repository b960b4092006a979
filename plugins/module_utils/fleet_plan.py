# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet plan: which agent runs where, checked before the host changes.

Pure functions on plain data, standard library only: the filter plugins
call them on the controller, and the same file can be shipped to the VPS.
"""

from __future__ import annotations

import copy
import re

from ansible_collections.agentfleet.vps.plugins.module_utils import channels

PROFILE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
# OpenClaw's own rule for env var names in SecretRefs and substitutions.
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,127}$")
ROLES = ("coordinator", "specialist")
STATES = ("present", "absent")
# A gateway uses its base port, base+2 for browser control and a CDP range
# up to base+110 (OpenClaw docs, gateway/multiple-gateways.md).
PORT_SPAN = 110
PORT_MIN = 1024
PORT_MAX = 65535


UNIT_PREFIX = "openclaw-gateway-"
# The fleet role's fleet_user when an inventory sets none: agent NAME runs as DEFAULT_USER-NAME.
DEFAULT_USER = "openclaw"
# Each agent runs as its own Linux user (prefix-NAME) with its own home and
# user manager: the kernel lets one uid signal, trace and read whatever
# another process of that uid owns, so a shared uid is a shared agent.
HOME_BASE = "/home"
USER_NAME_MAX = 32  # useradd's limit on Debian


def service_user(prefix, agent_name):
    """The Linux user that runs one agent's gateway."""
    return "%s-%s" % (prefix, agent_name)


def home_dir(user):
    return "%s/%s" % (HOME_BASE, user)


def unit_dir(home):
    """Where a user's manager finds its units (~/.config/systemd/user)."""
    return "%s/.config/systemd/user" % home


def state_dir(prefix, agent_name):
    """OpenClaw's profile directory of an agent (~/.openclaw-NAME of its user)."""
    return "%s/.openclaw-%s" % (home_dir(service_user(prefix, agent_name)), agent_name)


def store_dir(store, agent_name):
    """An agent's root-only config store below fleet_config_store: backups
    of its openclaw.json, the last good copy, the lock and changes.jsonl.
    Never a relative or empty store: the modules would then keep them in
    the agent's own directory, where it could forge its drift baseline."""
    if not str(store).startswith("/"):
        raise PlanError("fleet_config_store=%r must be an absolute path (a root-only directory)" % (store,))
    return "%s/%s" % (store, agent_name)


def unit_name(agent_name):
    """The user unit that runs an agent's gateway."""
    return "%s%s.service" % (UNIT_PREFIX, agent_name)


def units_in_place(states, names, start=True):
    """Whether every agent's gateway unit was enabled (and running, when
    start) by host_facts' gateway_states answer; an agent not read counts
    as not in place."""
    def ready(state):
        return state.get("UnitFileState") == "enabled" and (not start or state.get("ActiveState") == "active")
    return all(ready(states.get(unit_name(name)) or {}) for name in names)


_SIZE = re.compile(r"^([0-9]+)([KMGT]?)$")
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def memory_high(memory_max, share=0.9):
    """systemd MemoryHigh= for a MemoryMax= (bytes with an optional K, M,
    G or T): share of it, in MiB, so a gateway is throttled and reclaimed
    before the kernel kills it; "infinity" (or anything unparsable, which
    the unit's own check will reject) stays as it is."""
    found = _SIZE.match(str(memory_max).strip().upper())
    if not found:
        return str(memory_max)
    return "%dM" % max(1, int(int(found.group(1)) * _UNITS[found.group(2)] * share) >> 20)


# Each gateway logs into its own directory (logging.file), so no agent's
# log can be taken for another's. OpenClaw rolls a file named like this
# daily and prunes old ones in the same directory.
LOG_SUBDIR = "logs"
LOG_FILE_TEMPLATE = "openclaw-YYYY-MM-DD.log"


def log_dir(state_dir):
    """The directory an agent's gateway writes its daily logs into."""
    return "%s/%s" % (state_dir, LOG_SUBDIR)


def config_path(state_dir):
    """An agent's openclaw.json."""
    return state_dir + "/openclaw.json"


def env_path(state_dir):
    """An agent's secrets env file (0600), which its unit loads."""
    return state_dir + "/gateway.env"


def workspace(agent, state_dir):
    """The workspace the inventory plans for an agent (agents.defaults of its
    config, else in its state directory), never what the agent may have
    rewritten on the host."""
    defaults = ((agent.get("config") or {}).get("agents") or {}).get("defaults") or {}
    return defaults.get("workspace") or state_dir + "/workspace"


def log_file_name(day):
    """OpenClaw's log file of one day (YYYY-MM-DD) in an agent's log_dir."""
    return LOG_FILE_TEMPLATE.replace("YYYY-MM-DD", day)


# The name of any day's log file; sorted names are in date order.
LOG_FILE_RE = re.compile(re.escape(log_file_name("DAY")).replace("DAY", r"\d{4}-\d{2}-\d{2}"))


class PlanError(ValueError):
    """The inventory describes a fleet that cannot be deployed."""


def deep_merge(base, override):
    """Return base with override merged in; dicts merge, anything else replaces."""
    result = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def provider_of(model):
    """'anthropic/claude-x' -> 'anthropic'; a model without provider is an error."""
    provider, sep, rest = (model or "").partition("/")
    if not sep or not provider or not rest:
        raise PlanError("model '%s' must be written as provider/model, e.g. anthropic/claude-sonnet-4-5" % model)
    return provider


def env_prefix(provider):
    """OpenClaw reads <PROVIDER>_API_KEY(S): upper case, '-' and '.' as '_'."""
    name = re.sub(r"[^A-Z0-9]", "_", provider.upper())
    if not ENV_NAME.match(name + "_API_KEY"):
        raise PlanError("provider '%s' cannot be mapped to an environment variable name" % provider)
    return name


def parse_listeners(ss_output):
    """Parse `ss -Htlne` into (port, uid) pairs; root sockets carry no uid."""
    listeners = set()
    for line in (ss_output or "").splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        local = fields[3]
        port = local.rsplit(":", 1)[-1]
        if not port.isdigit():
            continue
        match = re.search(r"\buid:(\d+)", line)
        listeners.add((int(port), int(match.group(1)) if match else 0))
    return sorted(listeners)


def _check_names(agents, prefix):
    seen = set()
    for index, agent in enumerate(agents):
        name = agent.get("name")
        if not isinstance(name, str) or not PROFILE_NAME.match(name):
            raise PlanError(
                "fleet_agents[%d].name=%r is not a valid OpenClaw profile name: use 1-32 characters, "
                "lower-case letters, digits and '-', starting with a letter" % (index, name))
        if len(service_user(prefix, name)) > USER_NAME_MAX:
            raise PlanError(
                "fleet_agents[%d].name=%r is too long: its service user '%s' (fleet_user '%s', '-', the name) "
                "must have at most %d characters" % (index, name, service_user(prefix, name), prefix, USER_NAME_MAX))
        if name in seen:
            raise PlanError("fleet_agents: the name '%s' is used by more than one agent; names must be unique" % name)
        seen.add(name)
        role = agent.get("role", "specialist")
        if role not in ROLES:
            raise PlanError("fleet_agents[%s].role=%r is not allowed: use one of %s" % (name, role, ", ".join(ROLES)))
        state = agent.get("state", "present")
        if state not in STATES:
            raise PlanError("fleet_agents[%s].state=%r is not allowed: use one of %s" % (name, state, ", ".join(STATES)))


def assign_ports(agents, base, stride):
    """Explicit ports win; the others get base + stride * (position in the list)."""
    ports = {}
    for index, agent in enumerate(agents):
        port = agent.get("port")
        ports[agent["name"]] = int(port) if port not in (None, "") else int(base) + int(stride) * index
    return ports


def check_ports(ports, listeners=(), uids=None):
    """Every agent's whole range must be free of every other agent and of
    listeners that belong to anything but that agent's own user (uids:
    agent name -> uid of its user, for the users that exist)."""
    uids = uids or {}
    ranges = []
    for name, port in ports.items():
        if port < PORT_MIN or port + PORT_SPAN > PORT_MAX:
            raise PlanError(
                "agent '%s': port %d is out of range; the gateway needs %d..%d, which must lie within %d..%d"
                % (name, port, port, port + PORT_SPAN, PORT_MIN, PORT_MAX))
        ranges.append((port, port + PORT_SPAN, name))
    ranges.sort()
    for (lo1, hi1, name1), (lo2, hi2, name2) in zip(ranges, ranges[1:]):
        if lo2 <= hi1:
            raise PlanError(
                "port clash: agent '%s' uses ports %d-%d and agent '%s' uses ports %d-%d; they overlap at %d-%d. "
                "Each gateway needs base..base+%d (OpenClaw derives browser and CDP ports from the base): "
                "keep base ports at least %d apart" % (name1, lo1, hi1, name2, lo2, hi2, lo2, min(hi1, hi2), PORT_SPAN, PORT_SPAN + 10))
    for port, uid in listeners:
        for lo, hi, name in ranges:
            if lo <= port <= hi and uids.get(name) != uid:
                raise PlanError(
                    "port clash: agent '%s' needs ports %d-%d but port %d is already in use on the host "
                    "by another program (uid %d); pick another port for '%s'" % (name, lo, hi, port, uid, name))


def credentials_for(agent, fleet_credentials):
    """Provider -> ordered key list: the agent's own keys override the fleet's."""
    creds = dict(fleet_credentials or {})
    creds.update(agent.get("credentials") or {})
    result = {}
    for provider, keys in creds.items():
        if isinstance(keys, str):
            keys = [keys]
        result[provider] = [k for k in (keys or []) if k]
    return result


def check_credentials(agent, credentials):
    model = agent.get("model") or {}
    chain = [model.get("primary")] + list(model.get("fallbacks") or [])
    for tier, name in [("primary", chain[0])] + [("fallback", m) for m in chain[1:]]:
        if not name:
            raise PlanError("agent '%s': model.primary is required" % agent["name"])
        provider = provider_of(name)
        if not credentials.get(provider):
            raise PlanError(
                "agent '%s': the %s model '%s' needs a key for provider '%s', but neither "
                "fleet_agents[%s].credentials nor fleet_credentials has one" % (agent["name"], tier, name, provider, agent["name"]))


def build_plan(agents, base=18800, stride=200, listeners=(), user_uids=None, fleet_credentials=None, prefix=DEFAULT_USER,
               store=None):
    """Validate the inventory and return one plain entry per agent (no
    secrets). user_uids: Linux user -> uid of the users that exist; a
    running gateway of an agent's own user may hold its ports. store:
    fleet_config_store, whose NAME/ is each entry's store (None without)."""
    agents = list(agents or [])
    _check_names(agents, prefix)
    present = [a for a in agents if a.get("state", "present") == "present"]
    ports = assign_ports(agents, base, stride)
    uids = {a["name"]: (user_uids or {}).get(service_user(prefix, a["name"])) for a in present}
    check_ports({a["name"]: ports[a["name"]] for a in present}, listeners, uids)
    try:
        channels.check(present)
    except channels.ChannelError as exc:
        raise PlanError(str(exc)) from None
    plan = []
    for agent in agents:
        user = service_user(prefix, agent["name"])
        profile_dir = state_dir(prefix, agent["name"])
        entry = {
            "name": agent["name"],
            "user": user,
            "home": home_dir(user),
            "state_dir": profile_dir,
            "config": config_path(profile_dir),
            "env_file": env_path(profile_dir),
            "workspace": workspace(agent, profile_dir),
            "log_dir": log_dir(profile_dir),
            # Node's compiled OpenClaw, kept between starts (module_utils/compile_cache).
            "compile_cache": profile_dir + "/compile-cache",
            "unit": unit_name(agent["name"]),
            "store": store_dir(store, agent["name"]) if store is not None else None,
            "unit_file": "%s/%s" % (unit_dir(home_dir(user)), unit_name(agent["name"])),
            "role": agent.get("role", "specialist"),
            "state": agent.get("state", "present"),
            "purge": bool(agent.get("purge", False)),
            "port": ports[agent["name"]],
            "port_range": [ports[agent["name"]], ports[agent["name"]] + PORT_SPAN],
        }
        if entry["state"] == "present":
            credentials = credentials_for(agent, fleet_credentials)
            check_credentials(agent, credentials)
            model = agent["model"]
            entry["model"] = {"primary": model["primary"], "fallbacks": list(model.get("fallbacks") or [])}
            entry["providers"] = sorted(set(provider_of(m) for m in [model["primary"]] + entry["model"]["fallbacks"]))
            entry["auth_profiles"] = auth_profiles(entry["providers"], credentials)
            # What openclaw.json says of them: references, no token.
            entry["channels"] = channels.openclaw(agent.get("channels"))
        plan.append(entry)
    return plan


def key_env(provider, index):
    """The env variable of a provider's index-th key (0-based):
    ANTHROPIC_API_KEY, ANTHROPIC_API_KEY_2, ..."""
    return env_prefix(provider) + "_API_KEY" + ("_%d" % (index + 1) if index else "")


def auth_profiles(providers, credentials):
    """provider -> [(profile id, env variable)] for each provider with more
    than one key. OpenClaw rotates a rate-limited model to the next
    same-provider auth profile (auth.order) before it falls back to the
    next model; its env-only key lists never reach that rotation. The
    profiles hold SecretRefs to the env file, never the keys."""
    return {provider: [("%s:key-%d" % (provider, i + 1), key_env(provider, i)) for i in range(len(credentials[provider]))]
            for provider in providers if len(credentials.get(provider) or []) > 1}


def gateway_env(agent, credentials, token=None, channel_specs=None):
    """The secrets env file of one agent as a dict. Only providers the
    model chain uses are written: a key the agent cannot use is a key it
    cannot leak. The first key is the primary tier, the next the secondary
    tier (auth_profiles). channel_specs: the inventory's channels of the
    agent, whose tokens only this file holds."""
    env = {}
    if token:
        env["OPENCLAW_GATEWAY_TOKEN"] = token
    for provider in agent["providers"]:
        for index, key in enumerate(credentials[provider]):
            env[key_env(provider, index)] = key
    env.update(channels.env(channel_specs))
    return env


def openclaw_config(agent, workspace, version, extra=None, logs=None):
    """The agent's openclaw.json as a dict. The token is a SecretRef to the
    env file, so the config itself holds no secret. With logs (the agent's
    log_dir), logging.file is ours whatever extra says: the audit and the
    watchdog read the log there."""
    base = {
        # OpenClaw swaps a hand-written config without meta for its .bak.
        "meta": {"lastTouchedVersion": version},
        "gateway": {
            "mode": "local",
            "bind": "loopback",
            "port": agent["port"],
            "auth": {
                "mode": "token",
                "token": {"source": "env", "provider": "default", "id": "OPENCLAW_GATEWAY_TOKEN"},
            },
        },
        "agents": {
            "defaults": {
                "workspace": workspace,
                "model": {"primary": agent["model"]["primary"], "fallbacks": agent["model"]["fallbacks"]},
            },
        },
    }
    if agent.get("channels"):
        base["channels"] = copy.deepcopy(agent["channels"])
    profiles = agent.get("auth_profiles") or {}
    if profiles:
        base["auth"] = {
            "profiles": {pid: {"provider": provider, "mode": "api_key"}
                         for provider, refs in profiles.items() for pid, dummy in refs},
            "order": {provider: [pid for pid, dummy in refs] for provider, refs in profiles.items()},
        }
    config = deep_merge(base, extra)
    if logs:
        config = deep_merge(config, {"logging": {"file": "%s/%s" % (logs, LOG_FILE_TEMPLATE)}})
    return config


# ExecStart of a gateway unit names the Node.js and OpenClaw it runs:
#   <prefix>/node/<version>/bin/node <prefix>/openclaw/<version>/lib/...
EXEC_VERSIONS = re.compile(r"/node/(?P<node>[^/\s]+)/bin/node\s+\S*/openclaw/(?P<openclaw>[^/\s]+)/lib/")


def version_key(version):
    """Orders OpenClaw (2026.9.6, 2026.9.1-beta.1) and Node versions; a
    pre-release sorts before its release."""
    release, dummy, pre = str(version).partition("-")
    numbers = tuple(int(part) if part.isdigit() else 0 for part in release.split("."))
    return numbers, (0, pre) if pre else (1, "")


def running_versions(exec_lines):
    """{agent: {"openclaw": v, "node": v}} from `grep -H ^ExecStart=` lines
    of the gateway unit files."""
    running = {}
    for line in exec_lines:
        path, sep, command = line.partition(":ExecStart=")
        name = path.rsplit("/", 1)[-1]
        match = EXEC_VERSIONS.search(command)
        if sep and match and name.startswith(UNIT_PREFIX) and name.endswith(".service"):
            running[name[len(UNIT_PREFIX):-len(".service")]] = {"openclaw": match["openclaw"], "node": match["node"]}
    return running


def upgrade_plan(plan, exec_lines, openclaw, node):
    """What upgrade.yml moves: the present agents not yet on the target
    versions, specialists first and coordinators last, all from one pair of
    versions (the one every moved agent goes back to on failure)."""
    running = running_versions(exec_lines)
    present = [agent for agent in plan if agent.get("state", "present") == "present"]
    missing = [agent["name"] for agent in present if agent["name"] not in running]
    if missing:
        raise PlanError("not deployed yet (no gateway unit): %s; deploy with playbooks/site.yml first"
                        % ", ".join(missing))
    target = {"openclaw": str(openclaw), "node": str(node)}
    todo = [agent for agent in present if running[agent["name"]] != target]
    sources = sorted({(running[a["name"]]["openclaw"], running[a["name"]]["node"]) for a in todo})
    if len(sources) > 1:
        who = ", ".join("%s: OpenClaw %s, Node %s" % (a["name"], running[a["name"]]["openclaw"], running[a["name"]]["node"])
                        for a in todo)
        raise PlanError("the agents to move run different versions (%s); upgrade.yml moves a fleet from one "
                        "OpenClaw/Node pair: move them to one first (-e fleet_openclaw_version=... "
                        "-e fleet_node_version=...)" % who)
    ordered = ([a for a in todo if a.get("role") != "coordinator"]
               + [a for a in todo if a.get("role") == "coordinator"])
    source = {"openclaw": sources[0][0], "node": sources[0][1]} if sources else None
    return {
        "agents": [a["name"] for a in ordered],
        "already": [a["name"] for a in present if a not in todo],
        "from": source,
        "to": target,
        "downgrade": bool(source) and version_key(target["openclaw"]) < version_key(source["openclaw"]),
    }
