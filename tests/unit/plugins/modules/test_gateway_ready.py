"""gateway_ready: readiness moves last-good; rollback puts it back."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.agentfleet.vps.plugins.module_utils import config_txn as txn
from ansible_collections.agentfleet.vps.plugins.module_utils.systemd_user import UserManager
from ansible_collections.agentfleet.vps.plugins.modules import gateway_ready


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "openclaw.json"
    path.write_text('{"gateway": {"bind": "loopback"}}\n')
    return path


@pytest.fixture
def gateway(config, monkeypatch):
    """A /readyz that is ready unless the config says "custom", and a user
    manager whose restarts are recorded instead of run."""
    restarts = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            ready = b"custom" not in config.read_bytes()
            self.send_response(200 if ready else 503)
            self.end_headers()
            self.wfile.write(json.dumps({"ready": ready}).encode())

        def log_message(self, *args):
            pass
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # What the wait reads of the unit (show) answers nothing; only actions are recorded.
    monkeypatch.setattr(UserManager, "systemctl", lambda self, *a: (a[0] != "show" and restarts.append(a)) or (0, "", ""))
    monkeypatch.setattr(UserManager, "journal", lambda self, unit, lines=30: "journal of %s" % unit)
    yield {"port": server.server_port, "restarts": restarts}
    server.shutdown()
    server.server_close()


def call(run_module, me, config, gateway, check_mode=False, **extra):
    args = {"user": me, "timeout": 2, "gateways": [
        {"name": "coder", "port": gateway["port"], "unit": "openclaw-gateway-coder.service", "config": str(config)}]}
    args.update(extra)
    return run_module(gateway_ready, args, check_mode=check_mode)


def test_ready_gateway_moves_last_good_once(run_module, me, config, gateway):
    first = call(run_module, me, config, gateway)
    assert first["changed"] and first["last_good_moved"] == ["coder"]
    assert txn.ConfigStore(str(config)).last_good() == config.read_bytes()
    second = call(run_module, me, config, gateway)
    assert not second["changed"] and second["last_good_moved"] == []


def test_not_ready_gateway_is_put_back_on_last_good(run_module, me, config, gateway):
    call(run_module, me, config, gateway)
    good = config.read_bytes()
    config.write_text('{"gateway": {"bind": "custom"}}\n')
    result = call(run_module, me, config, gateway, rollback=True)
    assert result["failed"] and result["rolled_back"]["coder"]["recovered"] is True
    assert "Rolled back to its last good config" in result["msg"]
    assert config.read_bytes() == good
    assert gateway["restarts"] == [("reset-failed", "openclaw-gateway-coder.service"),
                                   ("restart", "openclaw-gateway-coder.service")]
    log = [json.loads(line) for line in open(txn.ConfigStore(str(config)).log_path)]
    assert log[-1]["result"] == "rolled_back"


def test_without_rollback_a_not_ready_gateway_only_fails(run_module, me, config, gateway):
    call(run_module, me, config, gateway)
    config.write_text('{"gateway": {"bind": "custom"}}\n')
    result = call(run_module, me, config, gateway)
    assert result["failed"] and result["rolled_back"] == {} and gateway["restarts"] == []
    assert "journal of openclaw-gateway-coder.service" in result["msg"]
    assert b"custom" in config.read_bytes()


def fake_host(monkeypatch, ready, show, journal):
    """A /readyz that answers ready() and a user manager whose `show`
    answers show(unit) (KEY=value lines) and whose other calls are
    recorded; polls every 0.01 s."""
    calls = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if ready() else 503)
            self.end_headers()
            self.wfile.write(json.dumps({"ready": ready()}).encode())

        def log_message(self, *args):
            pass

    def systemctl(self, *args):
        calls.append(args)
        return (0, "Id=%s\n%s" % (args[-1], show()), "") if args[0] == "show" else (0, "", "")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(UserManager, "systemctl", systemctl)
    monkeypatch.setattr(UserManager, "journal", lambda self, unit, lines=30: journal)
    monkeypatch.setattr(gateway_ready, "POLL_SECONDS", 0.01)
    return server, {"port": server.server_port, "calls": calls}


@pytest.fixture
def failed_once(monkeypatch):
    """A gateway whose first start failed for good (exit 78): its unit is
    'failed' and /readyz never answers until the unit is started again."""
    def started():
        return ("restart", "openclaw-gateway-coder.service") in fake["calls"]
    server, fake = fake_host(monkeypatch, started, lambda: "ActiveState=%s\n" % ("active" if started() else "failed"),
                             "exit status 78")
    yield fake
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("retries", [0, 1])
def test_a_failed_unit_is_started_again_only_with_start_retries(run_module, me, config, failed_once, retries):
    result = call(run_module, me, config, failed_once, start_retries=retries, timeout=3)
    starts = [c for c in failed_once["calls"] if c[0] == "restart"]
    if retries:
        assert not result.get("failed") and result["restarted"] == {"coder": 1}
        assert starts == [("restart", "openclaw-gateway-coder.service")]
    else:
        assert result["failed"] and result["restarted"] == {} and starts == []
        assert "exit status 78" in result["msg"]
        assert "is not ready (waited up to 3 s): the gateway exited: unit failed/" in result["msg"]


@pytest.fixture
def exits_on_start(monkeypatch):
    """A gateway that exits each time it starts (a config it cannot run):
    its unit waits out RestartSec, /readyz never answers ready."""
    server, fake = fake_host(monkeypatch, lambda: False,
                             lambda: "ActiveState=activating\nSubState=auto-restart\nResult=exit-code\nExecMainStatus=1\n",
                             "refusing fallback")
    monkeypatch.setattr(gateway_ready, "RECOVERY_SECONDS", 0)
    yield fake
    server.shutdown()
    server.server_close()


def test_a_gateway_that_keeps_exiting_is_started_at_once_then_given_up_before_the_timeout(
        run_module, me, config, exits_on_start):
    """Started again at once (not after RestartSec) start_retries times; when
    it exits again the wait ends (timeout 600 s here, never reached) and the
    rollback follows, whose start exits too."""
    store = txn.ConfigStore(str(config))
    with store.lock():
        store.promote(config.read_bytes())
    config.write_text('{"gateway": {"bind": "custom"}}\n')
    result = call(run_module, me, config, exits_on_start, start_retries=1, timeout=600, rollback=True)
    assert result["failed"] and result["restarted"] == {"coder": 1}
    assert "the gateway exited after 1 start(s) again: unit activating/auto-restart (result exit-code, exit status 1)" \
        in result["msg"]
    starts = [c for c in exits_on_start["calls"] if c[0] in ("start", "restart")]
    # The retry, then the rollback's restart and its own retry.
    assert starts == [("restart", "openclaw-gateway-coder.service")] * 3
    assert result["rolled_back"]["coder"]["recovered"] is False and b"custom" not in config.read_bytes()
    assert "NOT ready on that one either" in result["msg"]


def test_check_mode_starts_nothing_again(run_module, me, config, failed_once):
    result = call(run_module, me, config, failed_once, start_retries=1, timeout=1, check_mode=True)
    assert result["failed"] and [c for c in failed_once["calls"] if c[0] != "show"] == []


def test_each_gateway_is_rolled_back_through_its_own_users_manager(run_module, me, config, gateway, monkeypatch):
    """Each agent has its own user: a gateway's restart goes to the manager
    of the user its entry names, not the call's."""
    users = []
    monkeypatch.setattr(UserManager, "systemctl", lambda self, *a: users.append((self.user, a)) or (0, "", ""))
    store = txn.ConfigStore(str(config))
    store.promote(config.read_bytes())
    config.write_text('{"gateway": {"bind": "custom"}}\n')
    result = run_module(gateway_ready, {"user": "nobody", "timeout": 2, "rollback": True, "gateways": [
        {"name": "coder", "user": me, "port": gateway["port"], "unit": "openclaw-gateway-coder.service",
         "config": str(config)}]})
    assert result["failed"] and result["rolled_back"]["coder"]["recovered"] is True
    assert ("restart" in [a[0] for _u, a in users]) and {u for u, _a in users} == {me}


def test_a_gateway_without_a_user_is_refused(run_module, config, gateway):
    result = run_module(gateway_ready, {"timeout": 2, "gateways": [
        {"name": "coder", "port": gateway["port"], "unit": "openclaw-gateway-coder.service"}]})
    assert result["failed"] and "none given for openclaw-gateway-coder.service" in result["msg"]


def test_a_slow_last_good_start_keeps_the_last_good_config(run_module, me, config, gateway, monkeypatch):
    # Nothing answers in time after the rollback's restart: the failing
    # config must not come back.
    call(run_module, me, config, gateway)
    good = config.read_bytes()
    config.write_text('{"gateway": {"bind": "custom"}}\n')
    monkeypatch.setattr(gateway_ready, "RECOVERY_SECONDS", 0)
    monkeypatch.setattr(gateway_ready.txn, "readyz", lambda port, timeout=5: (False, "starting"))
    result = call(run_module, me, config, gateway, rollback=True, timeout=1)
    assert result["failed"] and result["rolled_back"]["coder"]["recovered"] is False
    assert "NOT ready on that one either" in result["msg"]
    assert config.read_bytes() == good
    assert gateway["restarts"] == [("reset-failed", "openclaw-gateway-coder.service"),
                                   ("restart", "openclaw-gateway-coder.service")]


def test_one_agents_planted_link_does_not_stop_the_others(run_module, me, config, gateway, tmp_path):
    evil_dir = tmp_path / "evil"
    evil_dir.mkdir()
    (evil_dir / "openclaw.json").symlink_to(config)
    result = run_module(gateway_ready, {"user": me, "timeout": 2, "rollback": True, "gateways": [
        {"name": "evil", "port": gateway["port"], "unit": "openclaw-gateway-evil.service",
         "config": str(evil_dir / "openclaw.json")},
        {"name": "coder", "port": gateway["port"], "unit": "openclaw-gateway-coder.service", "config": str(config)}]})
    assert result["failed"] and result["last_good_moved"] == ["coder"]
    assert txn.ConfigStore(str(config)).last_good() == config.read_bytes()
    assert "agent 'evil'" in result["msg"] and "not taken as good" in result["msg"]
    assert "agent 'coder'" not in result["msg"]
