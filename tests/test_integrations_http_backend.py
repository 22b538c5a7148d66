"""HttpBackend's transport only, against a stand-in server on 127.0.0.1 that answers the
documented routes of the reward service (issue 14) with canned bodies: it computes no reward.
The same backend against the real ``lanser serve`` is tested when the service lands."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lanser.integrations.backend import HttpBackend, RewardClient, ServiceError
from lanser.integrations.episode import Episode

RECORD = {"step": 1, "op": "patch", "status": "ok", "processReward": {"r": 0.9}, "diagnostics": {"errors": 2}}


class StandIn(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, object, str | None]] = []
    busy = 1  # answer 429 this many times first

    def log_message(self, *args):  # quiet
        pass

    def _answer(self, status, body, headers=()):
        raw = json.dumps(body).encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _handle(self, method):
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n)) if n else None
        StandIn.seen.append((method, self.path, body, self.headers.get("Authorization")))
        if StandIn.busy > 0 and self.path.endswith("/steps"):
            StandIn.busy -= 1
            return self._answer(429, {"error": {"code": "E/BUSY"}}, [("Retry-After", "0.05")])
        if method == "POST" and self.path == "/v1/sessions":
            return self._answer(200, {"id": "abc"})
        if method == "POST" and self.path == "/v1/sessions/abc/steps":
            if body.get("op") == "invalid":
                return self._answer(400, {"error": {"code": "E/BAD_INPUT"}})
            return self._answer(200, RECORD)
        if method == "GET" and self.path == "/v1/sessions/abc":
            return self._answer(200, {"records": [RECORD]})
        if method == "DELETE" and self.path.startswith("/v1/sessions/abc"):
            return self._answer(200, {"aggregate": "min", "return": 0.9, "records": [RECORD]})
        if method == "POST" and self.path == "/v1/score":
            return self._answer(200, {"records": [RECORD, RECORD]})
        return self._answer(404, {"error": "no route"})

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_DELETE(self):
        self._handle("DELETE")


def test_http_backend_speaks_the_documented_api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    client = RewardClient(HttpBackend(url, repo="/r", base="HEAD", options={"clip": 5}, token="t0k"))
    try:
        ep = Episode(client)
        turn = ep.act("```diff\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n```")
        assert turn.reward == pytest.approx(0.9) and "step 1 patch: ok" in turn.observation
        assert client.records("abc") == [RECORD]
        assert ep.finish("min")["return"] == 0.9
        assert client.score([{"op": "reset"}]) == [RECORD, RECORD]
        with pytest.raises(ServiceError) as info:
            asyncio.run(client.acall(lambda: client.backend.step("abc", {"op": "invalid"})))
        assert info.value.status == 400
        seen = [(m, p) for m, p, _, _ in StandIn.seen]
        assert seen[:3] == [("POST", "/v1/sessions"), ("POST", "/v1/sessions/abc/steps"),
                            ("POST", "/v1/sessions/abc/steps")]          # 429, then retried
        assert ("DELETE", "/v1/sessions/abc?aggregate=min") in seen
        assert StandIn.seen[0][2] == {"repo": "/r", "base": "HEAD", "options": {"clip": 5}}
        assert all(auth == "Bearer t0k" for _, _, _, auth in StandIn.seen)
        score_body = next(b for m, p, b, _ in StandIn.seen if p == "/v1/score")
        assert score_body["steps"] == [{"op": "reset"}] and score_body["repo"] == "/r"
    finally:
        client.shutdown()
        server.shutdown()
        server.server_close()
