"""The default scenario's checks use the helpers in molecule/shared."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))

from fleet_checks import (FLEET_USER, HOME, ROOT, agent_names, fleet_agents, main_pids,  # noqa: E402,F401
                          readyz, run_playbook, task_results, unit, unit_props, user_systemctl, wait_until)


@pytest.fixture(scope="module")
def agents():
    return fleet_agents()
