"""transcripts on SQLite session stores shaped like OpenClaw 2026.9.6's
(the real schema, a real compressed row), in WAL mode, damaged, and
behind the links an agent could plant to make root read another agent's
sessions."""

import datetime
import json
import os
import shutil
import sqlite3

import pytest

from ansible_collections.agentfleet.vps.plugins.module_utils import fileops
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import transcripts

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
SCHEMA = ("CREATE TABLE transcript_events (session_id TEXT NOT NULL, seq INTEGER NOT NULL, event_json TEXT, "
          "created_at INTEGER NOT NULL, event_zstd BLOB, event_utf8_bytes INTEGER, navigation_json TEXT, "
          "PRIMARY KEY(session_id, seq))")
T0 = 1796064749000  # 2026-11-30T18:52:29Z, in ms


def fixture(name, mode="rb"):
    with open(os.path.join(FIXTURES, name), mode) as handle:
        return handle.read()


def iso(ms):
    when = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)


def message(ms, role, content, **extra):
    return {"type": "message", "id": "m%d" % ms, "parentId": "p%d" % ms, "timestamp": iso(ms),
            "message": dict({"role": role, "content": content, "timestamp": ms}, **extra)}


def user(ms, text):
    return message(ms, "user", text)


def tool_call(ms, name, arguments, call_id="toolu_1"):
    return message(ms, "assistant", [{"type": "toolCall", "id": call_id, "name": name, "arguments": arguments}],
                   api="anthropic-messages", provider="anthropic", model="claude-sonnet-4-5",
                   usage={"input": 10, "output": 5}, stopReason="toolUse")


def tool_result(ms, name, text, call_id="toolu_1"):
    return message(ms, "toolResult", [{"type": "text", "text": text}], toolCallId=call_id, toolName=name, isError=False)


def final(ms, text):
    return message(ms, "assistant", [{"type": "text", "text": text}], stopReason="stop", model="claude-sonnet-4-5")


def noise(ms):
    """The other events OpenClaw keeps in the same table."""
    return [{"type": "session", "id": "s%d" % ms, "timestamp": iso(ms), "cwd": "/home/coder"},
            {"type": "model_change", "id": "c%d" % ms, "timestamp": iso(ms), "provider": "anthropic",
             "modelId": "claude-sonnet-4-5"},
            {"type": "custom", "customType": "openclaw.cache-ttl", "id": "t%d" % ms, "timestamp": iso(ms), "data": {}}]


def store_file(state_dir):
    path = os.path.join(str(state_dir), "agents", "main", "agent", "openclaw-agent.sqlite")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def open_store(state_dir, wal=False):
    conn = sqlite3.connect(store_file(state_dir))
    if wal:
        assert conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
        conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute(SCHEMA)
    conn.commit()
    return conn


def insert(conn, session, created, event=None, compressed=None, size=None, navigation=None):
    seq = conn.execute("SELECT COUNT(*) FROM transcript_events WHERE session_id = ?", (session,)).fetchone()[0] + 1
    conn.execute("INSERT INTO transcript_events VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (session, seq, json.dumps(event) if isinstance(event, dict) else event, created, compressed, size, navigation))


def write_store(state_dir, rows, wal=False):
    """rows: (session, created_at, event); closed, so everything is in
    the main file."""
    conn = open_store(state_dir, wal)
    for session, created, event in rows:
        insert(conn, session, created, event)
    conn.commit()
    conn.close()


@pytest.fixture
def work(tmp_path):
    path = tmp_path / "work"
    path.mkdir()
    return path


def no_copies_left(work_dir):
    assert os.listdir(str(work_dir)) == []


# ------------------------------------------------------------ real row

def test_a_real_compressed_row_reads_as_its_tool_result(tmp_path, work):
    state = tmp_path / ".openclaw-coder"
    conn = open_store(state, wal=True)
    for event in noise(T0):
        insert(conn, "s1", T0, event)
    insert(conn, "s1", T0 + 1, user(T0 + 1, "Read your AGENTS.md"))
    insert(conn, "s1", T0 + 2, tool_call(T0 + 2, "read", {"path": "AGENTS.md"}))
    insert(conn, "s1", T0 + 964, None, compressed=fixture("transcript_tool_result.zst"), size=13305,
           navigation=fixture("transcript_tool_result.navigation.json", "r"))
    insert(conn, "s1", T0 + 2000, final(T0 + 2000, "Read it."))
    conn.commit()
    conn.close()

    rows, starts = transcripts.read_rows(str(state), 0, str(work))
    assert [event["type"] for _s, _t, event in rows] == ["session", "model_change", "custom"] + ["message"] * 4
    assert starts == {"s1": T0}
    (_session, created, event), = [row for row in rows if row[2].get("message", {}).get("role") == "toolResult"]
    assert created == T0 + 964 and event["id"] == json.loads(fixture("transcript_tool_result.navigation.json"))["report"]["entry"]["id"]

    by_session = transcripts.sessions(rows)
    assert list(by_session) == ["s1"]
    entries = by_session["s1"]
    assert [e["role"] for e in entries] == ["user", "assistant", "tool", "assistant"]
    tool = entries[2]
    assert tool["tool"] == "read" and tool["text"].startswith("# AGENTS.md - Your Workspace")
    assert len(tool["text"]) <= transcripts.MAX_TEXT
    assert entries[1]["calls"] == [("read", {"path": "AGENTS.md"})] and entries[1]["model"] == "claude-sonnet-4-5"
    assert entries[3]["stop"] == "stop" and entries[3]["text"] == "Read it."

    text = transcripts.excerpt(by_session, 100000)
    assert text.startswith("### session s1\n")
    assert "tool result (read): # AGENTS.md - Your Workspace" in text
    assert 'assistant: calls read {"path": "AGENTS.md"}' in text
    assert "user: Read your AGENTS.md" in text and text.endswith("assistant: Read it.")
    # The 13 kB result is cut in the excerpt, not pasted whole.
    assert max(len(line) for line in text.splitlines()) < 1000
    no_copies_left(work)


def test_no_store_is_no_rows(tmp_path, work):
    assert transcripts.read_rows(str(tmp_path / "nobody"), 0, str(work)) == ([], {})


# ------------------------------------------------------------ window

def test_rows_since_the_window_oldest_first_and_where_each_session_began(tmp_path, work):
    since = T0 + 4000
    data = [("a", T0 + 5000, user(T0 + 5000, "a later")), ("a", T0 + 1000, user(T0 + 1000, "a first")),
            ("b", T0 + 7000, final(T0 + 7000, "b second")), ("b", T0 + 6000, user(T0 + 6000, "b first")),
            ("a", since, final(since, "a on the edge")), ("c", T0 + 500, user(T0 + 500, "c only old")),
            ("a", T0 + 2000, final(T0 + 2000, "a old answer"))]
    write_store(tmp_path, data)
    rows, starts = transcripts.read_rows(str(tmp_path), since, str(work))
    expected = sorted((s, t, e) for s, t, e in data if t >= since)
    assert [(s, t) for s, t, _e in rows] == [(s, t) for s, t, _e in sorted(expected, key=lambda r: r[1])]
    assert [e["message"]["content"] for _s, _t, e in rows if e["message"]["role"] == "user"] == ["a later", "b first"]
    first = {}
    for session, created, _event in data:
        first[session] = min(created, first.get(session, created))
    # Where a session began counts its rows before the window too: "a" is
    # not a new session, "b" is.
    assert {s for s, _t, _e in rows} <= set(starts)
    assert {s: starts[s] for s in starts} == {s: first[s] for s in starts}
    assert starts["a"] == T0 + 1000 and starts["b"] == T0 + 6000
    # since may be a float (a datetime's timestamp() * 1000).
    assert transcripts.read_rows(str(tmp_path), since + 0.5, str(work))[0] == rows
    assert transcripts.read_rows(str(tmp_path), T0 + 8000, str(work))[0] == []
    no_copies_left(work)


def test_a_wal_store_with_rows_only_in_its_wal_is_read(tmp_path, work):
    conn = open_store(tmp_path, wal=True)
    try:
        insert(conn, "live", T0, user(T0, "still in the WAL"))
        insert(conn, "live", T0 + 1, final(T0 + 1, "me too"))
        conn.commit()
        path = store_file(tmp_path)
        wal = os.path.getsize(path + "-wal")
        assert wal > 0
        # The main file alone has not got them yet.
        alone = tmp_path / "alone.sqlite"
        shutil.copyfile(path, str(alone))
        check = sqlite3.connect(str(alone))
        try:
            assert check.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'transcript_events'").fetchone()[0] == 0
        finally:
            check.close()

        rows, starts = transcripts.read_rows(str(tmp_path), 0, str(work))
        assert [e["message"]["content"] for _s, _t, e in rows][0] == "still in the WAL"
        assert len(rows) == 2 and starts == {"live": T0}
        # Read from a copy: the agent's own WAL is left as it was.
        assert os.path.getsize(path + "-wal") == wal
        no_copies_left(work)
    finally:
        conn.close()


# ------------------------------------------------------------ links

@pytest.fixture
def two_agents(tmp_path):
    """(attacker state dir, other agent's state dir with a secret session)."""
    other = tmp_path / ".openclaw-other"
    conn = open_store(other, wal=True)
    insert(conn, "private", T0, user(T0, "the other agent's secret"))
    conn.commit()
    conn.close()
    attacker = tmp_path / ".openclaw-coder"
    os.makedirs(str(attacker / "agents" / "main"))
    return attacker, other


def test_a_symlinked_store_is_not_followed(two_agents, work):
    attacker, other = two_agents
    os.makedirs(str(attacker / "agents" / "main" / "agent"))
    os.symlink(store_file(other), store_file(attacker))
    with pytest.raises(fileops.UnsafePath):
        transcripts.read_rows(str(attacker), 0, str(work))
    no_copies_left(work)


def test_a_symlinked_directory_on_the_way_is_not_followed(two_agents, work):
    attacker, other = two_agents
    os.symlink(os.path.dirname(store_file(other)), str(attacker / "agents" / "main" / "agent"))
    with pytest.raises(fileops.UnsafePath):
        transcripts.read_rows(str(attacker), 0, str(work))
    no_copies_left(work)


def test_a_symlinked_wal_is_not_followed(two_agents, work):
    attacker, other = two_agents
    conn = open_store(attacker, wal=True)
    try:
        conn.commit()
        if os.path.exists(store_file(attacker) + "-wal"):
            os.unlink(store_file(attacker) + "-wal")
        os.symlink(store_file(other), store_file(attacker) + "-wal")
        with pytest.raises(fileops.UnsafePath):
            transcripts.read_rows(str(attacker), 0, str(work))
    finally:
        conn.close()
    no_copies_left(work)


def test_a_hard_link_to_another_store_is_not_read(two_agents, work):
    attacker, other = two_agents
    os.makedirs(str(attacker / "agents" / "main" / "agent"))
    os.link(store_file(other), store_file(attacker))
    with pytest.raises(fileops.UnsafePath):
        transcripts.read_rows(str(attacker), 0, str(work))
    # The other agent's own store is read as usual.
    os.unlink(store_file(attacker))
    rows, _starts = transcripts.read_rows(str(other), 0, str(work))
    assert rows[0][2]["message"]["content"] == "the other agent's secret"


# ------------------------------------------------------------ damage

def test_a_damaged_row_is_unreadable_and_the_others_are_read(tmp_path, work):
    real = fixture("transcript_tool_result.zst")
    conn = open_store(tmp_path)
    insert(conn, "s", T0, user(T0, "first"))
    insert(conn, "s", T0 + 1, None, compressed=b"not zstd at all", size=100)
    insert(conn, "s", T0 + 2, None, compressed=real[:len(real) // 2], size=13305)
    insert(conn, "s", T0 + 3, "{not json")
    insert(conn, "s", T0 + 4, None, compressed="a text value")  # SQLite keeps whatever type it is given
    insert(conn, "s", T0 + 5, None, compressed=10 ** 12)
    insert(conn, "s", T0 + 6, 42)  # JSON, but no event: left out
    insert(conn, "s", T0 + 7, None, compressed=real, size=13305)
    insert(conn, "s", T0 + 8, final(T0 + 8, "last"))
    insert(conn, "s", T0 + 9, None)  # neither: nothing to read
    conn.commit()
    conn.close()
    rows, _starts = transcripts.read_rows(str(tmp_path), 0, str(work))
    assert [(t - T0, e["type"]) for _s, t, e in rows] == [
        (0, "message"), (1, "unreadable"), (2, "unreadable"), (3, "unreadable"), (4, "unreadable"), (5, "unreadable"),
        (7, "message"), (8, "message")]
    assert all(e["error"] and len(e["error"]) <= 200 for _s, _t, e in rows if e["type"] == "unreadable")
    by_session = transcripts.sessions(rows)
    assert [(e["role"], e["text"][:12]) for e in by_session["s"]] == [
        ("user", "first"), ("tool", "# AGENTS.md "), ("assistant", "last")]


def test_a_row_bigger_than_the_cap_is_unreadable(tmp_path, work, monkeypatch):
    conn = open_store(tmp_path)
    insert(conn, "s", T0, None, compressed=fixture("transcript_tool_result.zst"), size=13305)
    conn.commit()
    conn.close()
    monkeypatch.setattr(transcripts, "MAX_EVENT", 13304)
    (_s, _t, event), = transcripts.read_rows(str(tmp_path), 0, str(work))[0]
    assert event["type"] == "unreadable"
    monkeypatch.setattr(transcripts, "MAX_EVENT", 13305)
    (_s, _t, event), = transcripts.read_rows(str(tmp_path), 0, str(work))[0]
    assert event["message"]["toolName"] == "read"


def test_a_store_that_is_no_database_raises_a_sqlite_error(tmp_path, work):
    with open(store_file(tmp_path), "wb") as handle:
        handle.write(b"this is not SQLite" * 100)
    with pytest.raises(sqlite3.DatabaseError):
        transcripts.read_rows(str(tmp_path), 0, str(work))
    no_copies_left(work)


# ------------------------------------------------------------ messages

def test_events_that_are_not_messages_are_no_messages():
    assert all(transcripts.message_of("s", T0, event) is None for event in noise(T0))
    assert transcripts.message_of("s", T0, {"type": "message", "message": {"role": "system", "content": "x"}}) is None
    assert transcripts.message_of("s", T0, {"type": "message", "message": "text"}) is None
    assert transcripts.message_of("s", T0, {"type": "unreadable", "error": "x"}) is None
    entry = transcripts.message_of("s", T0, {"type": "message", "message": {"role": "user", "content": "hi"}})
    assert str(entry["time"]) == str(T0) and entry["text"] == "hi" and entry["calls"] == []


def test_excerpt_shows_calls_and_results_and_keeps_the_newest(tmp_path, work):
    # Named so that alphabetical order is not the order in time.
    data = [("z-old", T0, user(T0, "OLDEST-MARKER do the first thing")),
            ("z-old", T0 + 1, final(T0 + 1, "First thing done.")),
            ("a-new", T0 + 10, user(T0 + 10, "Fix the build")),
            ("a-new", T0 + 11, tool_call(T0 + 11, "exec", {"command": "make test", "workdir": "/srv/app"})),
            ("a-new", T0 + 12, tool_result(T0 + 12, "exec", "12 passed")),
            ("a-new", T0 + 13, final(T0 + 13, "All tests pass. NEWEST-MARKER"))]
    write_store(tmp_path, data)
    by_session = transcripts.sessions(transcripts.read_rows(str(tmp_path), 0, str(work))[0])
    whole = transcripts.excerpt(by_session, 100000)
    lines = whole.splitlines()
    assert lines[0] == "### session z-old" and "### session a-new" in lines
    assert lines.index("### session z-old") < lines.index("### session a-new")
    assert '] assistant: calls exec {"command": "make test", "workdir": "/srv/app"}' in whole
    assert "] tool result (exec): 12 passed" in whole
    assert whole.endswith("assistant: All tests pass. NEWEST-MARKER")

    short = transcripts.excerpt(by_session, 120)
    assert len(short) == 120 and whole.endswith(short)
    assert short.endswith("NEWEST-MARKER") and "OLDEST-MARKER" not in short
    assert transcripts.excerpt(by_session, len(whole) + 1000) == whole
    assert transcripts.excerpt({}, 1000) == ""
    assert transcripts.excerpt(by_session, 0) == ""
