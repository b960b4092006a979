"""compile_cache: an agent's processes share one compile cache in its
state directory, root's runs use root's; OpenClaw never re-executes
itself to move it."""

from ansible_collections.agentfleet.vps.plugins.module_utils import compile_cache, fleet_plan


def test_an_agent_s_cache_is_in_its_own_state_directory():
    plan = fleet_plan.build_plan([{"name": "coder", "model": {"primary": "anthropic/claude-sonnet-4-5"}}],
                                 fleet_credentials={"anthropic": ["sk-ant-x"]})
    assert plan[0]["compile_cache"] == plan[0]["state_dir"] + "/compile-cache"
    assert compile_cache.env(plan[0]["compile_cache"]) == {
        "NODE_COMPILE_CACHE": "/home/openclaw-coder/.openclaw-coder/compile-cache",
        "OPENCLAW_PACKAGED_COMPILE_CACHE_RESPAWNED": "1"}


def test_root_s_cache_is_root_s_own():
    assert compile_cache.env()["NODE_COMPILE_CACHE"] == "/var/cache/agentfleet/openclaw-compile-cache"
    assert compile_cache.env_args() == ("NODE_COMPILE_CACHE=/var/cache/agentfleet/openclaw-compile-cache "
                                        "OPENCLAW_PACKAGED_COMPILE_CACHE_RESPAWNED=1")
