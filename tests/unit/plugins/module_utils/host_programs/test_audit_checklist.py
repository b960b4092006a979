"""The checklist rules on scripted sessions made of the events a real
OpenClaw gateway writes (user messages, tool calls, tool results, final
answers), read through transcripts.sessions as the audit reads them."""

import pytest

from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import audit_checklist as checklist
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import transcripts

T0 = 1796064749000
ALL_ON = {"startup_sequence": True, "completion_without_proof": True, "avoidable_question": True,
          "startup_files": ["VIOLATIONS.md", "HANDOFF.md"]}
WORKSPACE = "/home/coder/.openclaw-coder/workspace"


def user(text):
    return {"type": "message", "message": {"role": "user", "content": text}}


def call(name, **arguments):
    return {"type": "message", "message": {
        "role": "assistant", "content": [{"type": "toolCall", "id": "toolu_%s" % name, "name": name, "arguments": arguments}],
        "model": "claude-sonnet-4-5", "stopReason": "toolUse"}}


def result(name, text="ok"):
    return {"type": "message", "message": {"role": "toolResult", "toolCallId": "toolu_%s" % name, "toolName": name,
                                           "content": [{"type": "text", "text": text}], "isError": False}}


def say(text):
    return {"type": "message", "message": {"role": "assistant", "content": [{"type": "text", "text": text}],
                                           "stopReason": "stop", "model": "claude-sonnet-4-5"}}


def scripted(**scripts):
    """session -> messages, as transcripts.sessions makes them from rows;
    each event gets its own time (created_at and the ISO timestamp)."""
    rows, ms = [], T0
    for session, events in sorted(scripts.items()):
        for event in [{"type": "session", "id": session}] + events:
            ms += 1000
            rows.append((session, ms, dict(event, timestamp="t%d" % ms)))
    return transcripts.sessions(rows)


def check(by_session, new_sessions=None, config=None):
    return checklist.check("coder", by_session, set(by_session) if new_sessions is None else new_sessions,
                           ALL_ON if config is None else config)


def rules(found):
    return sorted(f["rule"] for f in found)


# ------------------------------------------------------------ well behaved

def well_behaved():
    return [user("Fix the login bug"),
            call("read", path="VIOLATIONS.md"), result("read", "# VIOLATIONS\n(none)"),
            call("read", path=WORKSPACE + "/HANDOFF.md"), result("read", "# HANDOFF"),
            call("exec", command="make test && git push"), result("exec", "12 passed"),
            say("Done: pushed 3f2a9c1, CI https://ci.example/run/1")]


def test_a_well_behaved_session_has_no_finding():
    assert check(scripted(s1=well_behaved())) == []


def test_startup_files_read_through_the_shell_count_too():
    events = [user("Go"), call("exec", command="cat VIOLATIONS.md HANDOFF.md"), result("exec", "..."),
              call("exec", command="make"), result("exec", "ok"), say("Built it: ```make: ok```")]
    assert check(scripted(s1=events)) == []


# ------------------------------------------------------------ startup

def test_a_session_that_skips_its_startup_reads():
    events = [user("Fix the login bug"), call("exec", command="git pull"), result("exec", "Already up to date."),
              say("Pulled; next I fix the form.")]
    (found,) = check(scripted(s1=events))
    assert found["rule"] == "startup-sequence" and found["agent"] == "coder"
    assert "VIOLATIONS.md, HANDOFF.md" in found["summary"] and "exec" in found["summary"]
    evidence = found["evidence"]
    assert evidence["session"] == "s1" and evidence["missing"] == ["VIOLATIONS.md", "HANDOFF.md"] and evidence["read"] == []
    assert evidence["first_other_call"] == {"tool": "exec", "arguments": {"command": "git pull"}}
    assert evidence["lines"] and any('calls exec {"command": "git pull"}' in line for line in evidence["lines"])
    assert any("user: Fix the login bug" in line for line in evidence["lines"])


def test_half_a_startup_sequence_names_what_is_missing():
    events = [user("Go"), call("read", path="VIOLATIONS.md"), result("read"), call("read", path="src/app.py"),
              result("read"), call("read", path="HANDOFF.md"), result("read"), say("Reading on.")]
    (found,) = check(scripted(s1=events))
    assert found["rule"] == "startup-sequence"
    assert found["evidence"]["read"] == ["VIOLATIONS.md"] and found["evidence"]["missing"] == ["HANDOFF.md"]
    assert found["evidence"]["first_other_call"]["arguments"] == {"path": "src/app.py"}
    assert "HANDOFF.md" in found["summary"] and "VIOLATIONS.md" not in found["summary"]


def test_only_new_sessions_are_judged_on_startup():
    events = [user("Go on"), call("exec", command="git status"), result("exec", "clean"), say("Working on it.")]
    by_session = scripted(old=events, new=events)
    found = check(by_session, new_sessions={"new"})
    assert [(f["rule"], f["evidence"]["session"]) for f in found] == [("startup-sequence", "new")]
    assert check(by_session, new_sessions=set()) == []


def test_a_session_without_tool_calls_is_not_judged_on_startup():
    assert check(scripted(s1=[user("What is 2 + 2?"), say("4.")])) == []


def test_the_startup_files_come_from_the_config():
    events = [user("Go"), call("read", path="NOTES.md"), result("read"), call("exec", command="ls"),
              result("exec"), say("Listed.")]
    assert check(scripted(s1=events), config=dict(ALL_ON, startup_files=["NOTES.md"])) == []
    (found,) = check(scripted(s1=events))
    assert found["evidence"]["missing"] == ["VIOLATIONS.md", "HANDOFF.md"]


# ------------------------------------------------------------ done without proof

def test_done_with_no_evidence_in_the_turn():
    (found,) = check(scripted(s1=[user("Deploy the app"), say("The task is done.")]), new_sessions=set())
    assert found["rule"] == "completion-without-proof"
    assert "The task is done." in found["summary"] and found["evidence"]["claim"] == "The task is done."
    assert found["evidence"]["session"] == "s1" and any("assistant: The task is done." in x for x in found["evidence"]["lines"])


@pytest.mark.parametrize("events", [
    [user("Deploy the app"), call("exec", command="./deploy"), result("exec", "deployed"), say("The task is done.")],
    [user("Deploy the app"), say("The task is done: 3f2a9c1.")],
    [user("Deploy the app"), say("The task is done, see https://ci.example/run/1")],
    [user("Deploy the app"), say("The task is done:\n```\n12 passed\n```")],
    [user("Deploy the app"), say("I could not reach the host; nothing changed.")],
], ids=["tool-result", "commit", "url", "pasted-output", "no-claim"])
def test_done_with_evidence_or_no_claim_is_fine(events):
    assert check(scripted(s1=events), new_sessions=set()) == []


def test_a_tool_result_of_an_earlier_turn_is_no_proof():
    events = [user("Run the tests"), call("exec", command="make test"), result("exec", "12 passed"), say("Ran them: 12 passed."),
              user("And the deploy?"), say("The deploy is done.")]
    (found,) = check(scripted(s1=events), new_sessions=set())
    assert found["rule"] == "completion-without-proof" and found["evidence"]["claim"] == "The deploy is done."


def test_a_word_made_of_hex_letters_is_no_commit():
    (found,) = check(scripted(s1=[user("Fix the page"), say("Fixed, the page was defaced.")]), new_sessions=set())
    assert found["rule"] == "completion-without-proof"


def test_only_the_final_answer_counts():
    events = [user("Deploy"), say("Done? Not yet, checking."), say("Still checking: the host is down.")]
    assert check(scripted(s1=events), new_sessions=set()) == []


# ------------------------------------------------------------ questions

def test_a_final_answer_ending_in_a_question():
    events = [user("Fix the build"), say("I looked at the failing build.\nShould I run the tests?")]
    (found,) = check(scripted(s1=events), new_sessions=set())
    assert found["rule"] == "avoidable-question" and found["evidence"]["question"] == "Should I run the tests?"
    assert "Should I run the tests?" in found["summary"] and found["evidence"]["lines"]


@pytest.mark.parametrize("text", ["Shall I buy the $20 plan?", "The API needs a paid subscription. Should I subscribe?\n",
                                  "Should I run the tests? I ran them anyway: 12 passed.", "I looked at it.\n\n"])
def test_questions_about_money_or_not_at_the_end_are_fine(text):
    assert check(scripted(s1=[user("Fix the build"), say(text)]), new_sessions=set()) == []


def test_a_question_before_the_final_answer_is_fine():
    events = [user("Fix the build"), say("Should I look at the logs?"), say("I looked at the logs: a typo in main.c.")]
    assert check(scripted(s1=events), new_sessions=set()) == []


# ------------------------------------------------------------ config, keys

def everything_wrong():
    return [user("Fix the build"), call("exec", command="make"), result("exec", "error"), say("Looking."),
            user("And?"), say("The task is done. Should I run the tests?")]


def test_every_rule_can_be_turned_off():
    by_session = scripted(s1=everything_wrong())
    assert rules(check(by_session)) == ["avoidable-question", "completion-without-proof", "startup-sequence"]
    for name, rule in (("startup_sequence", "startup-sequence"), ("completion_without_proof", "completion-without-proof"),
                       ("avoidable_question", "avoidable-question")):
        found = rules(check(by_session, config=dict(ALL_ON, **{name: False})))
        assert rule not in found and len(found) == 2
        # Only True turns a rule on.
        assert rule not in rules(check(by_session, config=dict(ALL_ON, **{name: "yes"})))
    assert check(by_session, config={"startup_sequence": False, "completion_without_proof": False,
                                     "avoidable_question": False}) == []
    assert check(by_session, config={}) == [] and checklist.check("coder", by_session, {"s1"}, None) == []


def test_finding_keys_are_stable_and_differ_per_session():
    first = check(scripted(s1=everything_wrong()))
    again = check(scripted(s1=everything_wrong()))
    assert [f["key"] for f in first] == [f["key"] for f in again]
    assert len({f["key"] for f in first}) == 3
    both = check(scripted(s1=everything_wrong(), s2=everything_wrong()))
    assert len(both) == 6 and len({f["key"] for f in both}) == 6
    for rule in ("startup-sequence", "completion-without-proof", "avoidable-question"):
        assert sorted(f["evidence"]["session"] for f in both if f["rule"] == rule) == ["s1", "s2"]
    # s1's findings keep their keys when s2 shows up.
    assert {f["key"] for f in first} <= {f["key"] for f in both}


@pytest.mark.parametrize("text, claimed", [
    ("The task is done.", True),
    ("I have not deployed yet.", False),
    ("I haven't finished the migration.", False),
    ("Not done yet, the build is still running.", False),
    ("Fixed the parser; not deployed yet.", True),
])
def test_a_negated_claim_is_not_a_claim(text, claimed):
    assert checklist.claims_done(text) is claimed
