"""The fleet plan: names, ports, credentials and the generated config."""

import json

import pytest

from ansible_collections.agentfleet.vps.plugins.module_utils import fleet_plan
from ansible_collections.agentfleet.vps.plugins.module_utils.fleet_plan import PlanError, build_plan

KEYS = {"anthropic": ["k1", "k2"]}


def agent(name, **extra):
    entry = {"name": name, "model": {"primary": "anthropic/claude-sonnet-4-5", "fallbacks": ["anthropic/claude-haiku-4-5"]}}
    entry.update(extra)
    return entry


def test_default_ports_follow_base_and_stride():
    plan = build_plan([agent("a"), agent("b"), agent("c")], base=18800, stride=200, fleet_credentials=KEYS)
    assert [e["port"] for e in plan] == [18800, 19000, 19200]
    assert plan[0]["port_range"] == [18800, 18910]


def test_explicit_port_wins():
    plan = build_plan([agent("a", port=30000), agent("b")], fleet_credentials=KEYS)
    assert plan[0]["port"] == 30000


def test_twenty_ports_apart_is_refused_naming_both_agents():
    with pytest.raises(PlanError) as err:
        build_plan([agent("coordinator", port=48520), agent("coder", port=48540)], fleet_credentials=KEYS)
    message = str(err.value)
    assert "agent 'coordinator' uses ports 48520-48630" in message
    assert "agent 'coder' uses ports 48540-48650" in message
    assert "overlap at 48540-48630" in message


def test_ranges_touching_but_disjoint_are_accepted():
    build_plan([agent("a", port=20000), agent("b", port=20111)], fleet_credentials=KEYS)
    with pytest.raises(PlanError):
        build_plan([agent("a", port=20000), agent("b", port=20110)], fleet_credentials=KEYS)


def test_absent_agents_do_not_reserve_ports():
    build_plan([agent("a", port=20000), agent("b", port=20020, state="absent")], fleet_credentials=KEYS)


UIDS = {"openclaw-a": 1001, "openclaw-b": 1002}


def test_foreign_listener_in_range_is_a_clash():
    with pytest.raises(PlanError, match=r"agent 'b' needs ports 19000-19110 but port 19050 is already in use"):
        build_plan([agent("a"), agent("b")], listeners=[(19050, 0)], user_uids=UIDS, fleet_credentials=KEYS)


def test_an_agents_own_listeners_are_its_gateway():
    build_plan([agent("a"), agent("b")], listeners=[(19000, 1002), (19002, 1002), (18800, 1001)], user_uids=UIDS,
               fleet_credentials=KEYS)


def test_another_agents_listener_in_a_range_is_a_clash():
    # Agent a's user holding b's port is not b's gateway.
    with pytest.raises(PlanError, match=r"agent 'b' needs ports 19000-19110 but port 19000 .* \(uid 1001\)"):
        build_plan([agent("a"), agent("b")], listeners=[(19000, 1001)], user_uids=UIDS, fleet_credentials=KEYS)


def test_each_agent_has_its_own_user_home_and_unit_file():
    entry = build_plan([agent("coder-1")], fleet_credentials=KEYS, prefix="oc")[0]
    assert entry["user"] == "oc-coder-1"
    assert entry["home"] == "/home/oc-coder-1"
    assert entry["state_dir"] == "/home/oc-coder-1/.openclaw-coder-1"
    assert entry["unit_file"] == "/home/oc-coder-1/.config/systemd/user/openclaw-gateway-coder-1.service"
    assert entry["store"] is None


def test_each_entry_names_its_config_store_below_the_fleet_store():
    plan = build_plan([agent("coder"), agent("qa", state="absent")], fleet_credentials=KEYS, store="/var/lib/af/config")
    assert [entry["store"] for entry in plan] == ["/var/lib/af/config/coder", "/var/lib/af/config/qa"]


@pytest.mark.parametrize("store", ["", "var/lib/af", "./config"])
def test_a_store_that_is_not_an_absolute_path_is_refused(store):
    # The modules would keep the baseline in the agent's own directory.
    with pytest.raises(PlanError, match="fleet_config_store"):
        build_plan([agent("coder")], fleet_credentials=KEYS, store=store)


def test_a_name_whose_user_would_be_too_long_is_refused():
    build_plan([agent("a" * 23)], fleet_credentials=KEYS)  # openclaw- + 23 = 32
    with pytest.raises(PlanError, match=r"fleet_agents\[0\]\.name='a{24}' is too long: its service user 'openclaw-a{24}'"):
        build_plan([agent("a" * 24)], fleet_credentials=KEYS)


@pytest.mark.parametrize("name", ["Coder", "1coder", "co_der", "", "a" * 33, None])
def test_invalid_profile_names(name):
    with pytest.raises(PlanError, match="not a valid OpenClaw profile name"):
        build_plan([agent(name)], fleet_credentials=KEYS)


def test_duplicate_names():
    with pytest.raises(PlanError, match="'a' is used by more than one agent"):
        build_plan([agent("a"), agent("a", port=30000)], fleet_credentials=KEYS)


@pytest.mark.parametrize("field,value,allowed", [("role", "boss", "coordinator, specialist"), ("state", "gone", "present, absent")])
def test_enumerations(field, value, allowed):
    with pytest.raises(PlanError, match=allowed):
        build_plan([agent("a", **{field: value})], fleet_credentials=KEYS)


def test_missing_key_for_a_fallback_provider():
    broken = agent("coder", model={"primary": "anthropic/claude-sonnet-4-5", "fallbacks": ["xai/grok-4"]})
    with pytest.raises(PlanError, match=r"fallback model 'xai/grok-4' needs a key for provider 'xai'"):
        build_plan([broken], fleet_credentials=KEYS)


def test_agent_credentials_override_fleet_credentials():
    own = agent("a", credentials={"xai": ["x1"]}, model={"primary": "xai/grok-4"})
    assert build_plan([own], fleet_credentials=KEYS)[0]["providers"] == ["xai"]


def test_model_without_provider_is_refused():
    with pytest.raises(PlanError, match="provider/model"):
        build_plan([agent("a", model={"primary": "claude"})], fleet_credentials=KEYS)


def test_gateway_env_has_both_tiers_and_only_used_providers():
    entry = build_plan([agent("a")], fleet_credentials={"anthropic": ["k1", "k2"], "openai": ["o1"]})[0]
    env = fleet_plan.gateway_env(entry, {"anthropic": ["k1", "k2"], "openai": ["o1"]}, token="t")
    assert env == {"OPENCLAW_GATEWAY_TOKEN": "t", "ANTHROPIC_API_KEY": "k1", "ANTHROPIC_API_KEY_2": "k2"}


def test_two_keys_become_ordered_auth_profiles_that_reference_the_env_file():
    creds = {"anthropic": ["k1", "k2"], "openai": ["o1"]}
    entry = build_plan([agent("a", model={"primary": "anthropic/m", "fallbacks": ["openai/n"]})], fleet_credentials=creds)[0]
    assert entry["auth_profiles"] == {"anthropic": [("anthropic:key-1", "ANTHROPIC_API_KEY"),
                                                    ("anthropic:key-2", "ANTHROPIC_API_KEY_2")]}
    config = fleet_plan.openclaw_config(entry, "/s/workspace", "2026.9.6")
    assert config["auth"]["order"] == {"anthropic": ["anthropic:key-1", "anthropic:key-2"]}
    assert config["auth"]["profiles"]["anthropic:key-2"] == {"provider": "anthropic", "mode": "api_key"}
    assert "k1" not in json.dumps(config) and "k2" not in json.dumps(config)
    # One key: no profiles, OpenClaw reads the env variable itself.
    single = build_plan([agent("b")], fleet_credentials={"anthropic": ["k1"]})[0]
    assert single["auth_profiles"] == {} and "auth" not in fleet_plan.openclaw_config(single, "/w", "2026.9.6")


def test_openclaw_config_has_meta_local_loopback_and_token_ref():
    entry = build_plan([agent("a")], fleet_credentials=KEYS)[0]
    config = fleet_plan.openclaw_config(entry, "/s/workspace", "2026.9.6", {"agents": {"defaults": {"bootstrapMaxChars": 30000}}})
    assert config["meta"] == {"lastTouchedVersion": "2026.9.6"}
    assert config["gateway"]["mode"] == "local" and config["gateway"]["bind"] == "loopback"
    assert config["gateway"]["auth"]["token"]["source"] == "env"
    assert config["agents"]["defaults"]["bootstrapMaxChars"] == 30000
    assert config["agents"]["defaults"]["workspace"] == "/s/workspace"
    assert "logging" not in config


def test_the_log_file_is_ours_whatever_the_inventory_says():
    entry = build_plan([agent("coder-1")], fleet_credentials=KEYS)[0]
    extra = {"logging": {"file": "/tmp/openclaw/elsewhere.log", "level": "debug"}}
    config = fleet_plan.openclaw_config(entry, "/s/workspace", "2026.9.6", extra, logs=fleet_plan.log_dir("/s"))
    # OpenClaw rolls a file of this name daily in the same directory.
    assert config["logging"] == {"file": "/s/logs/openclaw-YYYY-MM-DD.log", "level": "debug"}
    assert fleet_plan.log_file_name("2026-11-30") == "openclaw-2026-11-30.log"


def test_parse_listeners_reads_ports_and_uids():
    out = ("LISTEN 0 511 127.0.0.1:18800 0.0.0.0:* uid:1000 ino:1 sk:1 cgroup:/ <->\n"
           "LISTEN 0 128 0.0.0.0:22 0.0.0.0:* ino:2 sk:2 <->\n"
           "LISTEN 0 511 [::1]:18800 [::]:* uid:1000 ino:3 sk:3 <->\n")
    assert fleet_plan.parse_listeners(out) == [(22, 0), (18800, 1000)]


def test_deep_merge_does_not_touch_inputs():
    base = {"a": {"b": 1, "c": [1]}}
    merged = fleet_plan.deep_merge(base, {"a": {"c": [2], "d": 3}})
    assert merged == {"a": {"b": 1, "c": [2], "d": 3}}
    assert base == {"a": {"b": 1, "c": [1]}}


@pytest.mark.parametrize("memory_max, high", [("2G", "1843M"), ("1536M", "1382M"), ("512m", "460M"),
                                              ("infinity", "infinity")])
def test_memory_high_is_nine_tenths_of_memory_max(memory_max, high):
    assert fleet_plan.memory_high(memory_max) == high


def test_units_in_place_needs_every_gateway_enabled_and_running():
    running = {"UnitFileState": "enabled", "ActiveState": "active"}
    states = {"openclaw-gateway-a.service": running, "openclaw-gateway-b.service": dict(running, ActiveState="activating")}
    assert fleet_plan.units_in_place(states, ["a"])
    assert not fleet_plan.units_in_place(states, ["a", "b"])
    # Staging only enables; an agent nobody read is not in place.
    assert fleet_plan.units_in_place(states, ["a", "b"], start=False)
    assert not fleet_plan.units_in_place(states, ["a", "new"], start=False)
