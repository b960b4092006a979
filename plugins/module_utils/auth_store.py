# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SecretRef auth profiles of an agent's OpenClaw: what its store
holds, and the `openclaw secrets apply` plan that makes it hold ours.

OpenClaw keeps auth profiles in the agent's SQLite store
(agents/main/agent/openclaw-agent.sqlite, table auth_profile_store); the
config only names and orders them. Each profile we want is an api_key
profile whose keyRef points at an env variable of the agent's 0600 env
file, so no key is ever in a file OpenClaw writes. The store is the
agent's own and could be anything: it is read from a private copy
(fileops: no links), and whatever cannot be read counts as "not there",
which costs one idempotent apply, never a wrong answer.

Standard library only (and fileops.py).
"""

from __future__ import annotations

import json
import os

from ansible_collections.agentfleet.vps.plugins.module_utils import fileops

MAX_STORE = 64 * 1024 * 1024
MAX_ROWS = 16
MAX_ROW = 1024 * 1024
# SQLite VM steps (in thousands) a read of the store may take.
MAX_STEPS = 10000


def store_path(state_dir):
    return os.path.join(state_dir, "agents", "main", "agent", "openclaw-agent.sqlite")


def wanted(refs):
    """profile id -> the store entry we want, from the plan entry's
    auth_profiles (provider -> [(profile id, env variable)])."""
    return {pid: {"type": "api_key", "provider": provider,
                  "keyRef": {"source": "env", "provider": "default", "id": env}}
            for provider, pairs in (refs or {}).items() for pid, env in pairs}


def _rows(conn):
    """store_json of each row, if auth_profile_store is a plain table: the
    agent owns the database, and a view can compute forever. The query has
    a budget of VM steps all the same."""
    kind = conn.execute("SELECT type FROM sqlite_master WHERE name = 'auth_profile_store'").fetchone()
    if not kind or kind[0] != "table":
        return []
    steps = [0]

    def budget():
        steps[0] += 1
        return steps[0] > MAX_STEPS  # non-zero aborts the query
    conn.set_progress_handler(budget, 1000)
    return [raw for (raw,) in conn.execute("SELECT store_json FROM auth_profile_store").fetchmany(MAX_ROWS)
            if isinstance(raw, (str, bytes)) and len(raw) <= MAX_ROW]


def stored(state_dir, work_dir=None):
    """profile id -> entry of the agent's store; {} when there is none or it
    cannot be read. The store is the agent's: whatever is in it (a row that
    is not JSON, JSON nested beyond the parser's depth), this answers."""
    try:
        with fileops.sqlite_copy(store_path(state_dir), MAX_STORE, work_dir) as conn:
            rows = _rows(conn) if conn else []
        profiles = {}
        for raw in rows:
            document = json.loads(raw)
            if isinstance(document, dict) and isinstance(document.get("profiles"), dict):
                profiles.update(document["profiles"])
        return {k: v for k, v in profiles.items() if isinstance(k, str) and isinstance(v, dict)}
    except Exception:  # pylint: disable=broad-except
        return {}


def missing(want, have):
    """Profile ids whose stored entry is absent or differs in type,
    provider or keyRef."""
    return sorted(pid for pid, entry in want.items()
                  if {k: (have.get(pid) or {}).get(k) for k in entry} != entry)


def plan(want):
    """The `openclaw secrets apply` plan writing these profiles' keyRefs."""
    return {"version": 1, "protocolVersion": 1, "targets": [
        {"type": "auth-profiles.api_key.key", "path": "profiles.%s.key" % pid,
         "pathSegments": ["profiles", pid, "key"], "agentId": "main",
         "authProfileProvider": entry["provider"], "ref": entry["keyRef"]}
        for pid, entry in sorted(want.items())]}
