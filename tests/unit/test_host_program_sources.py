"""What the roles install of the module_utils for each host program
(fleet_host_sources, read from the code) is enough to run it: the program
imports with nothing else of the collection on its path, as on the VPS,
where a missing file would be an ImportError found only there."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.agentfleet.vps.plugins.module_utils import host_sources

ROOT = Path(__file__).resolve().parents[2]
UTILS = ROOT / "plugins" / "module_utils"
# role -> the programs it installs
PROGRAMS = {
    "oversight": ["audit.py", "fleetctl.py"],
    "watchdog": ["watchdog.py"],
    "backup": ["backup.py"],
}


def installed_programs(role):
    """The programs the role's _ROLE_sources hands to fleet_host_sources."""
    value = yaml.safe_load((ROOT / "roles" / role / "vars" / "main.yml").read_text())["_%s_sources" % role]
    match = re.fullmatch(r"\{\{ (\[.*\]) \| agentfleet\.vps\.fleet_host_sources \}\}", value)
    assert match, "_%s_sources is not derived from the code: %s" % (role, value)
    return yaml.safe_load(match.group(1))


@pytest.mark.parametrize("role", sorted(PROGRAMS))
def test_each_role_installs_what_its_programs_import_and_they_import_with_only_that(role, tmp_path):
    assert installed_programs(role) == PROGRAMS[role]
    target = tmp_path / "ansible_collections" / "agentfleet" / "vps" / "plugins" / "module_utils"
    target.mkdir(parents=True)
    for name in host_sources.closure(PROGRAMS[role]):
        shutil.copy(UTILS / name, target / name)
    imports = "; ".join("import %s.%s" % (host_sources.PACKAGE, name[:-3]) for name in PROGRAMS[role])
    result = subprocess.run([sys.executable, "-I", "-c", "import sys; sys.path.insert(0, %r); %s" % (str(tmp_path), imports)],
                            capture_output=True, text=True, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_closure_follows_imports_to_the_end(tmp_path):
    (tmp_path / "a.py").write_text("from %s import b\n" % host_sources.PACKAGE)
    (tmp_path / "b.py").write_text("from %s.c import thing\nimport os\n" % host_sources.PACKAGE)
    (tmp_path / "c.py").write_text("thing = 1\n")
    (tmp_path / "d.py").write_text("")
    assert host_sources.closure(["a.py"], str(tmp_path)) == ["a.py", "b.py", "c.py"]


def test_every_form_of_import_counts(tmp_path):
    (tmp_path / "a.py").write_text("import %s.b\n\ndef later():\n    from . import c\n    from .d import thing\n"
                                   % host_sources.PACKAGE)
    for name in "bcd":
        (tmp_path / ("%s.py" % name)).write_text("thing = 1\n")
    assert host_sources.closure(["a.py"], str(tmp_path)) == ["a.py", "b.py", "c.py", "d.py"]
