"""Make `ansible_collections.agentfleet.vps` importable from this checkout."""

import sys
from pathlib import Path

COLLECTIONS = Path(__file__).resolve().parents[2] / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
