"""A Telegram channel on the reviewer, its Bot API played by the fake
endpoint (the channel's apiRoot): the gateway uses the token (the Bot
API sees it in its request paths), and the token is nowhere else on the
host but the agent's 0600 env file: not in openclaw.json, root's config
store, the journal, the gateway's logs, the audit's reports, or the
play's -vvv output. The same token on a second agent is refused before
anything changes. The test ends by deploying the inventory as it was,
which takes the channel and its token away again."""

import json
import pathlib
import secrets

import yaml

from fleet_checks import as_user, main_pids, ports, readyz, run_playbook, state_dir, wait_until, why

from test_oversight import audit

INVENTORY = pathlib.Path(__file__).parents[1] / "host_vars" / "agentfleet-molecule-oversight.yml"
AGENT = "reviewer"
# A token in Telegram's shape, new on every run: found anywhere, it leaked in this run.
TOKEN = "7%09d:AA%s" % (secrets.randbelow(10 ** 9), secrets.token_hex(16))
ENV_FILE = f"{state_dir(AGENT)}/gateway.env"
CONFIG = f"{state_dir(AGENT)}/openclaw.json"
# Everywhere the token may end up but the env file and the fake Bot API's request log.
SEARCHED = "/etc /home /root /tmp /var /run"
ALLOWED = {ENV_FILE, "/var/lib/fake-endpoint/requests.jsonl"}


def fleet_with_channel(*names):
    agents = yaml.safe_load(INVENTORY.read_text())["fleet_agents"]
    for agent in agents:
        if agent["name"] in names:
            agent["channels"] = {"telegram": {"bot_token": TOKEN, "dm_policy": "allowlist", "allow_from": ["1001"],
                                              "config": {"apiRoot": "http://127.0.0.1:18999"}}}
    return json.dumps({"fleet_agents": agents})


def files_with_token(host):
    found = host.run(f"grep -rlsF -D skip -e {TOKEN} {SEARCHED}")
    assert found.rc in (0, 1), found.stderr
    return set(found.stdout.split())


def snapshot(host):
    return {"pids": main_pids(host), "files": host.run_test(
        "sha256sum /home/openclaw-*/.openclaw-*/openclaw.json /home/openclaw-*/.openclaw-*/gateway.env").stdout}


def test_a_telegram_token_reaches_the_gateway_and_nothing_else(host, endpoint):
    # The agents role is what writes channels; -vvv prints its every
    # module's arguments and results.
    result = run_playbook("--tags", "agents", "-e", fleet_with_channel(AGENT), verbosity=3)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert TOKEN not in result.stdout + result.stderr

    config = json.loads(host.file(CONFIG).content_string)
    assert config["channels"]["telegram"]["botToken"] == {
        "source": "env", "provider": "default", "id": "CHANNEL_TELEGRAM_BOT_TOKEN"}
    env = host.file(ENV_FILE)
    assert env.mode == 0o600 and env.user == f"openclaw-{AGENT}"
    assert f'CHANNEL_TELEGRAM_BOT_TOKEN="{TOKEN}"' in env.content_string.splitlines()

    # The gateway resolved the reference: the Bot API saw the token.
    assert wait_until(lambda: endpoint.requests(f"/bot{TOKEN}/getMe"), 90), endpoint.requests("")[-5:]
    assert readyz(host, ports(host, [AGENT])[AGENT]).get("ready") is True
    report = audit(host)
    assert not [f for f in report["findings"] if f["agent"] == AGENT and f["rule"] == "agent-down"]

    assert files_with_token(host) <= ALLOWED, files_with_token(host)
    journal = host.run(f"journalctl --no-pager -o cat | grep -cF -e {TOKEN}")
    assert journal.stdout.strip() == "0", "the token is in the journal"
    # Nor can another agent read it.
    assert as_user(host, "coder-1", f"cat {ENV_FILE}").rc != 0


def test_one_token_on_two_agents_is_refused_before_anything_changes(host, endpoint):
    before = snapshot(host)
    result = run_playbook("--tags", "agents", "-e", fleet_with_channel(AGENT, "coordinator"))
    assert result.returncode != 0
    message = why(result)
    assert "fleet_agents[coordinator].channels.telegram.bot_token" in message
    assert f"fleet_agents[{AGENT}].channels.telegram.bot_token" in message and TOKEN not in message
    assert snapshot(host) == before


def test_deploying_without_the_channel_takes_it_and_its_token_away(host, endpoint):
    result = run_playbook("--tags", "agents")
    assert result.returncode == 0, why(result)
    assert "channels" not in json.loads(host.file(CONFIG).content_string)
    assert TOKEN not in host.file(ENV_FILE).content_string
    assert files_with_token(host) <= {"/var/lib/fake-endpoint/requests.jsonl"}
    assert wait_until(lambda: readyz(host, ports(host, [AGENT])[AGENT]).get("ready") is True, 60)
