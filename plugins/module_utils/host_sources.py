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
    """The module_utils files that file `name` imports from this package,
    in any form: `from PACKAGE import x`, `from PACKAGE.x import y`,
    `import PACKAGE.x` and the relative `from . import x`, `from .x import
    y`; anywhere in the file, a function's body included."""
    with open(os.path.join(directory, name), encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), filename=name)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(_file_of(alias.name[len(PACKAGE) + 1:]) for alias in node.names
                         if alias.name.startswith(PACKAGE + "."))
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                module = PACKAGE + ("." + module if module else "")
            if module == PACKAGE:
                found.update(_file_of(alias.name) for alias in node.names)
            elif module.startswith(PACKAGE + "."):
                found.add(_file_of(module[len(PACKAGE) + 1:]))
    return found


def _file_of(dotted):
    return dotted.split(".")[0] + ".py"


def closure(programs, directory=HERE):
    """programs and every module_utils file they need, sorted."""
    todo, seen = list(programs), set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(imported(name, directory))
    return sorted(seen)
