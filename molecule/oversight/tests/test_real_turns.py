"""Real agent turns against the fake model provider: what the model
receives (the constitution, the oversight alert, the watchdog's log),
what OpenClaw does on rate limits with the two keys the collection
deploys, and the checklist findings the audit reads from the
transcripts. Runs after test_oversight.py; the tests depend on their
order."""

import datetime
import json
import re
import time

import pytest

from fleet_checks import as_user, readyz, run_playbook, state_dir, unit, user_systemctl, wait_until, why

from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs.watchdog_diagnosis import readable
from conftest import REVIEWER_MODEL
from test_oversight import CODER, audit, pairs, requests

PRIMARY_KEY = "sk-ant-local-test-primary-0000000000000000"
SECONDARY_KEY = "sk-ant-local-test-secondary-000000000000000"
SONNET, HAIKU = "claude-sonnet-4-5", "claude-haiku-4-5"
WORKSPACE = f"{state_dir(CODER)}/workspace"
MODEL_PATHS = ("/v1/messages", "/v1/chat/completions", "/v1/responses")
CHECKLIST = ("startup-sequence", "completion-without-proof", "avoidable-question")
# The well-behaved session: the startup reads (AGENTS.md as well, whose
# tool result OpenClaw stores zstd-compressed), a real command, an answer
# with its evidence in the turn.
SCRIPTS = {
    "good": [{"tool": "read", "input": {"path": "VIOLATIONS.md"}},
             {"tool": "read", "input": {"path": f"{WORKSPACE}/HANDOFF.md"}},
             {"tool": "read", "input": {"path": "AGENTS.md"}},
             {"tool": "exec", "input": {"command": "git -C ~/src/app rev-parse HEAD"}},
             {"text": "Finished: the head of the app repository is the commit in the tool output above."}],
    "skip": [{"tool": "exec", "input": {"command": "ls"}},
             {"text": "Listed the workspace."}],
    "noproof": [{"text": "The task is done."}],
    "question": [{"text": "I looked at the failing build.\nShould I run the test suite again?"}],
}


USAGE_AT_START = {}


def stored_usage(host, agent):
    """(input, output) tokens of the assistant messages in the agent's
    session store, read directly (the baseline the report's totals of the
    day are compared from)."""
    store = f"{state_dir(agent)}/agents/main/agent/openclaw-agent.sqlite"
    out = host.run_test(
        "python3 -c \"import json, os, sqlite3; p = '%s'; i = o = 0\n"
        "if os.path.exists(p):\n"
        "  c = sqlite3.connect('file:' + p + '?mode=ro', uri=True)\n"
        "  for (e,) in c.execute('SELECT event_json FROM transcript_events WHERE event_json IS NOT NULL'):\n"
        "    m = json.loads(e).get('message') or {}\n"
        "    u = m.get('usage') if m.get('role') == 'assistant' else None\n"
        "    if isinstance(u, dict): i += u.get('input', 0); o += u.get('output', 0)\n"
        "print(i, o)\"" % store).stdout.split()
    return int(out[0]), int(out[1])


@pytest.fixture(scope="module", autouse=True)
def usage_at_start(host):
    """What coder-1's and reviewer's stores hold before this file's turns
    (the scenario's earlier tests ran against another endpoint)."""
    USAGE_AT_START.update({agent: stored_usage(host, agent) for agent in (CODER, "reviewer")},
                          day=host.run_test("date -u +%F").stdout.strip())


def turn(host, agent, session, message):
    """One agent turn through the agent's running gateway, started the way
    an operator would, as the agent's user with its env file."""
    result = as_user(host, agent, f"set -a; . {state_dir(agent)}/gateway.env; set +a; cd; "
                                  f"/opt/agentfleet/bin/openclaw --profile {agent} agent --agent main "
                                  f"--session-key {session} --message '{message}' --json")
    assert result.rc == 0, (agent, session, result.stdout[-2000:], result.stderr[-2000:])
    return json.loads(result.stdout[result.stdout.find("{"):])


def model_calls(endpoint, after=0):
    """The requests the gateways sent to a model API, in order (the
    reviewer's and the watchdog's carry no constitution)."""
    return [r for r in endpoint.requests() if r["path"] in MODEL_PATHS and agent_of(r)][after:]


def text_of(content):
    if isinstance(content, list):
        return "\n".join(text_of(part.get("text", "")) if isinstance(part, dict) else str(part) for part in content)
    return str(content or "")


def system_text(request):
    """The system prompt, wherever the request's API puts it."""
    body = request["body"] if isinstance(request["body"], dict) else {}
    parts = [body.get("system"), body.get("instructions")]
    parts += [m.get("content") for m in body.get("messages") or body.get("input") or []
              if isinstance(m, dict) and m.get("role") in ("system", "developer")]
    return "\n".join(text_of(part) for part in parts)


def agent_of(request):
    found = re.search(r"# Constitution of agent (\S+) \(", system_text(request))
    return found.group(1) if found else None


def block_of(host, agent):
    """The managed AGENTS.md block of the agent, as it is on disk."""
    text = host.file(f"{state_dir(agent)}/workspace/AGENTS.md").content_string
    begin, end = text.index("<!-- BEGIN agentfleet.vps constitution"), text.index("<!-- END agentfleet.vps constitution -->")
    return text[begin:end]


def port_of(host, agent):
    config = json.loads(host.file("/etc/agentfleet/oversight.json").content_string)
    return next(a["port"] for a in config["agents"] if a["name"] == agent)


def test_every_session_prompt_holds_the_constitution(host, endpoint):
    # test_oversight.py left the reviewer stopped.
    assert user_systemctl(host, "reviewer", "start", unit("reviewer")).rc == 0
    before = len(model_calls(endpoint))
    reply = turn(host, CODER, "constitution-1", "What are your rules?")
    assert reply["result"]["payloads"][0]["text"] == "ok"
    [asked] = [r for r in model_calls(endpoint, before) if agent_of(r) == CODER]
    prompt = system_text(asked)
    block = block_of(host, CODER)
    assert block in prompt, "the AGENTS.md block is not in the system prompt verbatim"
    articles = re.findall(r"^### Article (\S+): .*$", block, re.MULTILINE)
    assert len(articles) >= 6, articles
    assert re.search(r"### Article %s: .*\(supreme: outranks" % re.escape(articles[0]), prompt)
    for article in articles:
        assert f"### Article {article}:" in prompt
    assert "### Permanent amendments" in prompt and "## Your newest violations" in prompt

    # A violation with an amendment: the next session has both, no redeploy.
    entry = {"agent": CODER, "what": "Pushed a hotfix to main while CI was red on test_login",
             "why": "The agent treated the hotfix label as permission to skip CI",
             "changed": "Pushes to main now wait for the green CI run of the same commit",
             "severity": "high", "amendment": "Never push to main before CI is green for that exact commit"}
    result = run_playbook("-e", json.dumps(entry), playbook="violation.yml")
    assert result.returncode == 0, why(result)
    before = len(model_calls(endpoint))
    turn(host, CODER, "constitution-2", "What changed in your rules?")
    [asked] = [r for r in model_calls(endpoint, before) if agent_of(r) == CODER]
    prompt = system_text(asked)
    assert entry["amendment"] in prompt and entry["what"] in prompt and entry["changed"] in prompt
    assert block_of(host, CODER) in prompt
    assert wait_until(lambda: readyz(host, port_of(host, "reviewer")).get("ready") is True, 120)


def test_rate_limits_go_to_the_second_key_then_the_cheap_model(host, endpoint):
    endpoint.rules(failures=[{"key": PRIMARY_KEY, "model": SONNET, "status": 429, "retry_after": 3600},
                             {"key": SECONDARY_KEY, "model": SONNET, "status": 429, "retry_after": 3600}])
    for agent in (CODER, "reviewer"):
        before = len(model_calls(endpoint))
        reply = turn(host, agent, f"failover-{agent}", "Summarise the repository")
        assert reply["result"]["payloads"][0]["text"] == "ok"
        asked = [(r["key"], r["model"], r["answered"]["status"]) for r in model_calls(endpoint, before)
                 if agent_of(r) == agent]
        assert asked == [(PRIMARY_KEY, SONNET, 429), (SECONDARY_KEY, SONNET, 429), (PRIMARY_KEY, HAIKU, 200)], asked
    endpoint.rules(failures=None)
    # The next turn starts on the primary tier again.
    before = len(model_calls(endpoint))
    turn(host, CODER, "failover-after", "And now?")
    assert [(r["key"], r["model"]) for r in model_calls(endpoint, before) if agent_of(r) == CODER] == [(PRIMARY_KEY, SONNET)]
    for agent in (CODER, "reviewer"):
        env = host.file(f"{state_dir(agent)}/openclaw.json").content_string
        assert PRIMARY_KEY not in env and SECONDARY_KEY not in env

    report = audit(host)
    found = {(f["rule"], f["agent"]): f for f in report["findings"]}
    for agent in (CODER, "reviewer"):
        assert ("fallback-output", agent) in found, (agent, sorted(found))
        assert found[("fallback-output", agent)]["evidence"]["count"] == 1
        assert ("rate-limit", agent) in found, (agent, sorted(found))
        assert any(re.search(r"429|rate.limit", line) for line in found[("rate-limit", agent)]["evidence"]["lines"])


def test_the_coordinator_model_receives_the_oversight_alert(host, endpoint):
    """The audit above had new findings: the coordinator's gateway ran a turn
    and sent them to the model. Its main session also carries the alerts of
    test_oversight.py, and a turn for one of those can reach this file's
    endpoint late: only a request with this audit's findings counts."""
    def coordinator_saw_it():
        for request in model_calls(endpoint):
            text = json.dumps(request["body"])
            if agent_of(request) == "coordinator" and "agentfleet oversight:" in text and all(
                    f"{rule}" in text for rule in ("fallback-output", "rate-limit")) and "reviewer" in text:
                return request
        return None
    request = wait_until(coordinator_saw_it, 90)
    assert request, "no model request of the coordinator carries the alert"
    text = json.dumps(request["body"])
    assert "Deal with them before any other work" in text
    for rule, agent in (("fallback-output", CODER), ("rate-limit", "reviewer")):
        assert rule in text and agent in text


def test_the_coordinator_speaks_chat_completions_then_responses(host, endpoint):
    """Its primary model is behind an OpenAI chat completions provider, its
    fallback behind an OpenAI responses one: both streamed to a real
    gateway, which answers from the fallback when the primary is limited."""
    endpoint.rules(failures=[{"model": "coordinator-large", "status": 429, "retry_after": 3600}])
    before = len(model_calls(endpoint))
    reply = turn(host, "coordinator", "apis-1", "Status?")
    # Its own session's requests, not a main-session turn on an alert.
    asked = [(r["path"], r["model"], r["key"], r["stream"], r["answered"]["status"])
             for r in model_calls(endpoint, before)
             if agent_of(r) == "coordinator" and "agentfleet oversight:" not in json.dumps(r["body"])]
    assert asked == [("/v1/chat/completions", "coordinator-large", "sk-fake-chat-completions-key", True, 429),
                     ("/v1/responses", "coordinator-small", "sk-fake-responses-key", True, 200)], asked
    assert reply["result"]["payloads"][0]["text"] == "ok"
    endpoint.rules(failures=None)
    before = len(model_calls(endpoint))
    reply = turn(host, "coordinator", "apis-2", "Status now?")
    assert [(r["path"], r["answered"]["status"]) for r in model_calls(endpoint, before)
            if agent_of(r) == "coordinator" and "agentfleet oversight:" not in json.dumps(r["body"])] == [
        ("/v1/chat/completions", 200)]
    assert reply["result"]["payloads"][0]["text"] == "ok"


def test_the_watchdog_llm_gets_the_dead_gateways_own_log(host, endpoint):
    log_dir = f"{state_dir(CODER)}/logs"
    assert user_systemctl(host, CODER, "stop", unit(CODER)).rc == 0
    before = len(endpoint.requests("/v1/chat/completions"))
    out = host.run("/opt/agentfleet/bin/agentfleet-watchdog")
    assert out.rc == 0 and "(recovered)" in out.stdout, out.stdout + out.stderr
    [asked] = [r for r in endpoint.requests("/v1/chat/completions")[before:] if r["model"] == "fake-fast-model"]
    prompt = asked["body"]["messages"][1]["content"]
    sent = prompt.split("## OpenClaw log file\n", 1)[1]
    # 50 consecutive lines of coder-1's own log file, as the watchdog
    # renders each line (a gateway that failed a start under load also
    # leaves a stability/ directory beside the log files).
    name = sorted(n for n in host.file(log_dir).listdir() if n.startswith("openclaw-") and n.endswith(".log"))[-1]
    lines = host.file(f"{log_dir}/{name}").content_string.splitlines()
    windows = ("\n".join(readable(line) for line in lines[i:i + 50]) for i in range(len(lines) - 49))
    assert sent in windows, sent[-2000:]
    assert PRIMARY_KEY not in prompt and SECONDARY_KEY not in prompt


def test_scripted_turns_give_exactly_their_checklist_findings(host, endpoint):
    audit(host)  # a window of their own
    endpoint.rules(scripts=SCRIPTS, answers=dict(endpoint.current.get("answers") or {}, **{
        REVIEWER_MODEL: json.dumps({"findings": [{"agent": CODER, "check": "unsourced_claim", "severity": "warning",
                                                  "evidence": "says the build failed without quoting its output"}]})}))
    replies = {name: turn(host, CODER, f"checklist-{name}", f"Work on the app [[script:{name}]]") for name in SCRIPTS}
    assert replies["good"]["result"]["payloads"][-1]["text"].startswith("Finished:")
    time.sleep(1)
    report = audit(host)
    found = [f for f in report["findings"] if f["rule"] in CHECKLIST]
    # Exactly one finding per rule, each on its scripted session; none for
    # the well-behaved one.
    assert sorted(f["rule"] for f in found) == sorted(CHECKLIST), [(f["rule"], f["summary"]) for f in found]
    script = {"startup-sequence": "skip", "completion-without-proof": "noproof", "avoidable-question": "question"}
    for item in found:
        lines = " ".join(item["evidence"]["lines"])
        assert item["agent"] == CODER and f"[[script:{script[item['rule']]}]]" in lines, (item["rule"], lines)
    by_rule = {f["rule"]: f for f in found}
    assert by_rule["startup-sequence"]["evidence"]["missing"] == ["VIOLATIONS.md", "HANDOFF.md"]
    assert by_rule["startup-sequence"]["evidence"]["first_other_call"]["tool"] == "exec"
    assert by_rule["completion-without-proof"]["evidence"]["claim"] == "The task is done."
    assert by_rule["avoidable-question"]["evidence"]["question"] == "Should I run the test suite again?"

    # The reviewer read the same turns: real assistant text, tool calls and
    # the compressed AGENTS.md tool result; its finding is in the report.
    asked = [r for r in requests(host, "/v1/chat/completions") if r["model"] == REVIEWER_MODEL][-1]
    excerpt = asked["body"]["messages"][1]["content"]
    assert "Finished: the head of the app repository" in excerpt
    assert 'calls read {"path": "VIOLATIONS.md"}' in excerpt and "calls exec" in excerpt
    assert "tool result (read): <!-- BEGIN agentfleet.vps constitution" in excerpt
    store = f"{state_dir(CODER)}/agents/main/agent/openclaw-agent.sqlite"
    compressed = host.run(f"python3 -c \"import sqlite3; c = sqlite3.connect('file:{store}?mode=ro', uri=True); "
                          "print(c.execute('SELECT count(*) FROM transcript_events WHERE event_zstd IS NOT NULL')"
                          ".fetchone()[0])\"")
    assert int(compressed.stdout) > 0, "no compressed transcript row was written"
    assert report["reviewer"]["status"] == "ok"
    assert ("reviewer-finding", CODER) in pairs(report)


def test_the_reports_usage_is_what_the_endpoint_returned_and_an_overrun_is_one_alert(host, endpoint):
    """coder-1 and reviewer (the two agents on the Anthropic messages API;
    the coordinator speaks OpenAI's) took their turns of this file against
    its endpoint: what the report's totals of the day grew by since the
    file began is the sum of the usage blocks the endpoint answered with."""
    report = audit(host)
    day_start = datetime.datetime.fromisoformat(report["usage"]["day"]).replace(
        tzinfo=datetime.timezone.utc).timestamp()
    answered = [r["answered"]["usage"] for r in requests(host, "/v1/messages")
                if r["answered"]["status"] == 200 and r["time"] >= day_start]
    used = [report["usage"]["agents"][agent] for agent in (CODER, "reviewer")]
    # A file that began the day before counts from nothing (the day's totals).
    before = [USAGE_AT_START[agent] if USAGE_AT_START["day"] == report["usage"]["day"] else (0, 0)
              for agent in (CODER, "reviewer")]
    assert answered and all(u["messages"] for u in used), used
    grown = (sum(u["input"] for u in used) - sum(b[0] for b in before),
             sum(u["output"] for u in used) - sum(b[1] for b in before))
    assert grown == (sum(a["input_tokens"] for a in answered), sum(a["output_tokens"] for a in answered)), (
        used, before, len(answered))
    assert report["usage"]["total"]["totalTokens"] == sum(u["totalTokens"] for u in report["usage"]["agents"].values())

    hooks = len(requests(host, "/webhook"))
    budget = {"oversight_usage_budgets": {"reviewer": {"tokens": 1}}}
    result = run_playbook("--tags", "oversight", "-e", json.dumps(budget))
    assert result.returncode == 0, why(result)
    report = audit(host)
    over = [f for f in report["findings"] if f["rule"] == "usage-over-budget"]
    assert [(f["agent"], f["evidence"]["kind"], f["new"]) for f in over] == [("reviewer", "tokens", True)], over
    sent = [r["body"]["text"] for r in requests(host, "/webhook")[hooks:]]
    assert [t for t in sent if "usage-over-budget" in t] == sent and len(sent) == 1, sent
    hooks = len(requests(host, "/webhook"))
    again = audit(host)
    assert [f["new"] for f in again["findings"] if f["rule"] == "usage-over-budget"] == [False]
    assert not [r for r in requests(host, "/webhook")[hooks:] if "usage-over-budget" in r["body"]["text"]]
