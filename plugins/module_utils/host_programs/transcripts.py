# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An agent's session transcripts, read for the audit: the reviewer's
excerpts and the checklist rules both start here.

OpenClaw keeps them in SQLite (agents/main/agent/openclaw-agent.sqlite,
table transcript_events): one row per event, as JSON in event_json or,
for larger rows, zstd-compressed in event_zstd. The store is the agent's
and stands where the agent can write, so it is read through fileops (no
links), bounded, from a private copy, and every value is data.

Standard library only (and fileops.py, zstd.py).
"""

from __future__ import annotations

import json
import math
import os

from ansible_collections.agentfleet.vps.plugins.module_utils import fileops
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import zstd

# A private copy of each session store is read, at most this big.
MAX_STORE = 256 * 1024 * 1024
# One decompressed event, at most.
MAX_EVENT = 4 * 1024 * 1024
# Text kept of one message or tool result, and of a name (session, tool,
# model): the agent can write anything into its own store.
MAX_TEXT = 4000
MAX_NAME = 80


def store_path(state_dir):
    return os.path.join(state_dir, "agents", "main", "agent", "openclaw-agent.sqlite")


def _columns(conn):
    return {row[1] for row in conn.execute("PRAGMA table_info(transcript_events)")}


def read_rows(state_dir, since_ms, work_dir=None):
    """([(session, created_at ms, event dict)] of the events since since_ms,
    oldest first; session -> created_at of its first event, for the
    sessions in the store). The store is in WAL mode: the database and its WAL are
    copied into work_dir and read there, so a read-only view of the home
    directory is enough (the audit's sandbox has no writable /tmp)."""
    with fileops.sqlite_copy(store_path(state_dir), MAX_STORE, work_dir) as conn:
        if conn is None:
            return [], {}
        columns = _columns(conn)
        session = next((c for c in ("session_id", "session_key", "transcript_id") if c in columns), "NULL")
        packed = "event_zstd" if "event_zstd" in columns else "NULL"
        rows = conn.execute("SELECT %s, created_at, event_json, %s FROM transcript_events WHERE created_at >= ? "
                            "ORDER BY created_at, rowid" % (session, packed), (int(since_ms),)).fetchall()
        starts = dict(conn.execute("SELECT %s, MIN(created_at) FROM transcript_events GROUP BY %s" % (
            session, session)).fetchall()) if session != "NULL" else {}
    result = []
    for session_id, created, raw, compressed in rows:
        try:
            if raw is None and compressed is not None:
                raw = zstd.decompress(compressed, MAX_EVENT)
            event = json.loads(raw) if raw is not None else None
        except ValueError as exc:
            event = {"type": "unreadable", "error": str(exc)[:200]}
        if isinstance(event, dict):
            result.append((str(session_id), _ms(created), event))
    return result, {str(k): _ms(v) for k, v in starts.items()}


# What OpenClaw records on each assistant message (message.usage), and
# its cost.total; the agent can write anything into its own store, so each
# value is a bounded number or 0.
USAGE_FIELDS = ("input", "output", "cacheRead", "cacheWrite", "totalTokens")
MAX_TOKENS = 10 ** 12
MAX_COST = 10.0 ** 9


def _count(value, limit=MAX_TOKENS, kind=int):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return kind(0)
    return kind(min(max(value, 0), limit))


def no_usage():
    return dict(dict.fromkeys(USAGE_FIELDS, 0), cost=0.0, messages=0)


def usage_of(event):
    """{field: tokens, cost} of an assistant message that carries usage, else None."""
    message = event.get("message")
    if event.get("type") != "message" or not isinstance(message, dict) or message.get("role") != "assistant":
        return None
    usage = message.get("usage")
    if not isinstance(usage, dict):
        return None
    found = {field: _count(usage.get(field)) for field in USAGE_FIELDS}
    cost = usage.get("cost")
    found["cost"] = _count(cost.get("total") if isinstance(cost, dict) else 0, MAX_COST, float)
    return found


def usage_totals(rows, since_ms):
    """The usage of the assistant messages of rows created since since_ms."""
    total = no_usage()
    for _session, created, event in rows:
        found = usage_of(event) if created >= since_ms else None
        if found:
            for key, value in found.items():
                total[key] += value
            total["messages"] += 1
    total["cost"] = round(total["cost"], 6)
    return total


def _ms(value):
    """created_at as an int; the agent could have written anything there."""
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _text(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content
                         if isinstance(part, dict) and part.get("type") in ("text", "output_text", None))
    return ""


def message_of(session, created, event):
    """One normalised message, or None for events that are not messages:
    {session, time, role (user, assistant, tool), text, calls: [(name,
    arguments)], tool (the tool a result belongs to), model, stop}."""
    message = event.get("message")
    if event.get("type") != "message" or not isinstance(message, dict):
        return None
    role = message.get("role")
    content = message.get("content")
    calls = []
    if isinstance(content, list):
        calls = [(str(part.get("name", ""))[:MAX_NAME], part.get("arguments") if isinstance(part.get("arguments"), dict) else {})
                 for part in content if isinstance(part, dict) and part.get("type") == "toolCall"]
    entry = {"session": str(session)[:MAX_NAME], "time": str(event.get("timestamp") or created)[:40],
             "text": _text(content)[:MAX_TEXT], "calls": calls, "tool": None,
             "model": str(message.get("model") or "")[:MAX_NAME], "stop": str(message.get("stopReason") or "")[:40]}
    if role == "toolResult":
        entry.update(role="tool", tool=str(message.get("toolName", ""))[:MAX_NAME])
    elif role in ("user", "assistant"):
        entry["role"] = role
    else:
        return None
    return entry


def sessions(rows):
    """session -> [messages], each session oldest first."""
    result = {}
    for session, created, event in rows:
        entry = message_of(session, created, event)
        if entry:
            result.setdefault(session, []).append(entry)
    return result


def render(entry):
    """One line of an excerpt: who said or did what. Everything here came
    from a model or a tool: it is quoted as data by the caller."""
    if entry["role"] == "tool":
        return "[%s] tool result (%s): %s" % (entry["time"], entry["tool"], entry["text"][:600])
    parts = [entry["text"]] if entry["text"] else []
    parts += ["calls %s %s" % (name, json.dumps(arguments, sort_keys=True)[:400]) for name, arguments in entry["calls"]]
    return "[%s] %s: %s" % (entry["time"], entry["role"], " | ".join(parts))


def excerpt(by_session, max_chars):
    """The sessions as text, newest last, at most max_chars (the newest)."""
    lines = []
    for session, entries in sorted(by_session.items(), key=lambda item: str(item[1][0]["time"])):
        lines.append("### session %s" % session)
        lines += [render(e) for e in entries]
    return "\n".join(lines)[-max_chars:] if lines and max_chars > 0 else ""
