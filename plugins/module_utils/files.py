# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""File formats shared by the modules: env files and canonical JSON, and
whether root's files as host_facts read them are what agent_files would
write. Reading and writing files is fileops' job; read_env reads through it."""

from __future__ import annotations

import hashlib
import hmac
import json
import re

from ansible_collections.agentfleet.vps.plugins.module_utils import fileops

ENV_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def canonical_json(data):
    """The one byte form we write JSON in, so equal documents compare equal."""
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def parse_env(text):
    """KEY=value lines (systemd EnvironmentFile subset) -> dict."""
    values = {}
    for line in (text or "").splitlines():
        match = ENV_LINE.match(line.strip())
        if match:
            value = match.group(2)
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            values[match.group(1)] = value
    return values


def read_env(path, limit=65536):
    """parse_env of an env file that may sit in an agent's home (no link
    followed, at most limit bytes); {} when it is missing. A link in its
    place raises fileops.UnsafePath (an OSError)."""
    data = fileops.read_bytes(path, limit=limit)
    return parse_env((data or b"").decode("utf-8", "replace"))


def render_env(values):
    """dict -> EnvironmentFile text, keys sorted, values double-quoted."""
    lines = []
    for key in sorted(values):
        value = str(values[key]).replace("\\", "\\\\").replace('"', '\\"')
        if "\n" in value:
            raise ValueError("environment value of %s contains a newline" % key)
        lines.append('%s="%s"' % (key, value))
    return ("\n".join(lines) + "\n").encode("utf-8")


def hasher(key=None):
    """host_facts' checksum: sha256, or with a key (the run's secret, so a
    read of a secrets file reveals nothing) HMAC-SHA256."""
    return hashlib.sha256() if key is None else hmac.new(key.encode("utf-8"), digestmod=hashlib.sha256)


def digest(data, key=None):
    found = hasher(key)
    found.update(data)
    return found.hexdigest()


def in_place(states, directories=(), files=(), uid=0, gid=0, key=None, absent=()):
    """Whether the directories and files (agent_files entries: path, mode,
    content) are in place and the absent paths missing, by host_facts'
    `paths` answer (type, mode, uid, gid, links, sha256 under key), owned
    by uid:gid, each file its only link (agent_files rewrites any other).
    Anything not read counts as not in place."""
    def matches(entry, kind, mode):
        state = states.get(entry["path"]) or {}
        return (state.get("type") == kind and state.get("mode") == "%04o" % int(entry.get("mode", mode), 8)
                and state.get("uid") == uid and state.get("gid") == gid)
    return (all(matches(d, "directory", "0700") for d in directories)
            and all(matches(f, "file", "0644") and states[f["path"]].get("nlink") == 1 and states[f["path"]].get("sha256")
                    == digest(f["content"].encode("utf-8"), key) for f in files)
            and all((states.get(a["path"]) or {}).get("exists") is False for a in absent))


def last_json(text):
    """The JSON object an OpenClaw CLI run prints after any warnings
    ({} when there is none)."""
    start = (text or "").find("{")
    try:
        answer = json.loads(text[start:]) if start >= 0 else {}
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}
