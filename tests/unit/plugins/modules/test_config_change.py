"""config_change: the module end to end, against files and a local HTTP
server that plays the service (healthy unless its config says "broken")."""

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.agentfleet.vps.plugins.module_utils import config_txn as txn
from ansible_collections.agentfleet.vps.plugins.modules import config_change

COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "collections"))

SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["gateway"],
    "properties": {
        "gateway": {
            "type": "object", "additionalProperties": False, "required": ["port"],
            "properties": {
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                "bind": {"enum": ["loopback", "lan", "custom"]},
                "auth": {"type": "object", "properties": {"mode": {"enum": ["token", "none"]},
                                                          "token": {"type": "string"}}},
            },
        },
        "agents": {"type": "object", "properties": {"defaults": {"type": "object", "properties": {
            "model": {"type": "object", "properties": {
                "primary": {"type": "string", "minLength": 1},
                "fallbacks": {"type": "array", "items": {"type": "string"}}}}}}}},
        "state": {"type": "string"},
    },
}
GOOD = {"gateway": {"port": 19000, "bind": "loopback"},
        "agents": {"defaults": {"model": {"primary": "anthropic/claude-sonnet-4-5"}}}}


@pytest.fixture
def live(tmp_path):
    path = tmp_path / "state" / "openclaw.json"
    path.parent.mkdir()
    path.write_text(json.dumps(GOOD, indent=2, sort_keys=True) + "\n")
    os.chmod(path, 0o640)
    return path


@pytest.fixture
def service(live):
    """HTTP server that is healthy while the live config does not say broken."""
    requests = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            broken = b"broken" in live.read_bytes()
            self.send_response(503 if broken else 200)
            self.end_headers()
            self.wfile.write(b'{"ready":false}' if broken else b'{"ready":true}')

        def log_message(self, *args):
            pass
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": "http://127.0.0.1:%d/readyz" % server.server_port, "requests": requests}
    server.shutdown()
    server.server_close()


def base(live, **extra):
    args = {"path": str(live), "kind": "json", "schema": SCHEMA}
    args.update(extra)
    return args


def health(service):
    return {"url": service["url"], "body": '"ready":true', "retries": 2, "delay": 0}


def snapshot(directory):
    """Every path below directory with its bytes (None for directories)."""
    found = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs:
            found[os.path.join(root, name)] = None
        for name in files:
            with open(os.path.join(root, name), "rb") as handle:
                found[os.path.join(root, name)] = handle.read()
    return found


def changes(live):
    log = live.parent / "config-backups" / "changes.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_schema_rejection_writes_nothing_and_names_every_path(live, service, run_module):
    before = live.read_bytes()
    result = run_module(config_change, base(live, merge={"gateway": {"port": "x", "extra": 1}},
                                            health=health(service)))
    assert result["failed"] and result["result"] == "rejected" and not result["changed"]
    assert sorted(e["path"] for e in result["errors"]) == ["$.gateway", "$.gateway.port"]
    assert "$.gateway.port" in result["msg"]
    assert live.read_bytes() == before
    assert service["requests"] == []
    assert [c["result"] for c in changes(live)] == ["rejected"]
    assert not list((live.parent / "config-backups").glob("*.bak"))


def test_validate_command_rejects_and_runs_on_a_copy(live, tmp_path, run_module):
    seen = tmp_path / "seen"
    result = run_module(config_change, base(live, merge={"state": "x"},
                                            validate_command="sh -c 'echo $0 > %s; exit 3' %%s" % seen))
    assert result["failed"] and result["errors"][0]["source"] == "command"
    assert seen.read_text().strip() != str(live)


def test_good_merge_applies_verifies_and_moves_last_good(live, service, run_module):
    before = live.read_bytes()
    result = run_module(config_change, base(live, merge={"agents": {"defaults": {"model": {"primary": "m/x"}}}},
                                            health=health(service)))
    assert result["changed"] and result["result"] == "applied" and not result["rolled_back"]
    assert json.loads(live.read_text())["agents"]["defaults"]["model"]["primary"] == "m/x"
    assert open(result["backup"], "rb").read() == before
    assert open(result["last_good"], "rb").read() == live.read_bytes()
    assert oct(os.stat(live).st_mode & 0o777) == oct(0o640)
    assert service["requests"] == ["/readyz"]
    entry = changes(live)[-1]
    assert entry["result"] == "applied" and entry["checksum_before"] == txn.checksum(before)
    assert entry["checksum_after"] == txn.checksum(live.read_bytes()) and entry["backup"] == result["backup"]


def test_health_failure_rolls_back_to_identical_bytes(live, service, run_module):
    before = live.read_bytes()
    result = run_module(config_change, base(live, merge={"state": "broken"}, health=health(service)))
    assert result["failed"] and result["rolled_back"] and result["recovered"]
    assert result["result"] == "rolled_back" and "answered 503" in result["msg"]
    assert live.read_bytes() == before
    assert not os.path.exists(result["last_good"])
    assert changes(live)[-1]["result"] == "rolled_back"


def test_a_unit_whose_process_exited_ends_the_health_wait_at_once(live, service, run_module, monkeypatch):
    """A service that exits on the new file (here: the unit reads as waiting
    out RestartSec while the file says broken) is rolled back after one
    probe, not after the probe budget (here 1000 attempts)."""
    restarts = []

    def restart(self):
        restarts.append(self.p["unit"])
        return True, "restarted"

    def unit_gone(self):
        if b"broken" in live.read_bytes():
            return "unit activating/auto-restart (result exit-code, exit status 1)"
        return None
    monkeypatch.setattr(config_change.ConfigChange, "restart", restart)
    monkeypatch.setattr(config_change.ConfigChange, "unit_gone", unit_gone)
    before = live.read_bytes()
    result = run_module(config_change, base(live, merge={"state": "broken"}, unit="svc.service", unit_action="restart",
                                            health=dict(health(service), retries=1000, delay=0.05)))
    assert result["failed"] and result["rolled_back"] and result["recovered"]
    assert "unit activating/auto-restart (result exit-code, exit status 1); last probe:" in result["msg"]
    assert live.read_bytes() == before
    # One probe of the broken file, one of the restored one.
    assert len(service["requests"]) == 2 and restarts == ["svc.service", "svc.service"]


def test_canonically_equal_content_changes_nothing(live, run_module):
    live.write_text('{"gateway": {"bind": "loopback", "port": 19000},\n "agents": {"defaults": {"model": '
                    '{"primary": "anthropic/claude-sonnet-4-5"}}}}')
    before, mtime = live.read_bytes(), os.stat(live).st_mtime_ns
    result = run_module(config_change, base(live, content=json.dumps(GOOD)))
    assert not result["changed"] and result["result"] == "unchanged"
    assert live.read_bytes() == before and os.stat(live).st_mtime_ns == mtime
    assert changes(live) == []


def test_yaml_and_json5_sources_are_written_as_canonical_json(live, run_module):
    run_module(config_change, base(live, content="gateway:\n  port: 19001\n"))
    assert live.read_text() == '{\n  "gateway": {\n    "port": 19001\n  }\n}\n'
    run_module(config_change, base(live, merge="{gateway: {bind: 'lan',},}"))
    assert json.loads(live.read_text()) == {"gateway": {"port": 19001, "bind": "lan"}}


def test_check_mode_writes_nothing(live, service, run_module):
    before = snapshot(live.parent)
    result = run_module(config_change, base(live, merge={"gateway": {"port": 19002}}, health=health(service)),
                        check_mode=True)
    assert result["changed"] and result["result"] == "would_apply"
    assert snapshot(live.parent) == before
    assert service["requests"] == []


def test_check_mode_still_rejects_bad_input(live, run_module):
    before = snapshot(live.parent)
    result = run_module(config_change, base(live, merge={"gateway": {"port": 0}}), check_mode=True)
    assert result["failed"] and result["errors"][0]["path"] == "$.gateway.port"
    assert snapshot(live.parent) == before


def test_diff_masks_secrets(live, run_module):
    result = run_module(config_change, base(live, merge={"gateway": {"auth": {"token": "tok-very-secret-1"}}}),
                        diff=True)
    diff = json.dumps(result["diff"])
    assert "tok-very-secret-1" not in diff and txn.MASK in result["diff"]["after"]
    assert '"port": 19000' in result["diff"]["before"]
    assert "tok-very-secret-1" in live.read_text()


def test_rejection_messages_do_not_leak_secrets(live, run_module):
    schema = dict(SCHEMA, properties=dict(SCHEMA["properties"], apiKey={"type": "integer"}))
    result = run_module(config_change, base(live, schema=schema, merge={"apiKey": "sk-leak-me-please"}))
    assert result["failed"] and "sk-leak-me-please" not in json.dumps(result)


def test_backups_rotate_to_keep_backups(live, run_module):
    for port in range(19001, 19007):
        run_module(config_change, base(live, merge={"gateway": {"port": port}}, keep_backups=3))
    backups = sorted((live.parent / "config-backups").glob("*.bak"))
    assert len(backups) == 3
    assert [json.loads(b.read_text())["gateway"]["port"] for b in backups] == [19003, 19004, 19005]


def test_restore_last_good_and_a_named_backup(live, service, run_module):
    first = run_module(config_change, base(live, merge={"gateway": {"port": 19001}}, health=health(service)))
    run_module(config_change, base(live, merge={"gateway": {"port": 19002}}))  # not verified: no probe
    good = open(first["last_good"], "rb").read()
    # A hand edit the store never saw; restore puts the last good back.
    live.write_text(json.dumps(dict(GOOD, state="hand edit")))
    restored = run_module(config_change, base(live, state="restore", health=health(service)))
    assert restored["changed"] and restored["result"] == "restored"
    assert live.read_bytes() == good or json.loads(live.read_text())["gateway"]["port"] == 19002
    named = run_module(config_change, base(live, state="restore", restore_from=os.path.basename(first["backup"])))
    assert named["result"] == "restored"
    assert json.loads(live.read_text())["gateway"]["port"] == 19000
    again = run_module(config_change, base(live, state="restore", restore_from=os.path.basename(first["backup"])))
    assert not again["changed"]
    assert [c["result"] for c in changes(live)] == ["applied", "applied", "restored", "restored"]


def test_restore_without_last_good_fails_and_lists_backups(live, run_module):
    result = run_module(config_change, base(live, state="restore"))
    assert result["failed"] and "no last known good" in result["msg"]
    assert live.read_text() == json.dumps(GOOD, indent=2, sort_keys=True) + "\n"


def test_new_file_gets_the_given_mode(tmp_path, run_module):
    path = tmp_path / "fresh.json"
    result = run_module(config_change, {"path": str(path), "content": {"gateway": {"port": 1}}, "mode": "0640",
                                        "schema": SCHEMA})
    assert result["changed"] and result["checksum_before"] is None
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o640)


def test_concurrent_changes_serialize(live):
    """Two module processes merge different keys at once: both land, and
    the validate command of one never overlaps the other's."""
    trace = live.parent.parent / "trace"
    script = textwrap.dedent("""
        import json, sys
        sys.path.insert(0, %(collections)r)
        from ansible.module_utils.testing import patch_module_args
        from ansible_collections.agentfleet.vps.plugins.modules import config_change
        args = json.loads(sys.argv[1])
        with patch_module_args(args):
            try:
                config_change.main()
            except SystemExit:
                pass
    """) % {"collections": COLLECTIONS}
    procs = []
    for name in ("one", "two"):
        validate = "sh -c 'echo start-%s >> %s; sleep 1; echo end-%s >> %s' %%s" % (name, trace, name, trace)
        args = {"path": str(live), "kind": "json", "validate_command": validate,
                "merge": {"agents": {"defaults": {"model": {"fallbacks": [name]}}}, "state": name}}
        if name == "two":
            args["merge"] = {"gateway": {"auth": {"mode": "token"}}}
        procs.append(subprocess.Popen([sys.executable, "-c", script, json.dumps(args)], stdout=subprocess.PIPE))
    outputs = [json.loads(p.communicate()[0]) for p in procs]
    assert all(o["result"] == "applied" for o in outputs), outputs
    events = trace.read_text().split()
    assert events in (["start-one", "end-one", "start-two", "end-two"],
                      ["start-two", "end-two", "start-one", "end-one"])
    final = json.loads(live.read_text())
    assert final["state"] == "one" and final["gateway"]["auth"] == {"mode": "token"}
    assert len(list((live.parent / "config-backups").glob("*.bak"))) == 2


# ------------------------------------------------------------ property based

def _set(doc, path, value):
    doc = json.loads(json.dumps(doc))
    target = doc
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value
    return doc


def _drop(doc, path):
    doc = json.loads(json.dumps(doc))
    target = doc
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return doc


not_int = st.one_of(st.text(max_size=8), st.floats(allow_nan=False).filter(lambda f: not f.is_integer()),
                    st.booleans(), st.lists(st.integers(), max_size=2), st.none())
bad_port = st.one_of(not_int, st.integers(max_value=0), st.integers(min_value=65536))
unknown_key = st.text(min_size=1, max_size=10).filter(lambda k: k not in SCHEMA["properties"])
unknown_gateway_key = st.text(min_size=1, max_size=10).filter(
    lambda k: k not in SCHEMA["properties"]["gateway"]["properties"])
INVALID = st.one_of(
    bad_port.map(lambda v: _set(GOOD, ["gateway", "port"], v)),
    st.text(max_size=10).filter(lambda v: v not in ("loopback", "lan", "custom")).map(
        lambda v: _set(GOOD, ["gateway", "bind"], v)),
    st.tuples(unknown_key, st.integers()).map(lambda kv: _set(GOOD, [kv[0]], kv[1])),
    st.tuples(unknown_gateway_key, st.text()).map(lambda kv: _set(GOOD, ["gateway", kv[0]], kv[1])),
    st.sampled_from([["gateway"], ["gateway", "port"]]).map(lambda p: _drop(GOOD, p)),
    st.lists(st.one_of(st.integers(), st.none(), st.booleans()), min_size=1, max_size=3).map(
        lambda v: _set(GOOD, ["agents", "defaults", "model", "fallbacks"], v)),
    st.one_of(st.just(""), st.integers(), st.lists(st.text(), max_size=1)).map(
        lambda v: _set(GOOD, ["agents", "defaults", "model", "primary"], v)),
)


@settings(max_examples=250, deadline=None)
@given(document=INVALID)
def reject_generated(document, live, service, run_module, seen):
    assert list(jsonschema.Draft7Validator(SCHEMA).iter_errors(document)), "generator made a valid document"
    seen.add(json.dumps(document, sort_keys=True))
    before = live.read_bytes()
    result = run_module(config_change, base(live, content=document, health=health(service)))
    assert result["failed"] and result["result"] == "rejected" and result["errors"]
    assert live.read_bytes() == before
    backups = live.parent / "config-backups"
    assert sorted(p.name for p in backups.iterdir()) == ["changes.jsonl", "openclaw.json.lock"]
    assert changes(live)[-1]["result"] == "rejected"
    assert service["requests"] == []


def test_generated_invalid_documents_are_all_rejected(live, service, run_module):
    """At least 200 distinct invalid documents, each rejected with the live
    file, its backups and the service untouched."""
    seen = set()
    reject_generated(live=live, service=service, run_module=run_module, seen=seen)
    assert len(seen) >= 200, len(seen)


# ------------------------------------------------ unit_action=watch

class FakeGateway:
    """Watches the live file like OpenClaw does: logs a verdict for each
    change to its logs/ directory, and answers /readyz."""

    def __init__(self, live, verdict, restarts_itself=False, forges_ready=False):
        self.live, self.verdict, self.restarts_itself = live, verdict, restarts_itself or forges_ready
        self.forges_ready = forges_ready
        self.started = time.monotonic() - 600
        gateway = self
        self.logs = live.parent / "logs"
        self.logs.mkdir(exist_ok=True)
        self.log = self.logs / "openclaw-2026-12-01.log"
        self.log.write_text("")
        self.seen = live.read_bytes()
        self.stop = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.end_headers()
                uptime = int((time.monotonic() - gateway.started) * 1000)
                self.wfile.write(b'{"ready":true,"uptimeMs":%d}' % uptime)

            def log_message(self, *args):
                pass
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/readyz" % self.server.server_port
        self.threads = [threading.Thread(target=self.server.serve_forever, daemon=True),
                        threading.Thread(target=self.watch, daemon=True)]
        for thread in self.threads:
            thread.start()

    def watch(self):
        while not self.stop.wait(0.05):
            data = self.live.read_bytes()
            if data == self.seen:
                continue
            self.seen = data
            if self.verdict is None:
                continue
            binding = json.dumps({"subsystem": "gateway/reload"})
            with open(self.log, "a") as handle:
                handle.write(json.dumps({"0": binding, "_meta": {"name": binding}, "message": self.verdict}) + "\n")
            if self.restarts_itself:  # as OpenClaw does in place, a moment later
                time.sleep(0.3)
                if not self.forges_ready:  # a new server: its uptime starts over
                    self.started = time.monotonic()
                binding = json.dumps({"subsystem": "gateway"})
                with open(self.log, "a") as handle:
                    handle.write(json.dumps({"0": binding, "_meta": {"name": binding}, "message": "gateway ready"}) + "\n")

    def close(self):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway(live, monkeypatch):
    made, restarts = [], []
    # The fake gateway has no unit: its health alone decides.
    monkeypatch.setattr(config_change.ConfigChange, "unit_gone", lambda self: None)

    def restart(self):
        restarts.append(self.p["unit"])
        self.result["applied_by"] = "restart"
        return True, "restarted"
    monkeypatch.setattr(config_change.ConfigChange, "restart", restart)

    def make(verdict, restarts_itself=False, forges_ready=False):
        made.append(FakeGateway(live, verdict, restarts_itself, forges_ready))
        return made[-1]
    yield make, restarts
    for fake in made:
        fake.close()


def watched(live, fake, merge, **extra):
    return base(live, merge=merge, unit="openclaw-gateway-x.service", unit_action="watch",
                health={"url": fake.url, "body": '"ready":true', "retries": 5, "delay": 1}, **extra)


MODEL = {"agents": {"defaults": {"model": {"primary": "m/hot"}}}}


def test_watch_a_hot_reload_is_verified_without_a_restart(live, gateway, run_module):
    make, restarts = gateway
    fake = make("config hot reload applied (agents.defaults.model.primary)")
    result = run_module(config_change, watched(live, fake, MODEL))
    assert result["result"] == "applied" and result["applied_by"] == "hot-reload", result.get("msg")
    assert result["reload"] == "config hot reload applied (agents.defaults.model.primary)"
    assert restarts == []
    assert open(result["last_good"], "rb").read() == live.read_bytes()


def test_watch_a_key_that_needs_a_restart_restarts_the_unit(live, gateway, run_module):
    make, restarts = gateway
    fake = make("config change requires gateway restart (gateway.bind) \u2014 preparing")
    result = run_module(config_change, watched(live, fake, {"gateway": {"bind": "lan"}}))
    assert result["result"] == "applied" and result["applied_by"] == "restart", result.get("msg")
    assert result["reload"].startswith("config change requires gateway restart (gateway.bind)")
    assert restarts == ["openclaw-gateway-x.service"]


def test_watch_a_gateway_that_restarts_itself_is_not_restarted_again(live, gateway, run_module):
    make, restarts = gateway
    fake = make("config change requires gateway restart (gateway.controlUi.basePath) \u2014 preparing", restarts_itself=True)
    result = run_module(config_change, watched(live, fake, MODEL))
    assert result["result"] == "applied" and result["applied_by"] == "gateway-restart", result.get("msg")
    assert restarts == []
    assert open(result["last_good"], "rb").read() == live.read_bytes()


def test_watch_a_forged_ready_line_without_a_new_server_gets_the_units_restart(live, gateway, run_module):
    # The agent writes its own log: "gateway ready" from it, while the old
    # server (its uptime long) still answers, is not a restart.
    make, restarts = gateway
    fake = make("config change requires gateway restart (gateway.controlUi.basePath) \u2014 deferring", forges_ready=True)
    result = run_module(config_change, watched(live, fake, MODEL))
    assert result["result"] == "applied" and result["applied_by"] == "restart", result.get("msg")
    assert restarts == ["openclaw-gateway-x.service"]


def test_watch_a_process_key_already_in_the_live_file_still_restarts_the_unit(live, gateway, run_module):
    # The live file already says bind=lan (an edit the in-place restart did
    # not bind); the last good copy, what the process runs, does not.
    make, restarts = gateway
    fake = make("config change requires gateway restart (gateway.bind) \u2014 preparing", restarts_itself=True)
    first = run_module(config_change, watched(live, fake, MODEL))
    assert first["applied_by"] == "gateway-restart" and restarts == []
    doc = json.loads(live.read_text())
    doc["gateway"]["bind"] = "lan"
    live.write_text(json.dumps(doc))
    result = run_module(config_change, watched(live, fake, {"agents": {"defaults": {"model": {"primary": "m/other"}}}}))
    assert result["applied_by"] == "restart" and restarts == ["openclaw-gateway-x.service"], result.get("msg")


def test_watch_a_restart_that_never_finishes_gets_the_units_restart(live, gateway, run_module):
    make, restarts = gateway
    fake = make("config change requires gateway restart (gateway.controlUi.basePath) \u2014 deferring", restarts_itself=False)
    args = watched(live, fake, MODEL, reload_timeout=1)
    args["health"].update(retries=2, delay=0.5)
    result = run_module(config_change, args)
    assert result["result"] == "applied" and result["applied_by"] == "restart", result.get("msg")
    assert restarts == ["openclaw-gateway-x.service"]


def test_watch_a_refused_file_is_rolled_back_with_a_restart(live, gateway, run_module):
    make, restarts = gateway
    before = live.read_bytes()
    fake = make("config reload skipped (invalid config): gateway.bind: nope")
    result = run_module(config_change, watched(live, fake, {"gateway": {"bind": "lan"}}))
    assert result["failed"] and result["rolled_back"] and result["recovered"]
    assert "did not apply it" in result["msg"] and "invalid config" in result["msg"]
    assert live.read_bytes() == before
    assert restarts == ["openclaw-gateway-x.service"]  # the recovery only


def test_watch_no_verdict_means_a_plain_restart(live, gateway, run_module):
    make, restarts = gateway
    fake = make(None)
    result = run_module(config_change, watched(live, fake, MODEL, reload_timeout=1))
    assert result["result"] == "applied" and result["applied_by"] == "restart"
    assert restarts == ["openclaw-gateway-x.service"]
    assert "no reload verdict" in result["reload"]


def test_watch_a_verdict_forged_before_the_change_does_not_count(live, gateway, run_module):
    make, restarts = gateway
    fake = make(None)
    binding = json.dumps({"subsystem": "gateway/reload"})
    fake.log.write_text(json.dumps({"0": binding, "_meta": {"name": binding},
                                    "message": "config hot reload applied (forged)"}) + "\n")
    result = run_module(config_change, watched(live, fake, MODEL, reload_timeout=1))
    assert result["applied_by"] == "restart" and restarts == ["openclaw-gateway-x.service"]


def test_the_default_openclaw_validation_uses_root_s_own_compile_cache():
    change = config_change.ConfigChange.__new__(config_change.ConfigChange)
    change.p, change.kind = {"validate_command": None, "openclaw_prefix": "/opt/agentfleet"}, "openclaw"
    command = change.validate_command()
    assert command.startswith("/usr/bin/env NODE_COMPILE_CACHE=/var/cache/agentfleet/openclaw-compile-cache "
                              "OPENCLAW_PACKAGED_COMPILE_CACHE_RESPAWNED=1 OPENCLAW_CONFIG_PATH=%s ")
    assert command.endswith("/opt/agentfleet/bin/openclaw config validate --json")
