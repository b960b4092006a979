"""Env files and canonical JSON."""

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
