"""The default scenario's checks use the helpers in molecule/shared."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))

from fleet_checks import fleet_agents  # noqa: E402


@pytest.fixture(scope="module")
def agents():
    return fleet_agents()
