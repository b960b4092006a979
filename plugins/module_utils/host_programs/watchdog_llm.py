# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The watchdog's optional LLM: a diagnosis and one allow-listed action for
an agent that is down, as a schema-checked JSON answer (watchdog.py). Its
absence or a bad answer only means the ladder."""

from __future__ import annotations

import json

from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import endpoints

ACTIONS = ("restart", "reset_failed_start", "restore_last_good", "doctor_fix", "kill_port_holder")


ANSWER_SCHEMA = {
    "type": "object",
    "required": ["diagnosis", "action"],
    "additionalProperties": False,
    "properties": {
        "diagnosis": {"type": "string", "minLength": 1, "maxLength": 2000},
        "action": {"enum": list(ACTIONS) + ["run_script"]},
        "script": {"type": "string", "maxLength": 20000},
    },
}


PROMPT = (
    "You are the watchdog of an OpenClaw gateway that is down. From the unit state and the last log lines, "
    "diagnose the cause in one or two sentences and choose exactly one action: restart (restart the unit), "
    "reset_failed_start (clear a start limit and start), restore_last_good (put back the last config that was "
    "verified healthy, then restart), doctor_fix (openclaw doctor --fix for this profile, then restart), "
    "kill_port_holder (stop a stray process of the agent's own user that holds the gateway's port, then restart), "
    "or run_script with a POSIX shell script in `script`. Answer with one JSON object and nothing else, "
    "matching this JSON Schema: " + json.dumps(ANSWER_SCHEMA, sort_keys=True))


def ask_llm(config, agent, symptom, excerpt):
    """(answer dict, None) or (None, reason). Never raises."""
    llm = config.get("llm") or {}
    if not llm.get("url"):
        return None, "no LLM configured"
    user = "Agent %s (unit %s, port %d): %s\n\n%s" % (agent["name"], agent["unit"], agent["port"], symptom, excerpt)
    try:
        text = endpoints.chat(llm["url"], llm.get("model"), config["secrets"].get("llm_api_key"), PROMPT, user,
                              llm.get("timeout", 30))
        return endpoints.json_answer(text, ANSWER_SCHEMA), None
    except ImportError as exc:
        return None, "cannot check the answer: %s" % exc
    except (OSError, ValueError) as exc:
        return None, "LLM %s: %s" % (llm.get("model"), exc)
