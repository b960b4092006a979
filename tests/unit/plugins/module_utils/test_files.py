"""Env files and canonical JSON."""

import hashlib

from ansible_collections.agentfleet.vps.plugins.module_utils import files


def test_env_round_trip_with_quotes_and_backslashes():
    values = {"B": 'he said "hi"', "A": "back\\slash", "C": "plain"}
    text = files.render_env(values)
    assert text.decode().splitlines()[0].startswith("A=")
    assert files.parse_env(text.decode()) == values


def test_env_refuses_newlines():
    try:
        files.render_env({"A": "x\ny"})
    except ValueError as exc:
        assert "A" in str(exc)
    else:
        raise AssertionError("a newline was accepted")


def test_canonical_json_is_stable():
    assert files.canonical_json({"b": 1, "a": [1, 2]}) == files.canonical_json({"a": [1, 2], "b": 1})
    assert files.canonical_json({}).endswith(b"\n")


def test_in_place_compares_type_mode_owner_and_checksum():
    content = "#!/bin/sh\nexec node \"$@\"\n"
    digest = hashlib.sha256(content.encode("utf-8")).hexdigest()
    states = {"/opt/bin": {"type": "directory", "mode": "0755", "uid": 0, "gid": 0, "sha256": None},
              "/opt/bin/openclaw": {"type": "file", "mode": "0755", "uid": 0, "gid": 0, "nlink": 1, "sha256": digest}}
    dirs, wanted = [{"path": "/opt/bin", "mode": "0755"}], [{"path": "/opt/bin/openclaw", "mode": "0755", "content": content}]
    assert files.in_place(states, dirs, wanted)
    assert not files.in_place(states, dirs, [dict(wanted[0], content=content + "# more\n")])
    assert not files.in_place(states, dirs, [dict(wanted[0], mode="0775")])
    assert not files.in_place(states, [{"path": "/opt/bin", "mode": "0700"}], wanted)
    # a second hard link (agent_files rewrites such a file) is not in place
    for change in ({"uid": 1001}, {"gid": 1001}, {"type": "link"}, {"nlink": 2}):
        assert not files.in_place(dict(states, **{"/opt/bin/openclaw": dict(states["/opt/bin/openclaw"], **change)}), dirs, wanted)
    # a path the read did not ask for is not in place
    assert not files.in_place({}, dirs, wanted)
    assert not files.in_place({"/opt/bin": states["/opt/bin"]}, dirs, wanted)


def test_in_place_wants_absent_paths_read_and_missing():
    gone = {"/etc/cron.d/agentfleet-watchdog": {"exists": False, "type": None}}
    there = {"/etc/cron.d/agentfleet-watchdog": {"exists": True, "type": "file"}}
    absent = [{"path": "/etc/cron.d/agentfleet-watchdog"}]
    assert files.in_place(gone, absent=absent)
    assert not files.in_place(there, absent=absent)
    assert not files.in_place({}, absent=absent)
