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
    "oversight": ["host_programs/audit.py", "host_programs/fleetctl.py"],
    "watchdog": ["host_programs/watchdog.py"],
    "backup": ["host_programs/backup.py"],
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
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(UTILS / name, target / name)
    imports = "; ".join("import %s.%s" % (host_sources.PACKAGE, name[:-3].replace("/", ".")) for name in PROGRAMS[role])
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


def test_host_programs_are_a_package_of_their_own():
    """Every program a role installs is in module_utils/host_programs/, and
    nothing outside that package imports a program (only the modules that
    run one on demand: fleet_audit, agent_restore)."""
    programs = {name for names in PROGRAMS.values() for name in names}
    assert all(name.startswith("host_programs/") for name in programs)
    assert (UTILS / "host_programs" / "__init__.py").read_text() == ""
    for path in UTILS.glob("*.py"):
        assert not any(name.startswith("host_programs/") for name in host_sources.imported(path.name, str(UTILS))), path


@pytest.mark.parametrize("role", sorted(PROGRAMS))
def test_each_role_creates_the_directories_its_sources_go_to(role):
    variables = yaml.safe_load((ROOT / "roles" / role / "vars" / "main.yml").read_text())
    created = {entry["path"] for entry in variables["_%s_directories" % role]}
    for name in host_sources.closure(PROGRAMS[role]):
        parent = str(Path(name).parent)
        wanted = "{{ _%s_module_utils }}" % role + ("" if parent == "." else "/" + parent)
        assert wanted in created, (role, name)


def test_imports_inside_a_package_resolve_to_its_files(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    source = "from . import b\nfrom .. import top\nfrom %s.pkg.c import thing\n" % host_sources.PACKAGE
    (tmp_path / "pkg" / "a.py").write_text(source)
    for name in ("pkg/b.py", "pkg/c.py", "top.py", "unused.py"):
        (tmp_path / name).write_text("thing = 1\n")
    wanted = ["pkg/__init__.py", "pkg/a.py", "pkg/b.py", "pkg/c.py", "top.py"]
    assert host_sources.closure(["pkg/a.py"], str(tmp_path)) == wanted


def test_a_missing_module_fails_the_closure_loudly(tmp_path):
    """A name imported from module_utils itself is a module; one that does
    not exist must stop the install, not be dropped."""
    (tmp_path / "a.py").write_text("from %s import nosuch\n" % host_sources.PACKAGE)
    with pytest.raises(FileNotFoundError):
        host_sources.closure(["a.py"], str(tmp_path))
