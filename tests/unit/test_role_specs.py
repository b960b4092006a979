"""Each role's argument spec documents exactly the variables it defaults.

A default without a spec entry is a variable nobody can discover with
ansible-doc; a spec entry without a default (and not required) is a
documented variable that silently does nothing.
"""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir())


def load(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def spec_options(role):
    specs = load(ROOT / "roles" / role / "meta" / "argument_specs.yml")
    return specs["argument_specs"]["main"].get("options") or {}


def defaults(role):
    return load(ROOT / "roles" / role / "defaults" / "main.yml") or {}


BRIEF_ROLES = ("runtime", "agents", "constitution", "oversight", "watchdog")
# Day-2 roles beyond the brief's five, applied after them.
EXTRA_ROLES = ("backup",)
# The shared fleet_* settings: every other role depends on it.
SHARED_ROLE = "fleet"


def test_the_five_roles_of_the_brief_exist():
    assert ROLES == sorted(BRIEF_ROLES + EXTRA_ROLES + (SHARED_ROLE,))


@pytest.mark.parametrize("role", BRIEF_ROLES + EXTRA_ROLES)
def test_every_role_depends_on_the_shared_settings(role):
    meta = load(ROOT / "roles" / role / "meta" / "main.yml")
    assert meta["dependencies"] == [{"role": "agentfleet.vps." + SHARED_ROLE}]


@pytest.mark.parametrize("role", ROLES)
def test_spec_and_defaults_name_the_same_variables(role):
    options = spec_options(role)
    optional = {name for name, opt in options.items() if not opt.get("required")}
    assert set(defaults(role)) == optional


@pytest.mark.parametrize("role", ROLES)
def test_spec_defaults_equal_role_defaults(role):
    options = spec_options(role)
    for name, value in defaults(role).items():
        assert options[name].get("default") == value, name


@pytest.mark.parametrize("role", ROLES)
def test_role_variables_are_prefixed(role):
    """fleet_* settings have one home: only the shared role defaults or
    documents them, in any of its entry points."""
    specs = load(ROOT / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"]
    names = set(defaults(role)).union(*(entry.get("options") or {} for entry in specs.values()))
    for name in names:
        assert name.startswith(role + "_"), name


@pytest.mark.parametrize("role", ROLES)
def test_role_has_readme_and_matching_meta(role):
    assert (ROOT / "roles" / role / "README.md").is_file()
    meta = load(ROOT / "roles" / role / "meta" / "main.yml")
    assert meta["galaxy_info"]["role_name"] == role
    assert meta["galaxy_info"]["namespace"] == "agentfleet"


@pytest.mark.parametrize("role", BRIEF_ROLES + EXTRA_ROLES)
def test_site_playbook_applies_role(role):
    site = load(ROOT / "playbooks" / "site.yml")
    applied = [entry["role"] for play in site for entry in play.get("roles", [])]
    assert f"agentfleet.vps.{role}" in applied


def test_site_playbook_order_matches_brief():
    site = load(ROOT / "playbooks" / "site.yml")
    applied = [entry["role"] for play in site for entry in play.get("roles", [])]
    assert applied == [f"agentfleet.vps.{r}" for r in BRIEF_ROLES + EXTRA_ROLES]
