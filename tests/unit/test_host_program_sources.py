"""The module_utils each host program imports, all of them, are in the
list its role copies to the host (a missing one is an ImportError on the
VPS, found only there)."""

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
UTILS = ROOT / "plugins" / "module_utils"
PREFIX = "ansible_collections.agentfleet.vps.plugins.module_utils"
# role -> (its list variable, the programs it installs)
PROGRAMS = {
    "oversight": ("_oversight_sources", ["audit.py", "fleetctl.py"]),
    "watchdog": ("_watchdog_sources", ["watchdog.py"]),
    "backup": ("_backup_sources", ["backup.py"]),
}


def imported(name):
    tree = ast.parse((UTILS / name).read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == PREFIX:
            found.update(alias.name + ".py" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PREFIX + "."):
            found.add(node.module.rsplit(".", 1)[1] + ".py")
    return found


def closure(names):
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(imported(name))
    return seen


@pytest.mark.parametrize("role", sorted(PROGRAMS))
def test_every_module_a_host_program_imports_is_installed(role):
    variable, programs = PROGRAMS[role]
    listed = set(yaml.safe_load((ROOT / "roles" / role / "vars" / "main.yml").read_text())[variable])
    assert closure(programs) - listed == set()
