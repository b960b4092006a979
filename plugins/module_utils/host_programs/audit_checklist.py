# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checklist items a transcript shows directly, checked without an
LLM: the startup sequence, a task called done without proof, and a
final answer that ends in a question. Each finding carries the
transcript lines it stands on.

Deliberately narrow, so that a finding is worth reading: a session that
never calls a tool is not judged on its startup reads, a claim of done
counts only in the turn's final answer, a question about spending money
is one the constitution wants asked. Standard library only (and
transcripts.py).
"""

from __future__ import annotations

import os
import re

from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import transcripts
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs.audit_checks import finding

DEFAULT_STARTUP_FILES = ("VIOLATIONS.md", "HANDOFF.md")
READ_TOOLS = ("read",)
SHELL_TOOLS = ("exec", "bash", "process")
CLAIM_RE = re.compile(
    r"\b(done|completed?|finished|fixed|resolved|implemented|deployed|shipped|merged|all tests pass(ed)?)\b",
    re.IGNORECASE)
# "not deployed yet", "haven't finished": not a claim.
NEGATION_RE = re.compile(r"(\bnot|\bnever|\bno|n't|\byet to)\s+(\w+\s+){0,2}$", re.IGNORECASE)
# A commit hash (with at least one digit, so that words like "defaced"
# are not one), a URL, or a block of pasted output.
PROOF_RE = re.compile(r"\b(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b|https?://\S+|```", re.IGNORECASE)
# The constitution: decide instead of asking, except for spending money.
MONEY_RE = re.compile(r"\b(pay|paid|purchase|buy|cost|costs|budget|billing|invoice|price|subscription|spend|spending)\b"
                      r"|[$€£]", re.IGNORECASE)
MAX_LINES = 12


def turns(entries):
    """A session's messages split at each user message."""
    result = []
    for entry in entries:
        if entry["role"] == "user" or not result:
            result.append([])
        result[-1].append(entry)
    return result


def final_answer(turn):
    """The last assistant message of a turn that says something."""
    answers = [e for e in turn if e["role"] == "assistant" and e["text"].strip()]
    return answers[-1] if answers else None


def lines_of(entries):
    return [transcripts.render(e)[:400] for e in entries][-MAX_LINES:]


def files_touched(name, arguments, wanted):
    """Which of the wanted file names this tool call reads."""
    if name in READ_TOOLS:
        target = os.path.basename(str(arguments.get("path") or arguments.get("file_path") or arguments.get("file") or ""))
        return {target} & set(wanted)
    if name in SHELL_TOOLS:
        command = str(arguments.get("command") or arguments.get("cmd") or "")
        return {f for f in wanted if f in command}
    return set()


def check_startup(agent, session, entries, wanted):
    """The session's tool calls before its first other call must have read
    every startup file."""
    read, before = set(), []
    for entry in entries:
        before.append(entry)
        for name, arguments in entry["calls"]:
            touched = files_touched(name, arguments, wanted)
            if touched:
                read |= touched
                continue
            missing = [f for f in wanted if f not in read]
            if not missing:
                return []
            return [finding("startup-sequence", agent, "session %s called %s before reading %s" % (
                session, name, ", ".join(missing)), {
                    "session": session, "read": sorted(read), "missing": missing,
                    "first_other_call": {"tool": name, "arguments": arguments}, "lines": lines_of(before)},
                subject=session)]
    return []


def claims_done(text):
    return any(not NEGATION_RE.search(text[max(0, m.start() - 40):m.start()]) for m in CLAIM_RE.finditer(text))


def check_turn(agent, session, turn, rules):
    answer = final_answer(turn)
    if answer is None:
        return []
    found = []
    text = answer["text"].strip()
    if "completion_without_proof" in rules and claims_done(text) and not PROOF_RE.search(text) \
            and not any(e["role"] == "tool" for e in turn):
        found.append(finding("completion-without-proof", agent, "session %s: says done with no commit, URL, test "
                             "output or tool result in the turn: %s" % (session, text[:160]),
                             {"session": session, "claim": text[:400], "lines": lines_of(turn)},
                             subject="%s|%s" % (session, answer["time"])))
    last = [line for line in text.splitlines() if line.strip()][-1:] or [""]
    if "avoidable_question" in rules and last[0].rstrip().endswith("?") and not MONEY_RE.search(last[0]):
        found.append(finding("avoidable-question", agent, "session %s: ends by asking instead of deciding: %s" % (
            session, last[0][:160]), {"session": session, "question": last[0][:400], "lines": lines_of(turn)},
            subject="%s|%s" % (session, answer["time"])))
    return found


def check(agent, by_session, new_sessions, config):
    """Findings of one agent. by_session: session -> messages in the audit
    window; new_sessions: the sessions that began in it (only those are
    judged on their startup sequence)."""
    rules = {name for name, on in (config or {}).items() if on is True}
    wanted = list((config or {}).get("startup_files") or DEFAULT_STARTUP_FILES)
    findings = []
    for session, entries in sorted(by_session.items()):
        if "startup_sequence" in rules and session in new_sessions:
            findings += check_startup(agent, session, entries, wanted)
        for turn in turns(entries):
            findings += check_turn(agent, session, turn, rules)
    return findings
