#!/usr/bin/env python3
"""A small misbehaving OpenAI-compatible server for cai's remote tests (standard library only).

It listens on 127.0.0.1 only, on the port given (0: the system picks one), and prints "PORT <n>" on
its first line of standard output once it accepts connections. It serves /v1/completions (with echo and
logprobs) and /v1/chat/completions with deterministic answers derived from the request, and answers
each request according to a script of modes:

  ok         200 with a valid answer
  500        HTTP 500
  429        HTTP 429 with Retry-After (--retry-after seconds)
  400        HTTP 400 (a request the server refuses)
  garbage    200 with a body that is not JSON
  truncated  200 with JSON cut in half (the HTTP message itself is complete)
  cut        200 whose connection closes before the announced body length
  close      closes the connection without any answer
  hang       sleeps (--hang seconds) before answering: for deadline tests
  nologprobs 200 without logprobs (a server that cannot score)
  noecho     200 with logprobs that do not echo the prompt
  die        the whole process exits at once, without answering

The script is consumed one request at a time (--script ok,500,ok); when it is used up, --default
applies. --die-after N makes the process exit on the (N+1)-th model request. POST /control with a JSON
object {"script": [...], "default": "...", "die_after": N} replaces them at run time; GET /stats
returns the counts, the most requests hanging at once, the connections used, the request ids seen, the last request body and whether the bearer token matched
the variable named by --expect-key-env (the key itself is never echoed).

Deterministic answers: a completion is " reply-<crc32 of prompt and seed>.\\n\\nHuman: more" (the
client must cut it at its stop sequences); a chat answer is "chat <roles> <crc32>". Echoed prompts are
split into tokens by the regex ' ?[^ \\n]+|\\s+', each scored -0.25 per code point, the first token null.
"""

import argparse
import json
import os
import re
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = re.compile(r" ?[^ \n]+|\s+")


def token_split(text):
    return TOKEN.findall(text)


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.script = [m for m in args.script.split(",") if m] if args.script else []
        self.default = args.default
        self.die_after = args.die_after
        self.retry_after = args.retry_after
        self.hang = args.hang
        self.expected_key = os.environ.get(args.expect_key_env) if args.expect_key_env else None
        self.model_requests = 0
        self.modes = {}
        self.request_ids = []
        self.last = None
        self.auth = "none"
        self.in_flight = 0
        self.max_in_flight = 0
        self.clients = set()  # (address, port) of the connections that sent model requests

    def enter(self):
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self):
        with self.lock:
            self.in_flight -= 1

    def next_mode(self, body, request_id, auth, client):
        with self.lock:
            self.model_requests += 1
            self.clients.add(client)
            if self.die_after is not None and self.model_requests > self.die_after:
                return "die"
            mode = self.script.pop(0) if self.script else self.default
            self.modes[mode] = self.modes.get(mode, 0) + 1
            self.request_ids.append(request_id)
            self.last = body
            if auth is None:
                self.auth = "none"
            elif self.expected_key is not None and auth == "Bearer " + self.expected_key:
                self.auth = "ok"
            else:
                self.auth = "wrong"
            return mode


def digest(*parts):
    return "%08x" % (zlib.crc32("\x1f".join(str(p) for p in parts).encode("utf-8")) & 0xFFFFFFFF)


def completion(body, mode):
    prompt = body.get("prompt", "")
    if isinstance(prompt, list):
        prompt = prompt[0]
    seed = body.get("seed", 0)
    if body.get("echo"):
        generated = " x"
        text = prompt + generated
        tokens = token_split(prompt) + [generated]
        offsets, pos = [], 0
        for t in tokens:
            offsets.append(pos)
            pos += len(t)
        logprobs = [None] + [-0.25 * len(t) for t in tokens[1:]]
        choice = {"index": 0, "text": text, "finish_reason": "length",
                  "logprobs": {"tokens": tokens, "token_logprobs": logprobs, "text_offset": offsets,
                               "top_logprobs": None}}
        if mode == "nologprobs":
            choice["logprobs"] = None
        if mode == "noecho":
            choice["text"] = generated
            choice["logprobs"] = {"tokens": [generated], "token_logprobs": [-1.0], "text_offset": [0]}
    else:
        choice = {"index": 0, "text": " reply-%s.\n\nHuman: more" % digest(prompt, seed),
                  "finish_reason": "stop", "logprobs": None}
    return {"id": "cmpl-fake", "object": "text_completion", "model": body.get("model", "fake"),
            "choices": [choice]}


def chat(body):
    messages = body.get("messages", [])
    roles = "/".join(m.get("role", "?") for m in messages)
    content = "chat %s %s" % (roles, digest(json.dumps(messages, sort_keys=True), body.get("seed", 0)))
    return {"id": "chat-fake", "object": "chat.completion", "model": body.get("model", "fake"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"}]}


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the client may reuse its connections

        def log_message(self, *args):  # quiet
            pass

        def send_json(self, status, obj, extra_headers=()):
            data = json.dumps(obj).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in extra_headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def send_raw(self, status, data, length=None):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data) if length is None else length))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

        def do_GET(self):
            if self.path.endswith("/stats"):
                with state.lock:
                    self.send_json(200, {"requests": state.model_requests, "modes": state.modes,
                                         "request_ids": state.request_ids, "last": state.last,
                                         "auth": state.auth, "max_in_flight": state.max_in_flight,
                                         "connections": len(state.clients)})
            elif self.path.endswith("/models"):
                self.send_json(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
            else:
                self.send_json(404, {"error": "not found"})

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                self.send_json(400, {"error": "the request is not JSON"})
                return
            if self.path.endswith("/control"):
                with state.lock:
                    if "script" in body:
                        state.script = list(body["script"])
                    if "default" in body:
                        state.default = body["default"]
                    if "die_after" in body:
                        state.die_after = body["die_after"]
                self.send_json(200, {"ok": True})
                return
            if not (self.path.endswith("/completions")):
                self.send_json(404, {"error": "not found"})
                return
            mode = state.next_mode(body, self.headers.get("X-Request-Id"), self.headers.get("Authorization"),
                                   self.client_address)
            self.answer(body, mode)

        def answer(self, body, mode):
            if mode == "die":
                os._exit(3)
            if mode == "hang":
                state.enter()  # counted while the client must still be waiting
                time.sleep(state.hang)
                state.leave()
                mode = "ok"
            if mode in ("ok", "nologprobs", "noecho"):
                answer = chat(body) if self.path.endswith("/chat/completions") else completion(body, mode)
                self.send_json(200, answer)
            elif mode == "500":
                self.send_json(500, {"error": "internal error (scripted)"})
            elif mode == "400":
                self.send_json(400, {"error": "bad request (scripted)"})
            elif mode == "429":
                self.send_json(429, {"error": "slow down (scripted)"},
                               [("Retry-After", str(state.retry_after))])
            elif mode == "garbage":
                self.send_raw(200, b"<html>this is not JSON</html>")
            elif mode == "truncated":
                data = json.dumps(completion(body, "ok")).encode("utf-8")
                self.send_raw(200, data[: len(data) // 2])
            elif mode == "cut":
                data = json.dumps(completion(body, "ok")).encode("utf-8")
                self.send_raw(200, data[: len(data) // 2], length=len(data))
                self.close_connection = True
            elif mode == "close":
                self.close_connection = True
            else:
                self.send_json(500, {"error": "unknown scripted mode " + mode})

    return Handler


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--default", default="ok")
    p.add_argument("--script", default="")
    p.add_argument("--die-after", type=int, default=None)
    p.add_argument("--retry-after", type=float, default=0.01)
    p.add_argument("--hang", type=float, default=30.0)
    p.add_argument("--expect-key-env", default="")
    args = p.parse_args()
    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # the default 5 drops concurrent connects (a 1 s SYN retry)

    server = Server(("127.0.0.1", args.port), make_handler(State(args)))
    server.daemon_threads = True
    print("PORT %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
