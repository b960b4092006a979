# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Each agent's own chat channels (fleet_agents[].channels): the part of
openclaw.json they become, and the tokens of its 0600 env file.

A token is only ever in the env file: openclaw.json names it with an env
SecretRef, under a variable of our own (CHANNEL_*), not the one OpenClaw
would pick up by itself (TELEGRAM_BOT_TOKEN, DISCORD_BOT_TOKEN, ...), so
nothing but the reference enables a channel. One bot token on two agents
would have two gateways answer (and steal updates from) one bot: the
plan refuses it, naming the agents and the channel, never the token.

Standard library only.
"""

from __future__ import annotations

import hashlib

# channel -> its token fields (our name -> OpenClaw's key) and what the
# exported schema requires besides the policies.
KINDS = {
    "telegram": {"tokens": {"bot_token": "botToken"}, "fixed": {}},
    "discord": {"tokens": {"token": "token"}, "fixed": {}},
    "slack": {"tokens": {"bot_token": "botToken", "app_token": "appToken"},
              "fixed": {"mode": "socket", "postAs": "bot", "webhookPath": "/slack/events", "userTokenReadOnly": True}},
}
DM_POLICIES = ("pairing", "allowlist", "open", "disabled")
GROUP_POLICIES = ("allowlist", "open", "disabled")
OPTIONS = ("dm_policy", "group_policy", "allow_from", "config")
# Keys of a channel's OpenClaw config that hold a secret: never as text in
# an inventory's raw config.
SECRET_KEYS = ("botToken", "token", "appToken", "userToken", "signingSecret", "webhookSecret", "tokenFile")


class ChannelError(ValueError):
    pass


def env_name(kind, field):
    return "CHANNEL_%s_%s" % (kind.upper(), field.upper())


def secret_ref(kind, field):
    return {"source": "env", "provider": "default", "id": env_name(kind, field)}


def _check_one(agent, kind, spec):
    where = "fleet_agents[%s].channels.%s" % (agent, kind)
    if not isinstance(spec, dict):
        raise ChannelError("%s must be a mapping of %s and %s" % (where, ", ".join(KINDS[kind]["tokens"]),
                                                                  ", ".join(OPTIONS)))
    unknown = sorted(set(spec) - set(KINDS[kind]["tokens"]) - set(OPTIONS))
    if unknown:
        raise ChannelError("%s: unknown key(s) %s; allowed: %s" % (
            where, ", ".join(unknown), ", ".join(list(KINDS[kind]["tokens"]) + list(OPTIONS))))
    for field in KINDS[kind]["tokens"]:
        if not isinstance(spec.get(field), str) or not spec[field].strip():
            raise ChannelError("%s.%s is required (the bot's token, kept only in the agent's 0600 env file)"
                               % (where, field))
    for key, allowed in (("dm_policy", DM_POLICIES), ("group_policy", GROUP_POLICIES)):
        if key in spec and spec[key] not in allowed:
            raise ChannelError("%s.%s=%r is not allowed: use one of %s" % (where, key, spec[key], ", ".join(allowed)))
    if not isinstance(spec.get("allow_from", []), list):
        raise ChannelError("%s.allow_from must be a list of sender ids" % where)
    extra = spec.get("config", {})
    if not isinstance(extra, dict):
        raise ChannelError("%s.config must be a mapping of OpenClaw's channels.%s settings" % (where, kind))
    named = secret_keys_in(extra)
    if named:
        raise ChannelError("%s.config must not hold %s: give the token as %s.%s, which keeps it out of "
                           "openclaw.json" % (where, ", ".join(named), where, next(iter(KINDS[kind]["tokens"]))))


def secret_keys_in(settings, depth=0):
    """Secret keys anywhere in a channel's settings (accounts.<id>.botToken
    too), by their dotted paths."""
    found = []
    if isinstance(settings, dict) and depth < 8:
        for key, value in settings.items():
            if key in SECRET_KEYS:
                found.append(str(key))
            found += ["%s.%s" % (key, inner) for inner in secret_keys_in(value, depth + 1)]
    return sorted(found)


def fingerprint(token):
    return hashlib.sha256(token.strip().encode("utf-8")).hexdigest()


def check(agents):
    """Refuse unknown channels and keys, missing tokens, bad policies,
    tokens in raw config, and one token on two agents (or twice on one)."""
    owners = {}
    for agent in agents:
        name = agent.get("name")
        channels = agent.get("channels") or {}
        if not isinstance(channels, dict):
            raise ChannelError("fleet_agents[%s].channels must be a mapping of channel to settings; channels: %s"
                               % (name, ", ".join(KINDS)))
        for kind, spec in channels.items():
            if kind not in KINDS:
                raise ChannelError("fleet_agents[%s].channels.%s is not a channel this collection configures: use %s"
                                   % (name, kind, ", ".join(KINDS)))
            _check_one(name, kind, spec)
            for field in KINDS[kind]["tokens"]:
                where = "%s.%s.%s" % (name, kind, field)
                other = owners.setdefault(fingerprint(spec[field]), where)
                if other != where:
                    raise ChannelError(
                        "one token is given twice, as fleet_agents[%s].channels.%s.%s and fleet_agents[%s].channels."
                        "%s.%s: each agent needs a bot of its own (two gateways on one bot take each other's "
                        "messages)" % (tuple(other.split(".")) + (name, kind, field)))
        raw = ((agent.get("config") or {}).get("channels") or {})
        for kind, settings in raw.items() if isinstance(raw, dict) else ():
            named = secret_keys_in(settings)
            if named:
                raise ChannelError(
                    "fleet_agents[%s].config.channels.%s holds %s: openclaw.json would carry the secret in plain "
                    "text; give it as fleet_agents[%s].channels.%s instead" % (name, kind, ", ".join(named), name, kind))


def openclaw(channels):
    """channels of openclaw.json: policies, the agent's extra settings and
    a SecretRef for each token; no token."""
    result = {}
    for kind, spec in sorted((channels or {}).items()):
        settings = dict(KINDS[kind]["fixed"], enabled=True, dmPolicy=spec.get("dm_policy", "pairing"),
                        groupPolicy=spec.get("group_policy", "allowlist"))
        if spec.get("allow_from"):
            settings["allowFrom"] = [str(x) for x in spec["allow_from"]]
        settings.update(spec.get("config") or {})
        for field, key in KINDS[kind]["tokens"].items():
            settings[key] = secret_ref(kind, field)
        result[kind] = settings
    return result


def env(channels):
    """The env file's variables of the agent's channel tokens."""
    return {env_name(kind, field): spec[field].strip()
            for kind, spec in (channels or {}).items() for field in KINDS[kind]["tokens"]}
