# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP to things outside the host: alert webhooks, CI status APIs and
OpenAI-compatible chat endpoints. Shared by the oversight audit and the
watchdog. Standard library only: urllib, not ansible.module_utils.urls,
because this code also runs on the host without Ansible.
"""

from __future__ import annotations

import json
import urllib.request

from ansible_collections.agentfleet.vps.plugins.module_utils import config_txn, netio


class AnswerError(ValueError):
    """An endpoint answered, but not with what was asked for."""


def http_open(request, timeout):
    """Open request; proxies from the environment apply, and the whole
    exchange must end within timeout seconds (netio)."""
    if not request.full_url.startswith(("http://", "https://")):
        raise ValueError("only http(s) URLs are used, not %r" % request.full_url[:100])
    return netio.open_url(request, timeout)


def post_json(url, payload, headers=None, timeout=30):
    """(status, body text) of a JSON POST; HTTP errors raise."""
    request = urllib.request.Request(url, data=json.dumps(payload).encode("utf-8"), method="POST",
                                     headers=dict({"Content-Type": "application/json"}, **(headers or {})))
    with http_open(request, timeout) as response:
        return response.status, response.read().decode("utf-8", "replace")


def chat(url, model, key, system, user, timeout=60):
    """The assistant's text for one system and one user message from an
    OpenAI-compatible endpoint (url is the API base, e.g. .../v1).
    Raises OSError when it cannot be reached, AnswerError on a reply
    without a message."""
    _code, body = post_json(url.rstrip("/") + "/chat/completions", {
        "model": model, "temperature": 0,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]},
        {"Authorization": "Bearer " + key} if key else {}, timeout)
    try:
        return json.loads(body)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise AnswerError("no chat message in the answer (%s): %r" % (exc, body[:200])) from None


def json_answer(text, schema):
    """text parsed as JSON and checked against schema, or AnswerError
    naming every way it misses (a model's prose, code fences included,
    is refused rather than guessed at)."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise AnswerError("answer is not JSON (%s): %r" % (exc, str(text)[:200])) from None
    errors = config_txn.schema_errors(data, schema)
    if errors:
        raise AnswerError("answer does not match the schema: %s" % "; ".join(
            "%s: %s" % (e["path"], e["message"]) for e in errors))
    return data
