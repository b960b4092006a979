"""fleet_read: from the one host read, that a re-run needs no call for
readiness or auth profiles."""

from ansible_collections.agentfleet.vps.plugins.module_utils import files, fleet_plan, fleet_read

KEY = "run-secret"
STORE = "/var/lib/agentfleet/config"
CONFIG = '{"gateway": {"port": 19000}}\n'
# The plan as the agents role has it: its entries name the unit and the config.
PLAN = [dict(entry, auth_profiles={"anthropic": [["anthropic:key-1", "ANTHROPIC_API_KEY"]]}) for entry in fleet_plan.build_plan(
    [{"name": "coder", "port": 19000, "model": {"primary": "anthropic/claude-sonnet-4-5"}}], fleet_credentials={"anthropic": ["k"]}, store=STORE)]
WRITTEN = [{"path": "/home/openclaw-coder/.openclaw-coder/openclaw.json", "content": CONFIG}]
LAST_GOOD = STORE + "/coder/openclaw.json.last-good"


def read(**changes):
    answer = {"gateway_ready": {"openclaw-gateway-coder.service": {"port": 19000, "ready": True}},
              "paths": {LAST_GOOD: {"exists": True, "type": "file", "mode": "0600", "uid": 0, "gid": 0, "nlink": 1,
                                    "sha256": files.digest(CONFIG.encode(), KEY)}}}
    answer.update(changes)
    return answer


def test_the_last_good_paths_of_present_agents():
    agents = [{"name": "coder"}, {"name": "qa", "state": "absent"}]
    assert fleet_read.last_good_paths(agents, STORE, "openclaw") == [LAST_GOOD]


def test_ready_in_place_only_when_every_part_of_the_read_agrees():
    assert fleet_read.ready_in_place(PLAN, read(), WRITTEN, KEY) is True
    not_ready = {"openclaw-gateway-coder.service": {"port": 19000, "ready": False}}
    other_port = {"openclaw-gateway-coder.service": {"port": 18800, "ready": True}}
    for answer in (read(gateway_ready=not_ready), read(gateway_ready=other_port), read(gateway_ready={}), read(paths={})):
        assert fleet_read.ready_in_place(PLAN, answer, WRITTEN, KEY) is False
    # The last good copy is another config, readable by others, or keyed otherwise.
    drifted = read()["paths"][LAST_GOOD]
    for change in ({"sha256": files.digest(b"{}\n", KEY)}, {"mode": "0644"}, {"uid": 1001}, {"nlink": 2}):
        assert fleet_read.ready_in_place(PLAN, read(paths={LAST_GOOD: dict(drifted, **change)}), WRITTEN, KEY) is False
    assert fleet_read.ready_in_place(PLAN, read(), WRITTEN, "another run") is False
    # No rendered config for the agent (its files task did not run).
    assert fleet_read.ready_in_place(PLAN, read(), [], KEY) is False


def test_auth_in_place_when_each_wanted_reference_is_stored():
    ref = {"source": "env", "provider": "default", "id": "ANTHROPIC_API_KEY"}
    stored = {"coder": {"anthropic:key-1": {"type": "api_key", "provider": "anthropic", "keyRef": ref}}}
    assert fleet_read.auth_in_place(PLAN, stored) is True
    assert fleet_read.auth_in_place(PLAN, {}) is False
    moved = {"coder": {"anthropic:key-1": {"type": "api_key", "provider": "anthropic", "keyRef": dict(ref, id="OTHER")}}}
    assert fleet_read.auth_in_place(PLAN, moved) is False
    # An agent without auth profiles needs none.
    assert fleet_read.auth_in_place([dict(PLAN[0], auth_profiles={})], {}) is True
