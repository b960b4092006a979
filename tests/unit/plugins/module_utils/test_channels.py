"""Channels in the plan: openclaw.json gets references, the env file the
tokens, and bad input is refused with the variable named and the token
never repeated."""

import json

import pytest

from ansible_collections.agentfleet.vps.plugins.module_utils import channels, fleet_plan

TG = "123456:telegram-token-of-the-coder"
SLACK_BOT, SLACK_APP = "xoxb-slack-bot-token", "xapp-slack-app-token"


def agent(name, chans=None, config=None):
    return {"name": name, "model": {"primary": "anthropic/claude-sonnet-4-5"}, "credentials": {"anthropic": ["k"]},
            "channels": chans or {}, "config": config or {}}


def plan(*agents):
    return fleet_plan.build_plan(list(agents))


def test_openclaw_json_names_each_token_by_reference_and_the_env_file_holds_it():
    coder = agent("coder", {"telegram": {"bot_token": TG, "dm_policy": "allowlist", "allow_from": [42],
                                         "config": {"apiRoot": "http://127.0.0.1:18999"}},
                            "slack": {"bot_token": SLACK_BOT, "app_token": SLACK_APP}})
    entry = plan(coder)[0]
    config = fleet_plan.openclaw_config(entry, "/w", "2026.9.6")
    assert config["channels"]["telegram"] == {
        "enabled": True, "dmPolicy": "allowlist", "groupPolicy": "allowlist", "allowFrom": ["42"],
        "apiRoot": "http://127.0.0.1:18999",
        "botToken": {"source": "env", "provider": "default", "id": "CHANNEL_TELEGRAM_BOT_TOKEN"}}
    assert config["channels"]["slack"]["appToken"]["id"] == "CHANNEL_SLACK_APP_TOKEN"
    assert config["channels"]["slack"]["mode"] == "socket" and config["channels"]["slack"]["postAs"] == "bot"
    rendered = json.dumps(config) + json.dumps(entry)
    assert TG not in rendered and SLACK_BOT not in rendered and SLACK_APP not in rendered
    env = fleet_plan.gateway_env(entry, {"anthropic": ["k"]}, "tok", coder["channels"])
    assert env["CHANNEL_TELEGRAM_BOT_TOKEN"] == TG and env["CHANNEL_SLACK_BOT_TOKEN"] == SLACK_BOT
    assert env["CHANNEL_SLACK_APP_TOKEN"] == SLACK_APP


def test_no_channels_no_channels_key():
    entry = plan(agent("coder"))[0]
    assert "channels" not in fleet_plan.openclaw_config(entry, "/w", "2026.9.6")


def test_the_variables_are_not_the_ones_openclaw_would_pick_up_by_itself():
    # DISCORD_BOT_TOKEN alone makes OpenClaw 2026.9.6 install its Discord plugin.
    names = channels.env({"discord": {"token": "d"}, "telegram": {"bot_token": "t"},
                          "slack": {"bot_token": "b", "app_token": "a"}})
    assert not set(names) & {"TELEGRAM_BOT_TOKEN", "DISCORD_BOT_TOKEN", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"}


def test_one_token_on_two_agents_is_refused_naming_both_not_the_token():
    with pytest.raises(fleet_plan.PlanError) as err:
        plan(agent("coder", {"telegram": {"bot_token": TG}}), agent("reviewer", {"telegram": {"bot_token": " " + TG}}))
    message = str(err.value)
    assert "fleet_agents[coder].channels.telegram.bot_token" in message
    assert "fleet_agents[reviewer].channels.telegram.bot_token" in message and TG not in message


def test_one_token_as_two_fields_of_one_agent_is_refused():
    with pytest.raises(fleet_plan.PlanError, match="slack.bot_token and fleet_agents.coder.?.channels.slack.app_token"
                       .replace("fleet_agents.coder.?", r"fleet_agents\[coder\]")):
        plan(agent("coder", {"slack": {"bot_token": SLACK_BOT, "app_token": SLACK_BOT}}))


def test_an_absent_agent_keeps_no_claim_on_its_token():
    gone = dict(agent("old", {"telegram": {"bot_token": TG}}), state="absent")
    assert [e["name"] for e in plan(gone, agent("new", {"telegram": {"bot_token": TG}}))] == ["old", "new"]


@pytest.mark.parametrize("chans, config, words", [
    ({"whatsapp": {"token": "x"}}, None, ["channels.whatsapp", "telegram, discord, slack"]),
    ({"telegram": {}}, None, ["fleet_agents[coder].channels.telegram.bot_token is required"]),
    ({"slack": {"bot_token": "b"}}, None, ["channels.slack.app_token is required"]),
    ({"telegram": {"bot_token": "t", "dm_policy": "everyone"}}, None, ["dm_policy='everyone'", "pairing, allowlist"]),
    ({"telegram": {"bot_token": "t", "group_policy": "all"}}, None, ["group_policy='all'"]),
    ({"telegram": {"bot_token": "t", "tokn": "x"}}, None, ["unknown key(s) tokn"]),
    ({"telegram": {"bot_token": "t", "config": {"botToken": "plain"}}}, None, ["config must not hold botToken"]),
    ({}, {"channels": {"discord": {"token": "plain-discord"}}}, ["config.channels.discord holds token", "plain text"]),
])
def test_bad_channel_input_is_refused_with_the_variable_named(chans, config, words):
    with pytest.raises(fleet_plan.PlanError) as err:
        plan(agent("coder", chans, config))
    for word in words:
        assert word in str(err.value)
    assert "plain-discord" not in str(err.value)


def test_a_token_nested_in_raw_settings_is_refused():
    with pytest.raises(fleet_plan.PlanError, match="accounts.work.botToken"):
        plan(agent("coder", {}, {"channels": {"telegram": {"accounts": {"work": {"botToken": "plain"}}}}}))
    with pytest.raises(fleet_plan.PlanError, match="accounts.work.token"):
        plan(agent("coder", {"discord": {"token": "t", "config": {"accounts": {"work": {"token": "plain"}}}}}))
