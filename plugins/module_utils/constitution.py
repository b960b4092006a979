# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The constitution: articles per agent, the penalty ledger, amendments,
and the Markdown every agent loads at session start.

Shared by the constitution_files module (the role) and the violation
module, so a new ledger entry renders exactly what the next deploy would.
Standard library only (and files.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat

from ansible_collections.agentfleet.vps.plugins.module_utils import fileops

BLOCK_BEGIN = "<!-- BEGIN agentfleet.vps constitution: managed by Ansible, edits inside this block are overwritten -->"
BLOCK_END = "<!-- END agentfleet.vps constitution -->"
BLOCK_RE = re.compile(re.escape(BLOCK_BEGIN) + r".*?" + re.escape(BLOCK_END) + r"\n?", re.DOTALL)
# Workspace files OpenClaw injects at session start (docs: doctor's
# bootstrap budget check); USER.md is capped at 4000 characters on its own.
BOOTSTRAP_FILES = ("AGENTS.md", "SOUL.md", "IDENTITY.md", "USER.md", "BOOTSTRAP.md", "MEMORY.md")
USER_MD_CAP = 4000
DEFAULT_MAX_CHARS = 20000
DEFAULT_TOTAL_MAX_CHARS = 60000
# Root's ledger and fleet.json (fleet_constitution_dir of the fleet role).
STATE_DIR = "/var/lib/agentfleet/constitution"
VIOLATION_SEVERITIES = ("low", "medium", "high", "critical")
SCOPES = ("agent", "role", "fleet")
ROMAN = re.compile(r"^(M{0,3})(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})$")
# Phrases that say nothing about what happened, why, or what changed.
BOILERPLATE = re.compile(
    r"^(made a mistake|mistake|error|an error|bug|a bug|oops|n/?a|none|nothing|todo|tbd|unknown|various|stuff|"
    r"something went wrong|it broke|human error|fixed|fixed it|will fix|be more careful|will be more careful|"
    r"i will be more careful|try harder|will try harder|more care|careless|sorry|see above|same as above)\.?$",
    re.IGNORECASE)
MIN_WORDS = 4


class ConstitutionError(Exception):
    pass


# ------------------------------------------------------------------ articles

def resolve_articles(articles, extra=None, disabled=None, role_articles=None, role="specialist"):
    """The articles of an agent with this role: the fleet's, plus its
    extras, minus the disabled ids, then the role's extras and disabled
    ids. Supreme article first, then in the order given."""
    role_cfg = (role_articles or {}).get(role) or {}
    off = set(disabled or []) | set(role_cfg.get("disabled") or [])
    result = [a for a in list(articles or []) + list(extra or []) + list(role_cfg.get("extra") or [])
              if a.get("id") not in off and a.get("enabled", True)]
    return sorted(result, key=lambda a: not a.get("supreme", False))


def check_articles(articles, who):
    """Problems of one agent's resolved article list (strings)."""
    problems = []
    ids = [a.get("id") for a in articles]
    for article in articles:
        if not ROMAN.match(str(article.get("id") or "")) or not article.get("id"):
            problems.append("%s: article id %r is not a roman numeral (I, II, ... XII)" % (who, article.get("id")))
        if not str(article.get("title") or "").strip() or not str(article.get("text") or "").strip():
            problems.append("%s: article %s needs a title and a text" % (who, article.get("id")))
    duplicates = sorted(set(i for i in ids if ids.count(i) > 1))
    if duplicates:
        problems.append("%s: article ids used twice: %s" % (who, ", ".join(map(str, duplicates))))
    supreme = [a.get("id") for a in articles if a.get("supreme")]
    if len(supreme) != 1:
        problems.append("%s: exactly one article must be supreme (it outranks all others); found %s" % (
            who, ", ".join(map(str, supreme)) or "none"))
    return problems


# -------------------------------------------------------------------- ledger

def entry_id(agent, what, why, changed):
    """Same agent and same what/why/changed: the same entry."""
    key = json.dumps([agent, " ".join(what.split()), " ".join(why.split()), " ".join(changed.split())])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def vague_fields(entry):
    """What is missing or says nothing, as messages naming the field."""
    problems = []
    texts = {}
    for field, asks in (("what", "the exact failure: what happened, where, with which command or file"),
                        ("why", "the root cause, not the symptom"),
                        ("changed", "the systemic fix: what is different now so it cannot happen again")):
        text = " ".join(str(entry.get(field) or "").split())
        texts[field] = text.lower()
        if not text:
            problems.append("%s is empty: give %s" % (field, asks))
        elif BOILERPLATE.match(text):
            problems.append("%s is boilerplate (%r): give %s" % (field, text, asks))
        elif len(text.split()) < MIN_WORDS:
            problems.append("%s is too vague (%r, fewer than %d words): give %s" % (field, text, MIN_WORDS, asks))
    if texts["what"] and texts["what"] in (texts["why"], texts["changed"]):
        problems.append("why and changed must say more than what repeated")
    if entry.get("amendment") is not None and len(" ".join(str(entry["amendment"]).split()).split()) < MIN_WORDS:
        problems.append("amendment is too vague: write the rule every affected agent must follow from now on")
    return problems


def read_ledger(path):
    text = (fileops.read_bytes(path) or b"").decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def applies_to(amendment, agent):
    scope, target = amendment.get("scope"), amendment.get("target")
    return (scope == "fleet" or (scope == "role" and target == agent["role"])
            or (scope == "agent" and target == agent["name"]))


def amendments_for(ledger, agent):
    return [dict(e["amendment"], entry=e["id"], time=e["time"])
            for e in ledger if e.get("amendment") and applies_to(e["amendment"], agent)]


# ---------------------------------------------------------------- rendering

def _article_md(article, level="##"):
    title = "%s Article %s: %s%s" % (level, article["id"], article["title"].strip(),
                                     " (supreme: outranks every other article and any task prompt)"
                                     if article.get("supreme") else "")
    lines = [title, "", article["text"].strip()]
    rules = [r for r in article.get("rules") or [] if str(r).strip()]
    if rules:
        lines.append("")
        lines += ["- %s" % str(r).strip() for r in rules]
    return "\n".join(lines)


def render_law(agent, articles, amendments, level="##"):
    """Articles, supreme first, then the permanent amendments."""
    parts = [_article_md(a, level) for a in articles]
    parts.append("%s Permanent amendments" % level)
    if amendments:
        for number, amendment in enumerate(amendments, 1):
            parts.append("%d. %s (%s, ledger entry %s, applies to %s)" % (
                number, amendment["text"].strip(), amendment["time"][:10], amendment["entry"],
                "the whole fleet" if amendment["scope"] == "fleet" else "%s %s" % (
                    amendment["scope"], amendment["target"])))
    else:
        parts.append("None yet.")
    return "\n\n".join(parts) + "\n"


def render_constitution(agent, articles, amendments):
    head = ("# Constitution of agent %s (%s)\n\n"
            "Managed by agentfleet.vps and rewritten on every deploy: the penalty ledger on the host is the "
            "source of truth. These articles outrank any task prompt; article %s is supreme.\n\n") % (
        agent["name"], agent["role"], articles[0]["id"] if articles else "-")
    return head + render_law(agent, articles, amendments)


def render_violations(agent, ledger, shown):
    mine = newest_violations(agent, ledger, shown)
    lines = ["# Violations of agent %s" % agent["name"], "",
             "The most recent %d entries of the fleet's penalty ledger for this agent, newest first. "
             "Do not repeat them." % shown, ""]
    if not mine:
        lines.append("None recorded.")
    for entry in mine:
        lines += ["## %s: %s (%s)" % (entry["time"][:19].replace("T", " "), entry["severity"], entry["id"]), "",
                  "- What happened: %s" % entry["what"].strip(),
                  "- Why (root cause): %s" % entry["why"].strip(),
                  "- What changed: %s" % entry["changed"].strip()]
        if entry.get("amendment"):
            lines.append("- Amendment: %s" % entry["amendment"]["text"].strip())
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


# The newest violations the AGENTS.md block itself carries (all of the
# shown ones are in VIOLATIONS.md): in the prompt of every session even
# when the startup reads are skipped.
BLOCK_VIOLATIONS = 3
BLOCK_VIOLATION_CHARS = 400


def newest_violations(agent, ledger, count):
    return [e for e in ledger if e["agent"] == agent["name"]][::-1][:count]


def render_block(agent, articles, amendments, violations=()):
    steps = ("## Startup sequence: every session, before any other work\n\n"
             "1. Read the constitution below. It outranks any task prompt; article %s is supreme. "
             "The same text is in CONSTITUTION.md.\n"
             "2. Read its permanent amendments (the end of the constitution): rules added after violations.\n"
             "3. Read VIOLATIONS.md: your recorded violations. Do not repeat them.\n"
             "4. Read HANDOFF.md: the state, next steps, risks and evidence the last session left. "
             "Keep it current before you stop.\n"
             "5. Read ALERTS.md if it exists. Deal with every open alert before any other work.\n"
             "6. If you break an article, report it yourself at once (what, why, what changes).\n") % (
        articles[0]["id"] if articles else "-")
    law = render_law(agent, articles, amendments, level="###")
    recent = "\n## Your newest violations\n\n%s\n" % ("\n".join(
        ("- %s, %s (%s): %s Root cause: %s What changed: %s" % (
            e["time"][:10], e["severity"], e["id"], e["what"].strip(), e["why"].strip(), e["changed"].strip())
         )[:BLOCK_VIOLATION_CHARS] for e in violations) or "None recorded.")
    return "%s\n# Constitution of agent %s (%s)\n\n%s\n## The constitution\n\n%s%s%s\n" % (
        BLOCK_BEGIN, agent["name"], agent["role"], steps, law, recent, BLOCK_END)


def merge_block(current, block):
    """AGENTS.md with the managed block: replaced where it is, or put on
    top; any duplicate blocks dropped; text outside never changed."""
    current = current or ""
    found = BLOCK_RE.search(current)
    if not found:
        return block + ("\n" + current if current else "")
    rest = current[:found.start()] + "\0" + BLOCK_RE.sub("", current[found.end():])
    return rest.replace("\0", block, 1)


HANDOFF = """# HANDOFF

This file is yours: the deploy created it once and never overwrites it.
Update it before every session ends, specifically.

## Current state

(What works, what is in progress, on which branch or host.)

## Next steps

(The next concrete actions, in order.)

## Open risks

(What could break, what is unverified.)

## Last verified evidence

(Command and output, commit hash or screenshot that proves the current state.)
"""


# -------------------------------------------------------------------- files

def _read(path):
    """Text of a workspace file; None when missing, or when the agent put
    a symlink or hard link there (the write replaces it, never follows it)."""
    try:
        data = fileops.read_bytes(path)
    except fileops.UnsafePath:
        return None
    return None if data is None else data.decode("utf-8", "replace")


def agent_view(agent):
    """The agent with the bootstrap limits it runs with. Workspace and
    limits come from the inventory (agents.defaults.workspace,
    bootstrapMaxChars, bootstrapTotalMaxChars of its planned config),
    never from the openclaw.json on the host, which the agent can edit."""
    view = dict(agent)
    view["max_chars"] = agent.get("max_chars") or DEFAULT_MAX_CHARS
    view["total_max_chars"] = agent.get("total_max_chars") or DEFAULT_TOTAL_MAX_CHARS
    return view


def plan_agent(agent, ledger, shown):
    """(files, problems): files is a list of (path, new content or None when
    unchanged, create_only) for one agent; problems say what is too big."""
    articles = agent["articles"]
    amendments = amendments_for(ledger, agent)
    workspace = agent["workspace"]
    agents_md_path = os.path.join(workspace, "AGENTS.md")
    current = {name: _read(os.path.join(workspace, name))
               for name in ("CONSTITUTION.md", "VIOLATIONS.md", "AGENTS.md", "HANDOFF.md")}
    agents_md = merge_block(current["AGENTS.md"], render_block(
        agent, articles, amendments, newest_violations(agent, ledger, min(shown, BLOCK_VIOLATIONS))))
    files = [(os.path.join(workspace, "CONSTITUTION.md"), render_constitution(agent, articles, amendments), False),
             (os.path.join(workspace, "VIOLATIONS.md"), render_violations(agent, ledger, shown), False),
             (agents_md_path, agents_md, False),
             (os.path.join(workspace, "HANDOFF.md"), HANDOFF, True)]
    problems = []
    if len(agents_md) > agent["max_chars"]:
        problems.append("agent %s: AGENTS.md would be %d characters with the constitution, over the bootstrap "
                        "limit of %d (agents.defaults.bootstrapMaxChars); OpenClaw would truncate the law. "
                        "Shorten or disable articles, or raise the limit." % (
                            agent["name"], len(agents_md), agent["max_chars"]))
    total = len(agents_md)
    for name in BOOTSTRAP_FILES[1:]:
        text = _read(os.path.join(workspace, name))
        if text:
            total += min(len(text), USER_MD_CAP) if name == "USER.md" else min(len(text), agent["max_chars"])
    if total > agent["total_max_chars"]:
        problems.append("agent %s: the bootstrap files would total %d characters, over "
                        "agents.defaults.bootstrapTotalMaxChars=%d; OpenClaw would truncate the law." % (
                            agent["name"], total, agent["total_max_chars"]))
    planned = []
    for path, content, create_only in files:
        before = current[os.path.basename(path)]
        if create_only and before is not None:
            continue
        planned.append((path, None if before == content else content, before))
    return planned, problems


# The workspace directory: root's, the agent user's group, sticky. The
# agent creates, changes and removes its own files there; the sticky bit
# keeps it from removing or renaming root's (the law).
WORKSPACE_MODE = 0o1770


def workspace_unprotected(workspace, gid):
    """True when the workspace directory is missing or not (root, gid,
    WORKSPACE_MODE); a link the agent put there counts as missing."""
    info = fileops.lstat(workspace)
    return info is None or not stat.S_ISDIR(info.st_mode) or stat.S_IMODE(info.st_mode) != WORKSPACE_MODE \
        or info.st_uid != 0 or gid not in (-1, info.st_gid)


def protect_workspace(workspace, gid):
    """Make the workspace directory (root, gid, WORKSPACE_MODE), creating
    it when missing and replacing, never following, whatever else stands
    there; True when anything changed."""
    if not workspace_unprotected(workspace, gid):
        return False
    info = fileops.lstat(workspace)
    if info is not None and not stat.S_ISDIR(info.st_mode):
        fileops.remove(workspace)
    fileops.makedirs(workspace, WORKSPACE_MODE, 0, gid)
    fileops.set_meta(workspace, WORKSPACE_MODE, 0, gid)
    return True


def owner_ids(agent, default_owner=None):
    """(uid, gid) of the user an agent runs as (its entry's user, else the
    fleet's owner); KeyError when that user does not exist."""
    import pwd
    user = pwd.getpwnam(agent.get("user") or default_owner or "")
    return user.pw_uid, user.pw_gid


def write_planned(planned, uid=-1, gid=-1):
    """Write every changed file of plan_agent's output atomically, mode
    0644, in a protected workspace. The law (CONSTITUTION.md, VIOLATIONS.md,
    AGENTS.md) is root's, so the agent can read it and neither rewrite nor
    remove it; HANDOFF.md is the agent's (uid, gid)."""
    for workspace in sorted(set(os.path.dirname(path) for path, _content, _current in planned)):
        protect_workspace(workspace, gid)
    for path, content, _current in planned:
        if content is None:
            continue
        owner = (uid, gid) if os.path.basename(path) == "HANDOFF.md" else (0, 0)
        fileops.write_atomic(path, content.encode("utf-8"), 0o644, *owner)


def rendered_digest(planned):
    """path -> sha256 of what the deploy put there, for the oversight audit's
    integrity check; for AGENTS.md only the managed block (the rest of that
    file is the agent's)."""
    digest = {}
    for path, content, current in planned:
        text = current if content is None else content
        if text is None or os.path.basename(path) == "HANDOFF.md":
            continue
        if os.path.basename(path) == "AGENTS.md":
            found = BLOCK_RE.search(text)
            text = found.group(0) if found else ""
        digest[path] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return digest


def rendered_path(state_dir, agent_name):
    return os.path.join(state_dir, "rendered", agent_name + ".json")


def write_rendered(state_dir, agent_name, planned, check_mode=False):
    """Record rendered_digest() of one agent (root's, world-readable);
    True when the record changed (or would)."""
    data = (json.dumps({"agent": agent_name, "files": rendered_digest(planned)}, indent=2, sort_keys=True)
            + "\n").encode("utf-8")
    if not check_mode:
        fileops.makedirs(os.path.dirname(rendered_path(state_dir, agent_name)), 0o755)
    return fileops.write_if_changed(rendered_path(state_dir, agent_name), data, 0o644, check_mode=check_mode)


def fleet_path(state_dir):
    return os.path.join(state_dir, "fleet.json")


def ledger_path(state_dir):
    return os.path.join(state_dir, "ledger.jsonl")


def load_fleet(state_dir):
    raw = _read(fleet_path(state_dir))
    if raw is None:
        raise ConstitutionError("%s does not exist: deploy the constitution role (playbooks/site.yml) first"
                                % fleet_path(state_dir))
    return json.loads(raw)


def diff_of(planned):
    return [{"before_header": path, "after_header": path, "before": current or "", "after": content}
            for path, content, current in planned if content is not None]
