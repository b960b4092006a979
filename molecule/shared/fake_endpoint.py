"""Stand-in for the things that cost money or live outside the machine:
alert webhooks and an OpenAI-compatible chat endpoint. Every request is
appended to --log as one JSON line. A POST to .../chat/completions is
answered with the text of --answer-file as the assistant's message, or
with HTTP 503 when that file says `down`."""

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode("utf-8")
        with open(self.server.args.log, "a", encoding="utf-8") as log:
            log.write(json.dumps({"path": self.path, "body": json.loads(body or "null"),
                                  "authorization": self.headers.get("Authorization")}) + "\n")
        if self.path.endswith("/chat/completions"):
            with open(self.server.args.answer_file, encoding="utf-8") as handle:
                answer = handle.read().strip()
            if answer == "down":
                self.reply(503, {"error": "unavailable"})
                return
            self.reply(200, {"id": "fake", "object": "chat.completion", "model": "fake",
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": answer}}]})
        else:
            self.reply(200, {"ok": True})

    def reply(self, status, payload):
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--answer-file", required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.args = args
    server.serve_forever()


if __name__ == "__main__":
    main()
