"""The guardrails' readings and the audit rules on them, on this machine's
own process, filesystem and files in tmp_path."""

import os

from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import audit_checks, guardrails

GIB = 1 << 30


def test_memory_from_the_cgroup_else_from_the_agents_own_main_process():
    assert guardrails.gateway_memory({"MemoryCurrent": str(GIB)}, uid=-1) == GIB
    mine = {"MemoryCurrent": "0", "MainPID": str(os.getpid())}
    assert guardrails.gateway_memory(mine, os.getuid()) > 0
    # A PID another user's manager names is not read.
    assert guardrails.gateway_memory(mine, os.getuid() + 1) is None
    assert guardrails.gateway_memory({"MemoryCurrent": str(2 ** 64 - 1), "MainPID": "0"}, 0) is None


def test_over_budget_needs_a_limit_a_share_and_more_than_the_share():
    props = {"MemoryCurrent": str(GIB), "MemoryMax": str(2 * GIB)}
    assert guardrails.over_budget(props, 0, 40) == {"used": GIB, "budget": 2 * GIB * 40 // 100, "limit": 2 * GIB}
    assert guardrails.over_budget(props, 0, 60) is None
    assert guardrails.over_budget(props, 0, 0) is None
    assert guardrails.over_budget(dict(props, MemoryMax="0"), 0, 40) is None


def test_tree_size_does_not_follow_links_and_says_when_it_stopped(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 1000)
    big = tmp_path.parent / (tmp_path.name + "-outside")
    big.write_bytes(b"y" * 100000)
    (tmp_path / "link").symlink_to(big)
    size, complete = guardrails.tree_size(str(tmp_path))
    assert complete and 1000 <= size < 2000
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_bytes(b"x")
    # Two files, a limit of one: the first file walked, and "at least".
    size, complete = guardrails.tree_size(str(tmp_path), limit=1)
    assert not complete and size in (1000, 1)


def agent(tmp_path):
    state = tmp_path / "state"
    (state / "agents" / "main").mkdir(parents=True)
    (state / "agents" / "main" / "openclaw-agent.sqlite").write_bytes(b"z" * 300000)
    return {"name": "coder", "user": "root", "unit": "gw.service", "state_dir": str(state)}


def test_each_rule_fires_past_its_threshold_and_stays_quiet_below(tmp_path):
    agents = [agent(tmp_path)]
    units = {"gw.service": {"MemoryCurrent": str(GIB), "MemoryMax": str(2 * GIB), "MainPID": "1"}}
    quiet = {"disk_paths": [str(tmp_path)], "disk_min_free_percent": 0.001, "memory_budget_percent": 80,
             "session_store_max_mb": 1}
    assert audit_checks.check_guardrails(agents, units, quiet) == []
    low = {"disk_paths": [str(tmp_path)], "disk_min_free_percent": 100, "memory_budget_percent": 10,
           "session_store_max_mb": 0.1}
    found = {f["rule"]: f for f in audit_checks.check_guardrails(agents, units, low)}
    assert sorted(found) == ["disk-low", "memory-over-budget", "session-store-large"]
    assert found["memory-over-budget"]["agent"] == "coder" and found["memory-over-budget"]["evidence"]["used_bytes"] == GIB
    assert found["session-store-large"]["evidence"]["bytes"] == 300000
    assert found["disk-low"]["evidence"]["path"] == str(tmp_path)
    off = {"disk_paths": [str(tmp_path)], "disk_min_free_percent": 0, "memory_budget_percent": 0,
           "session_store_max_mb": 0}
    assert audit_checks.check_guardrails(agents, units, off) == []
