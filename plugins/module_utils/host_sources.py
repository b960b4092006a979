# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which of the collection's module_utils a host program needs on the VPS:
its own file and everything it imports from this package, transitively,
with the __init__.py of each package on the way. The programs live in
module_utils/host_programs/; the oversight, watchdog and backup roles
install exactly what this returns (the fleet_host_sources filter), so the
list cannot fall behind the code. Controller side only; read with ast,
nothing is imported. Names are paths below module_utils, e.g.
host_programs/audit.py.
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
    y`, `from .. import x`; anywhere in the file, a function's body
    included."""
    with open(os.path.join(directory, name), encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), filename=name)
    package = name.split("/")[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE + "."):
                    found.update(_files(alias.name[len(PACKAGE) + 1:].split("."), directory))
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, package)
            if module is None:
                continue
            for alias in node.names:
                # `from M import n`: n is a module of package M, or a name M defines.
                submodule = module + [alias.name]
                # module_utils itself defines no names: a name from it is a module.
                if not module or _source(submodule, directory):
                    found.update(_files(submodule, directory))
                else:
                    found.update(_files(module, directory))
    return found


def _absolute(node, package):
    """The module an ImportFrom names, as parts below PACKAGE; None when it
    is not ours."""
    if node.level:
        if node.level - 1 > len(package):
            return None
        base = package[:len(package) - (node.level - 1)]
        return base + (node.module.split(".") if node.module else [])
    module = node.module or ""
    if module == PACKAGE:
        return []
    if module.startswith(PACKAGE + "."):
        return module[len(PACKAGE) + 1:].split(".")
    return None


def _source(parts, directory):
    """The file of a module or package, or None."""
    for candidate in ("/".join(parts) + ".py", "/".join(parts + ["__init__.py"])):
        if os.path.isfile(os.path.join(directory, candidate)):
            return candidate
    return None


def _files(parts, directory):
    """A module's file (its .py path even when missing, so the closure
    fails loudly on a name it cannot find) and the __init__.py of each
    package above it."""
    return {_source(parts, directory) or "/".join(parts) + ".py"} | _packages(parts[:-1], directory)


def _packages(parts, directory):
    return {init for init in ("/".join(parts[:i] + ["__init__.py"]) for i in range(1, len(parts) + 1))
            if os.path.isfile(os.path.join(directory, init))}


def closure(programs, directory=HERE):
    """programs, the __init__.py of their packages and every module_utils
    file they need, sorted."""
    todo, seen = list(programs), set()
    for name in programs:
        todo.extend(_packages(name.split("/")[:-1], directory))
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(imported(name, directory))
    return sorted(seen)
