"""config_txn: documents, validation, the store and the verified apply."""

import json
import os
import subprocess
import sys
import textwrap
import threading

import pytest

from ansible_collections.agentfleet.vps.plugins.module_utils import config_txn as txn

COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "collections"))


def test_load_document_reads_json_json5_and_yaml():
    assert txn.load_document('{"a": 1}') == {"a": 1}
    assert txn.load_document("{a: 1, // comment\n b: 'x',}") == {"a": 1, "b": "x"}
    assert txn.load_document("a: 1\nb:\n  - x\n") == {"a": 1, "b": ["x"]}


def test_load_document_names_what_it_could_not_read():
    with pytest.raises(txn.ChangeError, match="merge is neither JSON"):
        txn.load_document("{a: [", "merge")


def test_merge_patch_follows_rfc_7386():
    target = {"a": {"b": 1, "c": 2}, "l": [1, 2], "k": "v"}
    patch = {"a": {"b": None, "d": 3}, "l": [3], "n": {"x": None}}
    assert txn.merge_patch(target, patch) == {"a": {"c": 2, "d": 3}, "l": [3], "k": "v", "n": {}}
    assert target == {"a": {"b": 1, "c": 2}, "l": [1, 2], "k": "v"}


def test_json_path_formats_schema_and_openclaw_paths():
    assert txn.json_path(["gateway", "port"]) == "$.gateway.port"
    assert txn.json_path(["a", 0, "b"]) == "$.a[0].b"
    assert txn.json_path("agents.defaults.model") == "$.agents.defaults.model"
    assert txn.json_path("") == "$"


def test_mask_secrets_hides_values_but_keeps_secret_refs():
    doc = {"gateway": {"auth": {"token": {"source": "env", "id": "OPENCLAW_GATEWAY_TOKEN"}}},
           "models": {"apiKey": "sk-live-123456", "name": "x"}, "password": "hunter22"}
    masked = txn.mask_secrets(doc)
    assert masked["gateway"]["auth"]["token"] == {"source": "env", "id": "OPENCLAW_GATEWAY_TOKEN"}
    assert masked["models"] == {"apiKey": txn.MASK, "name": "x"}
    assert masked["password"] == txn.MASK
    assert txn.secret_values(doc) == {"sk-live-123456", "hunter22"}


def test_schema_errors_list_every_violation_with_its_path():
    schema = {"type": "object", "additionalProperties": False,
              "properties": {"port": {"type": "integer"}, "bind": {"enum": ["loopback"]}}}
    errors = txn.schema_errors({"port": "x", "bind": "lan", "extra": 1}, schema)
    assert [e["path"] for e in errors] == ["$", "$.bind", "$.port"]
    assert all(e["source"] == "schema" for e in errors)


def test_command_errors_reads_openclaw_json_issues(tmp_path):
    answer = {"valid": False, "issues": [{"path": "gateway.port", "message": "expected number"}]}

    def run(argv):
        assert os.path.exists(argv[-1])
        return 1, json.dumps(answer), ""
    errors = txn.command_errors(run, "validate %s", b"{}", "openclaw.json")
    assert errors == [{"path": "$.gateway.port", "message": "expected number", "source": "command"}]


def test_command_errors_reports_other_validators_output_tail():
    errors = txn.command_errors(lambda argv: (2, "", "bad thing"), "check %s", b"{}", "x.json")
    assert errors[0]["path"] == "$" and "bad thing" in errors[0]["message"]


def test_backups_rotate_to_keep(tmp_path):
    store = txn.ConfigStore(str(tmp_path / "c.json"), keep=3)
    paths = [store.backup(b"%d" % i) for i in range(6)]
    assert store.backups() == paths[-3:]
    assert [open(p, "rb").read() for p in store.backups()] == [b"3", b"4", b"5"]


def test_write_keeps_mode_and_leaves_no_temp(tmp_path):
    live = tmp_path / "c.json"
    live.write_bytes(b"old")
    os.chmod(live, 0o640)
    txn.ConfigStore(str(live)).write(b"new")
    assert live.read_bytes() == b"new"
    assert oct(os.stat(live).st_mode & 0o777) == oct(0o640)
    assert sorted(os.listdir(tmp_path)) == ["c.json"]


def test_failed_verify_restores_the_previous_bytes_exactly(tmp_path):
    live = tmp_path / "c.json"
    original = b'{\n  // not canonical, kept as it was\n  a: 1,\n}\n'
    live.write_bytes(original)
    store = txn.ConfigStore(str(live))
    calls = []

    def verify():
        calls.append(live.read_bytes())
        return (live.read_bytes() == original), "probe"
    with store.lock():
        outcome = txn.apply_verified(store, b'{"a": 2}\n', restart=None, verify=verify)
    assert outcome["ok"] is False and outcome["recovered"] is True
    assert live.read_bytes() == original
    assert calls == [b'{"a": 2}\n', original]
    assert store.last_good() is None
    assert open(outcome["backup"], "rb").read() == original


def test_the_recovery_has_its_own_probe(tmp_path):
    live = tmp_path / "c.json"
    live.write_bytes(b'{"a": 1}\n')
    store = txn.ConfigStore(str(live))
    with store.lock():
        outcome = txn.apply_verified(store, b'{"a": 2}\n', verify=lambda: (False, "change probe"),
                                     verify_recovery=lambda: (True, "recovery probe"))
    assert outcome["recovered"] is True and outcome["recovery_detail"] == "recovery probe"
    assert live.read_bytes() == b'{"a": 1}\n'


def test_failed_restart_counts_as_failure_and_restarts_again(tmp_path):
    live = tmp_path / "c.json"
    live.write_bytes(b'{"a": 1}\n')
    store = txn.ConfigStore(str(live))
    restarts = []

    def restart():
        restarts.append(live.read_bytes())
        return len(restarts) > 1, "restart %d" % len(restarts)
    outcome = txn.apply_verified(store, b'{"a": 2}\n', restart=restart, verify=None)
    assert outcome["ok"] is False and outcome["recovered"] is True
    assert restarts == [b'{"a": 2}\n', b'{"a": 1}\n']


def test_success_moves_last_good(tmp_path):
    store = txn.ConfigStore(str(tmp_path / "c.json"))
    outcome = txn.apply_verified(store, b"1\n", verify=lambda: (True, "ok"))
    assert outcome["ok"] and outcome["backup"] is None
    assert store.last_good() == b"1\n"


def test_crash_between_temp_write_and_rename_leaves_the_original(tmp_path):
    """A real crash: the writer is SIGKILLed at the rename."""
    live = tmp_path / "c.json"
    live.write_bytes(b'{"a": 1}\n')
    script = textwrap.dedent("""
        import os, signal, sys
        sys.path.insert(0, %r)
        from ansible_collections.agentfleet.vps.plugins.module_utils import config_txn as txn
        live, real_rename = %r, os.rename
        def crash_at_rename(src, dst, **kwargs):
            if dst == os.path.basename(live):
                os.kill(os.getpid(), signal.SIGKILL)
            real_rename(src, dst, **kwargs)
        os.rename = crash_at_rename
        store = txn.ConfigStore(live)
        with store.lock():
            txn.apply_verified(store, b'{"a": 2}\\n')
    """) % (COLLECTIONS, str(live))
    proc = subprocess.run([sys.executable, "-c", script], check=False)
    assert proc.returncode == -9
    assert live.read_bytes() == b'{"a": 1}\n'
    leftovers = [n for n in os.listdir(tmp_path) if n.startswith(".c.json.") and n.endswith(".tmp")]
    assert len(leftovers) == 1  # the fsynced temp file the crash left
    assert (tmp_path / leftovers[0]).read_bytes() == b'{"a": 2}\n'
    store = txn.ConfigStore(str(live))
    with store.lock():
        pass
    assert [n for n in os.listdir(tmp_path) if n.endswith(".tmp")] == []
    assert live.read_bytes() == b'{"a": 1}\n'


def test_lock_serializes_two_writers(tmp_path):
    store_path = str(tmp_path / "c.json")
    events = []
    inside = threading.Event()

    def first():
        with txn.ConfigStore(store_path).lock():
            events.append("first in")
            inside.set()
            threading.Event().wait(0.5)
            events.append("first out")

    def second():
        inside.wait()
        with txn.ConfigStore(store_path).lock():
            events.append("second in")
    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert events == ["first in", "first out", "second in"]


def test_lock_times_out_with_a_message(tmp_path):
    store = txn.ConfigStore(str(tmp_path / "c.json"))
    with store.lock():
        with pytest.raises(txn.ChangeError, match="locked by another change"):
            with txn.ConfigStore(str(tmp_path / "c.json")).lock(timeout=0.3):
                pass


def test_resolve_backup_refuses_paths_outside_the_backup_dir(tmp_path):
    store = txn.ConfigStore(str(tmp_path / "c.json"))
    store.backup(b"x")
    with pytest.raises(txn.ChangeError, match="no backup"):
        store.resolve_backup("../c.json")
    assert store.resolve_backup(os.path.basename(store.backups()[0])) == b"x"


def test_log_appends_one_json_line_per_entry(tmp_path):
    store = txn.ConfigStore(str(tmp_path / "c.json"))
    store.log({"result": "applied"})
    store.log({"result": "rejected"})
    lines = [json.loads(line) for line in open(store.log_path)]
    assert [line["result"] for line in lines] == ["applied", "rejected"]
    assert all(line["file"] == store.path and line["time"] for line in lines)


def test_a_gateway_that_never_answers_cannot_stretch_the_wait(monkeypatch):
    """Each probe of a stopped (SIGSTOP) gateway takes its whole timeout;
    the wait still ends once retries x delay (plus one timeout) are up."""
    now = [0.0]
    calls = []

    def hung_probe(url, status, body, timeout):
        calls.append(timeout)
        now[0] += timeout
        return False, "timed out"

    monkeypatch.setattr(txn, "probe", hung_probe)
    ok, detail = txn.wait_healthy({"url": "http://127.0.0.1:1/readyz", "retries": 480, "delay": 0.25, "timeout": 5},
                                  sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])
    assert not ok and detail == "timed out"
    assert now[0] <= 480 * 0.25 + 5 + 5 + 0.25
    assert len(calls) < 30


def test_a_gone_service_ends_the_wait_with_its_reason(monkeypatch):
    """gone() is asked after a failed probe, every GONE_SECONDS (here every
    8th probe 0.25 s apart); its third answer ends the wait."""
    now, probes, asked = [0.0], [], []
    monkeypatch.setattr(txn, "probe", lambda url, status, body, timeout: probes.append(url) or (False, "refused"))

    def gone():
        asked.append(now[0])
        return "unit failed/failed (result exit-code, exit status 78)" if len(asked) == 3 else None
    ok, detail = txn.wait_healthy({"url": "u", "retries": 1000, "delay": 0.25}, gone=gone,
                                  sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])
    assert not ok and detail == "unit failed/failed (result exit-code, exit status 78); last probe: refused"
    assert asked == [0.0, 2.0, 4.0] and len(probes) == 17


def test_the_recovery_probe_waits_at_least_its_floor():
    assert txn.recovery_probe({"url": "u", "retries": 20, "delay": 2})["retries"] == 90
    assert txn.recovery_probe({"url": "u", "retries": 200, "delay": 2})["retries"] == 200
    assert txn.recovery_probe({"url": "u", "retries": 3, "delay": 0.5}, seconds=10)["retries"] == 20
    # No delay would make the floor a burst of requests: 2 s between them.
    assert txn.recovery_probe({"url": "u", "retries": 3, "delay": 0}) == {"url": "u", "retries": 90, "delay": 2}


@pytest.mark.parametrize("reply", [b"HELLO\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nshort",
                                   b"HTTP/1.1 200 " + b"x" * 70000 + b"\r\n"])
def test_whatever_answers_on_a_gateway_port_is_a_failed_probe_not_a_crash(reply):
    """The agent can stop its gateway and listen on its port itself."""
    import socket
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def answer():
        conn, dummy = server.accept()
        conn.recv(4096)
        conn.sendall(reply)
        conn.close()
    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    ok, detail = txn.readyz(server.getsockname()[1], timeout=5)
    thread.join(5)
    server.close()
    assert ok is False and detail
