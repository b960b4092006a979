"""Stand-in for what costs money or lives outside the machine: model
providers (OpenAI chat completions and responses, Anthropic messages),
the reviewer's and the watchdog's LLM endpoint, and alert webhooks.

Every request is appended to DIR/requests.jsonl: path, the API key it
carried, the model, whether it asked for a stream, the body, and what
was answered. DIR/rules.json is read again on every request, so a test
changes the endpoint's behaviour by rewriting it:

  answer     text of every reply (default "ok"); "down" answers HTTP 503
  answers    {MODEL: text}: that model always answers this (no scripts)
  failures   [{key?, model?, status, retry_after?, message?}]: the first
             rule whose key and model match the request answers with that
             error instead (429 with Retry-After, 500, ...)
  delay      seconds to wait before answering (a slow model)
  usage      {"input_tokens": n, "output_tokens": n} on every answer
  scripts    {NAME: [step, ...]}: a conversation whose last user message
             holds [[script:NAME]] is answered with step k after k tool
             results; a step is {"text": T} or {"tool": NAME, "input": {...}}

Answers are streamed (SSE) when the request asks for it, the way each API
streams; OpenClaw always asks.

It also plays Telegram's Bot API (/bot<TOKEN>/<method>, a channel's
apiRoot pointed here): the bot exists, no update ever comes (a long poll
is held 10 s), every other call succeeds.
"""

import argparse
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SCRIPT_RE = re.compile(r"\[\[script:([\w.-]+)\]\]")
DEFAULT_USAGE = {"input_tokens": 120, "output_tokens": 30}
TELEGRAM_RE = re.compile(r"^/bot[^/]+/(\w+)")
TELEGRAM_BOT = {"id": 4242, "is_bot": True, "first_name": "Fake", "username": "fake_agent_bot",
                "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}


def text_of(content):
    """The text of a message's content, whatever the API's shape."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(text_of(part.get("text") or part.get("content") or "") for part in content
                        if isinstance(part, dict))
    return ""


def conversation(body):
    """[(role, text)] of the request, roles user/assistant/tool, for the
    three APIs: Anthropic (tool_result parts in user messages), chat
    completions (role tool) and responses (function_call_output items)."""
    turns = []
    for item in body.get("messages") or body.get("input") or []:
        if not isinstance(item, dict):
            continue
        kind, role, content = item.get("type"), item.get("role"), item.get("content")
        if kind == "function_call_output" or role == "tool":
            turns.append(("tool", text_of(item.get("output") or content)))
        elif kind == "function_call":
            turns.append(("assistant", ""))
        elif role == "user" and isinstance(content, list) and any(
                isinstance(p, dict) and p.get("type") == "tool_result" for p in content):
            turns += [("tool", text_of(p.get("content"))) for p in content if p.get("type") == "tool_result"]
        elif role in ("user", "assistant"):
            turns.append((role, text_of(content)))
    return turns


def pick_step(rules, body, model):
    """The scripted step for this request, or a plain text answer. The
    script is named in the newest user message that names one (OpenClaw
    may add context messages after the user's own)."""
    fixed = (rules.get("answers") or {}).get(model)
    if fixed is not None:
        return {"text": fixed}
    turns = conversation(body)
    for index in range(len(turns) - 1, -1, -1):
        role, text = turns[index]
        found = SCRIPT_RE.findall(text) if role == "user" else []
        steps = (rules.get("scripts") or {}).get(found[-1]) if found else None
        if steps:
            done = sum(1 for who, dummy in turns[index + 1:] if who == "tool")
            return steps[min(done, len(steps) - 1)]
    return {"text": rules.get("answer", "ok")}


def failure_for(rules, key, model):
    for rule in rules.get("failures") or []:
        if rule.get("key", key) == key and rule.get("model", model) == model:
            return rule
    return None


# ------------------------------------------------------------- the APIs

def anthropic_events(step, model, usage):
    """Anthropic messages: (stop_reason, content blocks, SSE events)."""
    if "tool" in step:
        block = {"type": "tool_use", "id": "toolu_%d" % time.monotonic_ns(), "name": step["tool"], "input": {}}
        delta = {"type": "input_json_delta", "partial_json": json.dumps(step.get("input") or {})}
        stop, content = "tool_use", [dict(block, input=step.get("input") or {})]
    else:
        block, delta = {"type": "text", "text": ""}, {"type": "text_delta", "text": step["text"]}
        stop, content = "end_turn", [{"type": "text", "text": step["text"]}]
    message = {"id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": [],
               "stop_reason": None, "stop_sequence": None,
               "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 0, "cache_creation_input_tokens": 0,
                         "cache_read_input_tokens": 0}}
    events = [("message_start", {"type": "message_start", "message": message}),
              ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
              ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
              ("content_block_stop", {"type": "content_block_stop", "index": 0}),
              ("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                 "usage": {"output_tokens": usage["output_tokens"]}}),
              ("message_stop", {"type": "message_stop"})]
    whole = dict(message, content=content, stop_reason=stop, usage=usage)
    return whole, events


def chat_events(step, model, usage):
    """OpenAI chat completions: (whole answer, SSE chunks)."""
    tokens = {"prompt_tokens": usage["input_tokens"], "completion_tokens": usage["output_tokens"],
              "total_tokens": usage["input_tokens"] + usage["output_tokens"],
              "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}
    if "tool" in step:
        call = {"index": 0, "id": "call_%d" % time.monotonic_ns(), "type": "function",
                "function": {"name": step["tool"], "arguments": json.dumps(step.get("input") or {})}}
        message, finish = {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
    else:
        message, finish = {"role": "assistant", "content": step["text"]}, "stop"
    base = {"id": "chatcmpl-fake", "model": model, "created": int(time.time())}
    whole = dict(base, object="chat.completion", usage=tokens,
                 choices=[{"index": 0, "finish_reason": finish, "message": message}])
    chunk = dict(base, object="chat.completion.chunk")
    events = [(None, dict(chunk, choices=[{"index": 0, "delta": message, "finish_reason": None}])),
              (None, dict(chunk, choices=[{"index": 0, "delta": {}, "finish_reason": finish}])),
              (None, dict(chunk, choices=[], usage=tokens))]
    return whole, events


def responses_events(step, model, usage):
    """OpenAI responses: (whole response, SSE events)."""
    tokens = {"input_tokens": usage["input_tokens"], "output_tokens": usage["output_tokens"],
              "total_tokens": usage["input_tokens"] + usage["output_tokens"],
              "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}
    if "tool" in step:
        item = {"type": "function_call", "id": "fc_fake", "call_id": "call_%d" % time.monotonic_ns(),
                "name": step["tool"], "arguments": json.dumps(step.get("input") or {}), "status": "completed"}
        middle = [("response.function_call_arguments.done", {"item_id": item["id"], "output_index": 0,
                                                             "arguments": item["arguments"]})]
    else:
        part = {"type": "output_text", "text": step["text"], "annotations": []}
        item = {"type": "message", "id": "msg_fake", "role": "assistant", "status": "completed", "content": [part]}
        middle = [("response.content_part.added", {"item_id": item["id"], "output_index": 0, "content_index": 0,
                                                   "part": dict(part, text="")}),
                  ("response.output_text.delta", {"item_id": item["id"], "output_index": 0, "content_index": 0,
                                                  "delta": step["text"]}),
                  ("response.output_text.done", {"item_id": item["id"], "output_index": 0, "content_index": 0,
                                                 "text": step["text"]}),
                  ("response.content_part.done", {"item_id": item["id"], "output_index": 0, "content_index": 0,
                                                  "part": part})]
    response = {"id": "resp_fake", "object": "response", "created_at": int(time.time()), "model": model,
                "status": "in_progress", "output": []}
    whole = dict(response, status="completed", output=[item], usage=tokens)
    added = dict(item, status="in_progress", content=[]) if item["type"] == "message" else dict(item, arguments="")
    events = ([("response.created", {"response": response}),
               ("response.output_item.added", {"output_index": 0, "item": added})] + middle
              + [("response.output_item.done", {"output_index": 0, "item": item}),
                 ("response.completed", {"response": whole})])
    return whole, [(name, dict(data, type=name)) for name, data in events]


API = {"/messages": anthropic_events, "/chat/completions": chat_events, "/responses": responses_events}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (http.server's name)
        if TELEGRAM_RE.match(self.path):
            self.telegram(None)
            return
        self.record(None, {"status": 200})
        self.reply(200, {"object": "list", "data": []})

    def do_POST(self):  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode("utf-8")
        try:
            body = json.loads(raw or "null")
        except ValueError:
            body = raw
        if TELEGRAM_RE.match(self.path):
            self.telegram(body)
            return
        api = next((fn for suffix, fn in API.items() if self.path.split("?")[0].endswith(suffix)), None)
        if api is None:
            self.record(body, {"status": 200})
            self.reply(200, {"ok": True})
            return
        rules = self.server.rules()
        key = self.key()
        model = body.get("model") if isinstance(body, dict) else None
        time.sleep(float(rules.get("delay", 0)))
        failure = failure_for(rules, key, model)
        if (rules.get("answers") or {}).get(model, rules.get("answer")) == "down" and not failure:
            failure = {"status": 503, "message": "unavailable"}
        if failure:
            self.record(body, {"status": failure["status"]})
            self.error(api, failure)
            return
        step = pick_step(rules, body, model)
        whole, events = api(step, model, dict(DEFAULT_USAGE, **(rules.get("usage") or {})))
        self.record(body, {"status": 200, "step": step, "usage": rules.get("usage") or DEFAULT_USAGE})
        if isinstance(body, dict) and body.get("stream"):
            self.stream(events, done=api is chat_events)
        else:
            self.reply(200, whole)

    def telegram(self, body):
        method = TELEGRAM_RE.match(self.path).group(1)
        self.record(body, {"status": 200, "telegram": method})
        if method == "getMe":
            self.reply(200, {"ok": True, "result": TELEGRAM_BOT})
        elif method == "getUpdates":
            time.sleep(10)
            self.reply(200, {"ok": True, "result": []})
        else:
            self.reply(200, {"ok": True, "result": True})

    # ------------------------------------------------------------ helpers

    def key(self):
        bearer = self.headers.get("Authorization") or ""
        return self.headers.get("x-api-key") or (bearer[7:] if bearer.startswith("Bearer ") else bearer) or None

    def record(self, body, answered):
        entry = {"time": time.time(), "path": self.path, "key": self.key(), "authorization":
                 self.headers.get("Authorization"), "model": body.get("model") if isinstance(body, dict) else None,
                 "stream": bool(isinstance(body, dict) and body.get("stream")), "body": body, "answered": answered}
        with self.server.lock_log():
            with open(self.server.log, "a", encoding="utf-8") as log:
                log.write(json.dumps(entry) + "\n")

    def error(self, api, failure):
        message = failure.get("message") or ("rate limited" if failure["status"] == 429 else "server error")
        kind = {429: "rate_limit_error", 529: "overloaded_error"}.get(failure["status"], "api_error")
        payload = ({"type": "error", "error": {"type": kind, "message": message}} if api is anthropic_events
                   else {"error": {"message": message, "type": kind, "code": kind}})
        headers = {"Retry-After": str(failure["retry_after"])} if "retry_after" in failure else {}
        self.reply(failure["status"], payload, headers)

    def reply(self, status, payload, headers=None):
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        for name, value in dict({"Content-Type": "application/json"}, **(headers or {})).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def stream(self, events, done):
        chunks = ["%sdata: %s\n\n" % ("event: %s\n" % name if name else "", json.dumps(data)) for name, data in events]
        data = ("".join(chunks) + ("data: [DONE]\n\n" if done else "")).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    def __init__(self, port, directory):
        super().__init__(("127.0.0.1", port), Handler)
        self._lock = threading.Lock()
        self.log = os.path.join(directory, "requests.jsonl")
        self.rules_file = os.path.join(directory, "rules.json")

    def rules(self):
        try:
            with open(self.rules_file, encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return {}

    def lock_log(self):
        return self._lock


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True, help="holds rules.json (read) and requests.jsonl (appended)")
    args = parser.parse_args()
    Server(args.port, args.dir).serve_forever()


if __name__ == "__main__":
    main()
