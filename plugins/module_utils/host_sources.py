# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which of the collection's module_utils a host program needs on the VPS:
its own file and everything it imports from this package, transitively.
The oversight, watchdog and backup roles install exactly that (the
fleet_host_sources filter), so the list cannot fall behind the code.
Controller side only; read with ast, nothing is imported.
"""

from __future__ import annotations

import ast
import os

PACKAGE = "ansible_collections.agentfleet.vps.plugins.module_utils"
HERE = os.path.dirname(os.path.abspath(__file__))


def imported(name, directory=HERE):
    """The module_utils files that file `name` imports from this package."""
    with open(os.path.join(directory, name), encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), filename=name)
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or not node.module:
            continue
        if node.module == PACKAGE:
            found.update(alias.name + ".py" for alias in node.names)
        elif node.module.startswith(PACKAGE + "."):
            found.add(node.module[len(PACKAGE) + 1:].split(".")[0] + ".py")
    return found


def closure(programs, directory=HERE):
    """programs and every module_utils file they need, sorted."""
    todo, seen = list(programs), set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(imported(name, directory))
    return sorted(seen)
