"""The offline get-pip stand-in used by `make sanity`."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_stub():
    spec = importlib.util.spec_from_file_location("get_pip_stub", ROOT / "tools" / "get_pip_stub.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stub_drops_get_pip_only_options_and_restores_pip_config(monkeypatch):
    stub = load_stub()
    calls = []
    monkeypatch.setattr(stub.ensurepip, "bootstrap", lambda **kw: calls.append(("bootstrap", kw)))
    monkeypatch.setattr(stub.subprocess, "call", lambda cmd, env: calls.append(("call", cmd, env)) or 0)
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setattr(stub.sys, "argv", ["get-pip.py", "--disable-pip-version-check", "pip==24.2", "--no-setuptools", "--no-wheel"])

    assert stub.main() == 0

    assert calls[0] == ("bootstrap", {"upgrade": True})
    kind, cmd, env = calls[1]
    assert kind == "call"
    assert cmd[1:] == ["-m", "pip", "install", "--disable-pip-version-check", "pip==24.2"]
    assert "PIP_CONFIG_FILE" not in env


def test_stub_returns_pip_exit_code(monkeypatch):
    stub = load_stub()
    monkeypatch.setattr(stub.ensurepip, "bootstrap", lambda **kw: None)
    monkeypatch.setattr(stub.subprocess, "call", lambda cmd, env: 3)
    monkeypatch.setattr(stub.sys, "argv", ["get-pip.py", "pip==24.2"])
    assert stub.main() == 3
