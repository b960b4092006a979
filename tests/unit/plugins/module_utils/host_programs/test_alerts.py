"""Webhook payloads: agent text in them can ping no one and forge no link."""

from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import alerts

HOSTILE = "agent-down `coder`: `<!channel> see <https://evil.example|the fix> & @everyone`"


def test_slack_text_has_its_three_escapes():
    payload = alerts.webhook_payload(HOSTILE)
    assert set(payload) == {"text"}
    assert "<" not in payload["text"] and ">" not in payload["text"]
    assert "&lt;!channel&gt;" in payload["text"] and "&amp; @everyone" in payload["text"]


def test_discord_content_parses_no_mention_and_fits_a_message():
    payload = alerts.webhook_payload(HOSTILE, "discord")
    assert payload == {"content": HOSTILE, "allowed_mentions": {"parse": []}}
    long = alerts.webhook_payload("x" * 5000, "discord")["content"]
    assert len(long) == alerts.DISCORD_MAX and long.endswith("\u2026")


def test_quoted_text_has_no_c1_control_bidi_override_or_zero_width_character():
    hostile = "ok\x1b[2J\x9b31m\x85next line\u2028\u202egnp.exe\u2066\u200b\ufeffend"
    quoted = alerts.quote(hostile)
    assert not any(ch in quoted for ch in "\x1b\x9b\x85\u2028\u202e\u2066\u200b\ufeff")
    assert quoted.startswith("`ok") and quoted.endswith("end`")
