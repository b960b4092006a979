"""The oversight scenario's checks use the helpers in molecule/shared,
and one fake endpoint per test file: the agents' model provider, the
reviewer's and the watchdog's LLM, and the alert webhook."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
# The collection from this checkout, for the renderings the tests compare.
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "collections"))

from fleet_checks import FakeEndpoint  # noqa: E402 (after the path)

REVIEWER_MODEL = "fake-cheap-model"
WATCHDOG_MODEL = "fake-fast-model"
RESTART = json.dumps({"diagnosis": "The gateway process is not running; a restart should bring it back.",
                      "action": "restart"})


@pytest.fixture(scope="module")
def endpoint(host):
    """Started in the instance for a test file and stopped after it. The
    agents' models answer "ok", the reviewer finds nothing, the watchdog's
    LLM says restart."""
    fake = FakeEndpoint(host, 18999).start("ok", answers={REVIEWER_MODEL: '{"findings": []}', WATCHDOG_MODEL: RESTART})
    yield fake
    fake.stop()
