"""host_facts: one read of users, ports, gateway units, paths, packages
and system units; no link an agent put in its home is followed."""

import hashlib
import hmac
import json
import os
import pwd

import pytest

from ansible_collections.agentfleet.vps.plugins.module_utils import files
from ansible_collections.agentfleet.vps.plugins.modules import host_facts

UNIT = "[Unit]\nDescription=x\n[Service]\nExecStart=/opt/agentfleet/node/%s/bin/node /opt/agentfleet/openclaw/%s/x.mjs\n"


class FakeCommands:
    def __init__(self, states=None, installed=()):
        self.states, self.installed, self.calls = states or {}, installed, []

    def __call__(self, argv, **kwargs):
        self.calls.append(argv)
        if argv[:2] == ["systemctl", "show"]:
            blocks = []
            for unit in argv[3:]:
                props = self.states.get(unit, {"ActiveState": "inactive", "UnitFileState": ""})
                blocks.append("Id=%s\n%s" % (unit, "\n".join("%s=%s" % kv for kv in props.items())))
            return 0, "\n\n".join(blocks) + "\n", ""
        if argv[0] == "dpkg-query":
            return 1, "".join("%s ii \n" % name for name in argv[4:] if name in self.installed), "no packages found"
        if argv[0] == "runuser":  # an agent's own manager: down for lead-1, forging for coder
            if argv[2] != "openclaw-coder":
                return 1, "", "Failed to connect to bus"
            return 0, ("Id=openclaw-gateway-coder.service\nActiveState=active\nUnitFileState=enabled\nMainPID=42\n\n"
                       "Id=openclaw-gateway-lead-1.service\nActiveState=active\nUnitFileState=enabled\n"), ""
        if argv[0] == "ss":
            return 0, "LISTEN 0 511 127.0.0.1:18789 0.0.0.0:* uid:1001 ino:1 sk:1\n", ""
        raise AssertionError(argv)


@pytest.fixture
def host(tmp_path, monkeypatch):
    """Two agent users with homes under tmp_path, and root."""
    homes = {name: tmp_path / name for name in ("openclaw-coder", "openclaw-lead-1")}
    entries = [pwd.struct_passwd((name, "x", 1001 + i, 1001 + i, "", str(home), "/bin/bash"))
               for i, (name, home) in enumerate(homes.items())]
    entries.append(pwd.struct_passwd(("root", "x", 0, 0, "root", "/root", "/bin/bash")))
    monkeypatch.setattr(host_facts.pwd, "getpwall", lambda: entries)
    linger = tmp_path / "linger"
    linger.mkdir()
    (linger / "openclaw-coder").touch()
    monkeypatch.setattr(host_facts, "LINGER_DIR", str(linger))
    fake = FakeCommands({"user@1001.service": {"ActiveState": "active", "UnitFileState": "static"},
                         "cron.service": {"ActiveState": "active", "UnitFileState": "enabled"}}, installed=("cron",))
    monkeypatch.setattr(host_facts.AnsibleModule, "run_command", lambda self, argv, **kw: fake(argv, **kw))
    monkeypatch.setattr(host_facts.AnsibleModule, "get_bin_path", lambda self, name, *a, **kw: "/usr/bin/" + name)
    monkeypatch.setattr(host_facts, "system", lambda: {"distribution": "Debian", "version": "13", "os_family": "Debian",
                                                       "service_mgr": "systemd"})
    for home in homes.values():
        (home / ".config/systemd/user").mkdir(parents=True)
    return homes, fake


def unit_dir(home):
    return home / ".config/systemd/user"


def test_users_lingering_and_managers_in_one_systemctl_call(host, run_module):
    homes, fake = host
    result = run_module(host_facts, {"users": ["openclaw-coder", "openclaw-lead-1", "openclaw-new"]})
    assert result["changed"] is False
    assert result["users"]["openclaw-coder"] == {"exists": True, "uid": 1001, "home": str(homes["openclaw-coder"]),
                                                 "lingering": True, "manager": "active"}
    assert result["users"]["openclaw-lead-1"]["lingering"] is False
    assert result["users"]["openclaw-lead-1"]["manager"] == "inactive"
    assert result["users"]["openclaw-new"] == {"exists": False, "uid": None, "home": None, "lingering": False,
                                               "manager": "missing"}
    assert result["ansible_facts"]["getent_passwd"]["openclaw-coder"][1] == "1001"
    assert [c[:2] for c in fake.calls] == [["systemctl", "show"]]


def test_gateway_units_and_the_exec_start_of_each_agents_own_unit(host, run_module):
    homes, dummy = host
    (unit_dir(homes["openclaw-coder"]) / "openclaw-gateway-coder.service").write_text(UNIT % ("24.21.0", "2026.9.6"))
    (unit_dir(homes["openclaw-lead-1"]) / "openclaw-gateway-lead-1.service").write_text(UNIT % ("24.21.0", "2026.9.6"))
    # coder plants a newer "unit" of lead-1 in its own directory: listed
    # (an orphan to warn about) but never read as lead-1's version.
    (unit_dir(homes["openclaw-coder"]) / "openclaw-gateway-lead-1.service").write_text(UNIT % ("99.0.0", "2099.1.1"))
    result = run_module(host_facts, {"agent_user_prefix": "openclaw-", "listeners": True})
    assert sorted(os.path.basename(p) for p in result["gateway_units"]) == [
        "openclaw-gateway-coder.service", "openclaw-gateway-lead-1.service", "openclaw-gateway-lead-1.service"]
    assert len(result["exec_start"]) == 2
    assert not any("2099" in line for line in result["exec_start"])
    assert result["exec_start"][0].startswith(str(unit_dir(homes["openclaw-coder"])) + "/openclaw-gateway-coder.service:ExecStart=")
    assert "127.0.0.1:18789" in result["listeners"]


def test_gateway_states_from_each_agents_own_manager(host, run_module, monkeypatch):
    homes, fake = host
    uids = {"openclaw-coder": 1001, "openclaw-lead-1": 1002}
    monkeypatch.setattr(host_facts.pwd, "getpwnam",
                        lambda name: pwd.struct_passwd((name, "x", uids[name], uids[name], "", "/h", "/bin/sh")))
    timeouts = []
    monkeypatch.setattr(host_facts.systemd_user, "run_command",
                        lambda argv, environ_update=None, timeout=None: timeouts.append(timeout) or fake(argv))
    for user, name in (("openclaw-coder", "coder"), ("openclaw-lead-1", "lead-1")):
        (unit_dir(homes[user]) / ("openclaw-gateway-%s.service" % name)).write_text(UNIT % ("24.21.0", "2026.9.6"))
    result = run_module(host_facts, {"agent_user_prefix": "openclaw-", "gateway_states": True})
    # lead-1's manager is down: no state; coder's claim about lead-1 is ignored.
    assert result["gateway_states"] == {"openclaw-gateway-coder.service": {
        "Id": "openclaw-gateway-coder.service", "ActiveState": "active", "UnitFileState": "enabled", "MainPID": "42"}}
    asked = [c for c in fake.calls if c[0] == "runuser"]
    assert sorted(c[2] for c in asked) == ["openclaw-coder", "openclaw-lead-1"]
    # A manager the agent holds still costs a bounded wait.
    assert timeouts == [host_facts.MANAGER_TIMEOUT] * 2
    # Not asked for, not read.
    fake.calls.clear()
    assert run_module(host_facts, {"agent_user_prefix": "openclaw-"})["gateway_states"] == {}
    assert not [c for c in fake.calls if c[0] == "runuser"]


def test_a_link_in_an_agents_home_is_not_followed(host, run_module, tmp_path):
    homes, dummy = host
    secret = tmp_path / "shadow"
    secret.write_text("ExecStart=root:secret-hash\n")
    os.symlink(secret, unit_dir(homes["openclaw-coder"]) / "openclaw-gateway-coder.service")
    # lead-1 swaps its whole unit directory for a link
    target = unit_dir(homes["openclaw-lead-1"])
    os.rmdir(target)
    os.symlink(tmp_path, target)
    result = run_module(host_facts, {"agent_user_prefix": "openclaw-"})
    assert result["exec_start"] == []
    assert [os.path.basename(p) for p in result["gateway_units"]] == ["openclaw-gateway-coder.service"]


def test_paths_packages_and_services(host, run_module, tmp_path):
    (tmp_path / "node-24").mkdir()
    os.symlink(tmp_path / "node-24", tmp_path / "current")
    result = run_module(host_facts, {"paths": [str(tmp_path / "current"), str(tmp_path / "node-24"), str(tmp_path / "nope")],
                                     "packages": ["cron", "iproute2"], "services": ["cron.service", "nothing.service"]})
    current = result["paths"][str(tmp_path / "current")]
    assert (current["exists"], current["link"], current["type"], current["sha256"]) == (True, str(tmp_path / "node-24"), "link", None)
    node = result["paths"][str(tmp_path / "node-24")]
    assert (node["exists"], node["link"], node["type"]) == (True, None, "directory")
    assert result["paths"][str(tmp_path / "nope")]["exists"] is False
    assert result["paths"][str(tmp_path / "nope")]["link"] is None
    assert result["packages_missing"] == ["iproute2"]
    assert result["packages_installed"] == ["cron"]
    assert result["services"] == {"cron.service": {"enabled": "enabled", "active": "active"},
                                  "nothing.service": {"enabled": "", "active": "inactive"}}


def test_nothing_asked_nothing_run(host, run_module):
    dummy, fake = host
    result = run_module(host_facts, {})
    assert fake.calls == []
    assert result["exec_start"] == [] and result["users"] == {} and result["listeners"] == ""


@pytest.mark.parametrize("text, family, distribution", [
    ('PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nID=debian\nVERSION_ID="13"\n', "Debian", "Debian"),
    ('ID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\n', "Debian", "Ubuntu"),
    ('ID="rocky"\nID_LIKE="rhel centos fedora"\n', "Rocky", "Rocky"),
])
def test_the_distribution_and_its_family_from_os_release(tmp_path, text, family, distribution):
    (tmp_path / "os-release").write_text(text)
    assert host_facts.distribution(host_facts.os_release(str(tmp_path / "os-release"))) == (distribution, family)


def test_without_systemd_as_init_no_unit_is_asked_about(host, run_module, monkeypatch):
    dummy, fake = host
    monkeypatch.setattr(host_facts, "system", lambda: {"distribution": "Debian", "version": "12", "os_family": "Debian",
                                                       "service_mgr": "sleep"})
    result = run_module(host_facts, {"users": ["openclaw-coder"], "services": ["cron.service"]})
    assert fake.calls == []
    assert result["system"]["service_mgr"] == "sleep"
    assert result["services"]["cron.service"] == {"enabled": "", "active": "inactive"}


def test_a_fifo_a_flood_and_odd_names_in_a_unit_directory_are_bounded(host, run_module):
    homes, dummy = host
    coder = unit_dir(homes["openclaw-coder"])
    os.mkfifo(coder / "openclaw-gateway-coder.service")  # would block root's open() for good
    lead = unit_dir(homes["openclaw-lead-1"])
    (lead / "openclaw-gateway-lead-1.service").write_text(UNIT % ("24.21.0", "2026.9.6"))
    for index in range(200):
        (lead / ("openclaw-gateway-zz%03d.service" % index)).touch()
    (lead / "openclaw-gateway-Evil$(reboot).service").touch()
    os.mkdir(os.fsencode(lead) + b"/openclaw-gateway-\xff.service")
    result = run_module(host_facts, {"agent_user_prefix": "openclaw-"})
    names = [os.path.basename(p) for p in result["gateway_units"]]
    assert "openclaw-gateway-coder.service" in names
    assert len([n for n in names if "zz" in n]) == host_facts.UNITS_PER_USER - 1
    assert "openclaw-gateway-lead-1.service" in names
    assert not [n for n in names if "Evil" in n or "\udcff" in n]
    assert [line.split(":ExecStart=")[0].rsplit("/", 1)[-1] for line in result["exec_start"]] == [
        "openclaw-gateway-lead-1.service"]


def test_root_files_are_reported_with_mode_owner_and_checksum(host, run_module, tmp_path):
    command = tmp_path / "openclaw"
    command.write_bytes(b"#!/bin/sh\nexec node\n")
    command.chmod(0o755)
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "big").write_bytes(b"x" * (host_facts.CHECKSUM_LIMIT + 1))
    os.symlink(command, tmp_path / "link")
    result = run_module(host_facts, {"paths": [str(tmp_path / n) for n in ("openclaw", "fifo", "big", "link")]})
    state = result["paths"][str(command)]
    assert state["type"] == "file" and state["mode"] == "0755" and state["uid"] == os.getuid() and state["nlink"] == 1
    assert state["sha256"] == hashlib.sha256(b"#!/bin/sh\nexec node\n").hexdigest()
    os.link(command, tmp_path / "second-name")
    assert run_module(host_facts, {"paths": [str(command)]})["paths"][str(command)]["nlink"] == 2
    # a FIFO is never opened (it would block), a big file and a link never read
    assert result["paths"][str(tmp_path / "fifo")]["type"] == "other"
    assert [result["paths"][str(tmp_path / n)]["sha256"] for n in ("fifo", "big", "link")] == [None, None, None]


def test_with_a_key_checksums_are_keyed_and_the_key_is_never_returned(host, run_module, tmp_path):
    secrets = tmp_path / "secrets.json"
    secrets.write_bytes(b'{"webhook_url": "https://hooks.example/T0/B0/abc"}\n')
    secrets.chmod(0o600)
    key = "k3y-of-this-run-only"
    result = run_module(host_facts, {"paths": [str(secrets)], "checksum_key": key})
    digest = result["paths"][str(secrets)]["sha256"]
    assert digest == hmac.new(key.encode(), secrets.read_bytes(), hashlib.sha256).hexdigest()
    assert digest != hashlib.sha256(secrets.read_bytes()).hexdigest()
    assert key not in json.dumps(result)
    # what a role compares it with, on the controller
    wanted = {"path": str(secrets), "mode": "0600", "content": secrets.read_text()}
    states = {p: dict(s, uid=0, gid=0) for p, s in result["paths"].items()}
    assert files.in_place(states, files=[wanted], key=key)
    assert not files.in_place(states, files=[wanted])
    assert not files.in_place(states, files=[wanted], key="another run's key")
    # an empty key is still a key: never the plain sha256
    empty = run_module(host_facts, {"paths": [str(secrets)], "checksum_key": ""})["paths"][str(secrets)]["sha256"]
    assert empty != hashlib.sha256(secrets.read_bytes()).hexdigest()


@pytest.fixture
def gateway():
    """A gateway's /readyz on a free port; answer() sets what it says."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = gateway_state["body"].encode()
            self.send_response(200 if self.path == "/readyz" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass
    gateway_state = {"body": '{"ready": true}'}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], gateway_state
    server.shutdown()


def test_each_active_gateway_is_asked_for_readiness_on_its_units_port(host, run_module, monkeypatch, gateway):
    homes, fake = host
    port, answer = gateway
    monkeypatch.setattr(host_facts.pwd, "getpwnam", lambda name: pwd.struct_passwd((name, "x", 1001, 1001, "", "/h", "/bin/sh")))
    monkeypatch.setattr(host_facts.systemd_user, "run_command", lambda argv, environ_update=None, timeout=None: fake(argv))
    line = "[Service]\nExecStart=/opt/agentfleet/node/24.21.0/bin/node /x/openclaw.mjs --profile %s gateway --port %d\n"
    (unit_dir(homes["openclaw-coder"]) / "openclaw-gateway-coder.service").write_text(line % ("coder", port))
    # lead-1's manager does not answer: no state, so no probe either.
    (unit_dir(homes["openclaw-lead-1"]) / "openclaw-gateway-lead-1.service").write_text(line % ("lead-1", port))
    args = {"agent_user_prefix": "openclaw-", "gateway_states": True, "gateway_probe": True}
    assert run_module(host_facts, args)["gateway_ready"] == {"openclaw-gateway-coder.service": {"port": port, "ready": True}}
    answer["body"] = '{"ready": false, "failing": ["startup"]}'
    assert run_module(host_facts, args)["gateway_ready"]["openclaw-gateway-coder.service"]["ready"] is False
    # Not asked for: no request at all.
    assert run_module(host_facts, dict(args, gateway_probe=False))["gateway_ready"] == {}


@pytest.mark.parametrize("command, port", [
    ("/n /o.mjs --profile a gateway --port 19000", 19000),
    ("/n /o.mjs --profile a gateway --port 19000 --verbose", 19000),
    ("/n /o.mjs --profile a gateway", None),
    ("/n /o.mjs --profile a gateway --port 99999", None),
    ("/n /o.mjs --profile a gateway --port=19000x", None),
])
def test_the_port_of_an_exec_start_line(command, port):
    assert host_facts.unit_port(command) == port


def _store(tmp_path, monkeypatch, statements):
    import sqlite3
    from ansible_collections.agentfleet.vps.plugins.module_utils import auth_store, fleet_plan
    monkeypatch.setattr(fleet_plan, "HOME_BASE", str(tmp_path))
    path = auth_store.store_path(str(tmp_path / "openclaw-coder" / ".openclaw-coder"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        os.unlink(path)
    conn = sqlite3.connect(path)
    for statement, *params in statements:
        conn.execute(statement, *params)
    conn.commit()
    conn.close()


TABLE = "CREATE TABLE auth_profile_store (store_key TEXT PRIMARY KEY, store_json TEXT, updated_at INTEGER)"
GOOD = {"type": "api_key", "provider": "anthropic",
        "keyRef": {"source": "env", "provider": "default", "id": "ANTHROPIC_API_KEY"}}


def test_auth_profiles_report_references_never_keys(host, run_module, monkeypatch, tmp_path):
    profiles = {"anthropic:key-1": GOOD,
                # what an agent (or OpenClaw) may keep in its own store: keys, and text of its choosing
                "anthropic:key-2": dict(GOOD, key="sk-ant-SECRET", token="tok-SECRET"),
                "anthropic:plain": dict(GOOD, keyRef={"source": "env", "provider": "default", "id": "sk-ant-SECRET"}),
                "sk-ant-SECRET-as-an-id!": GOOD,
                "anthropic:odd": dict(GOOD, provider="sk ant SECRET")}
    insert = ("INSERT INTO auth_profile_store VALUES ('primary', ?, 0)", (json.dumps({"profiles": profiles}),))
    _store(tmp_path, monkeypatch, [(TABLE,), insert])
    result = run_module(host_facts, {"agent_user_prefix": "openclaw-", "auth_profiles": True})
    assert result["auth_profiles"]["coder"] == {"anthropic:key-1": GOOD, "anthropic:key-2": GOOD}
    assert "SECRET" not in json.dumps(result)
    # lead-1 has no store: nothing in it.
    assert result["auth_profiles"]["lead-1"] == {}
    assert run_module(host_facts, {"agent_user_prefix": "openclaw-"})["auth_profiles"] == {}


@pytest.mark.parametrize("statements", [
    # a view that computes forever
    [("CREATE VIEW auth_profile_store AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
      "SELECT '{}' AS store_json FROM c",)],
    # rows that are not a store document
    [(TABLE,), ("INSERT INTO auth_profile_store VALUES ('a', NULL, 0)",), ("INSERT INTO auth_profile_store VALUES ('b', 5, 0)",)],
    [(TABLE,), ("INSERT INTO auth_profile_store VALUES ('a', ?, 0)", ('{"profiles": [1]}',))],
    [(TABLE,), ("INSERT INTO auth_profile_store VALUES ('a', ?, 0)", ("[" * 200000 + "]" * 200000,))],
    # more profiles than are reported: none, so the role writes them once more
    [(TABLE,), ("INSERT INTO auth_profile_store VALUES ('a', ?, 0)",
                (json.dumps({"profiles": {"p%d" % i: GOOD for i in range(host_facts.PROFILES_PER_AGENT + 1)}}),))],
], ids=["endless-view", "not-json", "not-a-dict", "too-deep", "too-many"])
def test_a_hostile_auth_store_gives_nothing_and_ends(host, run_module, monkeypatch, tmp_path, statements):
    _store(tmp_path, monkeypatch, statements)
    result = run_module(host_facts, {"agent_user_prefix": "openclaw-", "auth_profiles": True})
    assert result["auth_profiles"]["coder"] == {}
