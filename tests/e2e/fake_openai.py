#!/usr/bin/env python3
"""A scripted OpenAI-compatible endpoint for the agent's black-box test.

Usage: fake_openai.py SCRIPT.json PORT_FILE
SCRIPT.json maps a question (the first user message) to the list of replies for attempts
1, 2, ...; the last one repeats. It binds a free loopback port and writes it to PORT_FILE.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

script = json.load(open(sys.argv[1], encoding="utf-8"))


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            self.reply(200, None)
        elif self.path == "/v1/models":
            self.reply(200, {"object": "list", "data": [{"id": "inventory", "object": "model", "root": "/a", "parent": "base"}]})
        else:
            self.reply(404, {"error": {"message": "no " + self.path, "type": "NotFoundError", "code": 404}})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v1/chat/completions":
            self.reply(404, {"error": {"message": "no " + self.path, "type": "NotFoundError", "code": 404}})
            return
        messages = body["messages"]
        question = messages[1]["content"]
        attempt = (len(messages) - 2) // 2
        replies = script.get(question, ["I do not know."])
        content = replies[min(attempt, len(replies) - 1)]
        self.reply(200, {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60},
        })


server = HTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[2], "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
