import pytest

from ansible_collections.agentfleet.vps.plugins.module_utils.fleet_plan import (
    PlanError, running_versions, upgrade_plan, version_key)

UNITS = "/home/openclaw/.config/systemd/user/openclaw-gateway-%s.service"


def exec_line(name, openclaw="2026.9.5", node="24.21.0"):
    return ("%s:ExecStart=/opt/agentfleet/node/%s/bin/node /opt/agentfleet/openclaw/%s/lib/node_modules/openclaw/"
            "openclaw.mjs --profile %s gateway --port 18800" % (UNITS % name, node, openclaw, name))


PLAN = [{"name": "lead", "role": "coordinator", "state": "present"},
        {"name": "coder", "role": "specialist", "state": "present"},
        {"name": "qa", "role": "specialist", "state": "present"},
        {"name": "gone", "role": "specialist", "state": "absent"}]


def test_specialists_move_first_and_the_coordinator_last():
    lines = [exec_line(n) for n in ("lead", "coder", "qa")]
    result = upgrade_plan(PLAN, lines, "2026.9.6", "24.21.0")
    assert result["agents"] == ["coder", "qa", "lead"]
    assert result["from"] == {"openclaw": "2026.9.5", "node": "24.21.0"}
    assert result["downgrade"] is False


def test_agents_already_on_the_target_are_not_moved():
    lines = [exec_line("lead"), exec_line("coder", "2026.9.6"), exec_line("qa")]
    result = upgrade_plan(PLAN, lines, "2026.9.6", "24.21.0")
    assert result["agents"] == ["qa", "lead"]
    assert result["already"] == ["coder"]


def test_nothing_to_move():
    lines = [exec_line(n, "2026.9.6") for n in ("lead", "coder", "qa")]
    result = upgrade_plan(PLAN, lines, "2026.9.6", "24.21.0")
    assert result["agents"] == [] and result["from"] is None and result["downgrade"] is False


def test_a_node_change_alone_moves_every_agent():
    lines = [exec_line(n) for n in ("lead", "coder", "qa")]
    assert upgrade_plan(PLAN, lines, "2026.9.5", "24.22.0")["agents"] == ["coder", "qa", "lead"]


def test_an_older_version_is_a_downgrade():
    lines = [exec_line(n, "2026.9.6") for n in ("lead", "coder", "qa")]
    assert upgrade_plan(PLAN, lines, "2026.9.5", "24.21.0")["downgrade"] is True


def test_an_agent_without_a_unit_is_refused():
    with pytest.raises(PlanError, match="not deployed yet.*qa.*site.yml"):
        upgrade_plan(PLAN, [exec_line("lead"), exec_line("coder")], "2026.9.6", "24.21.0")


def test_agents_on_different_versions_are_refused_naming_them():
    lines = [exec_line("lead"), exec_line("coder", "2026.9.4"), exec_line("qa")]
    with pytest.raises(PlanError, match="coder: OpenClaw 2026.9.4"):
        upgrade_plan(PLAN, lines, "2026.9.6", "24.21.0")


def test_version_order():
    assert version_key("2026.9.5") < version_key("2026.9.6") < version_key("2026.10.1")
    assert version_key("2026.9.1-beta.1") < version_key("2026.9.1")
    assert version_key("24.21.0") < version_key("26.1.0")


def test_running_versions_reads_each_unit_and_skips_other_lines():
    lines = [exec_line("lead", "2026.9.6", "24.21.0"), "/x/other.service:ExecStart=/bin/true",
             UNITS % "qa" + ":ExecStart=/usr/bin/node /srv/openclaw.mjs"]
    assert running_versions(lines) == {"lead": {"openclaw": "2026.9.6", "node": "24.21.0"}}
