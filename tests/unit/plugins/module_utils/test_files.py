"""Env files and temp-file writes."""

import os
import stat

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


def test_write_temp_sets_mode_before_content_is_visible(tmp_path):
    path = files.write_temp(str(tmp_path), b"secret", 0o600)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert open(path, "rb").read() == b"secret"
    assert os.path.dirname(path) == str(tmp_path)


def test_canonical_json_is_stable():
    assert files.canonical_json({"b": 1, "a": [1, 2]}) == files.canonical_json({"a": [1, 2], "b": 1})
    assert files.canonical_json({}).endswith(b"\n")


def test_read_bytes_missing_is_none(tmp_path):
    assert files.read_bytes(str(tmp_path / "nope")) is None
