"""A local OpenAI-compatible chat-completions server for tests (stdlib only, loopback only).

Modes, switchable at runtime: ok (valid JSON reply), malformed (reply text that is not the schema),
slow (answers after `delay_s`), fail500 (HTTP 500). It counts requests and the peak number in flight.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Mode = Literal["ok", "malformed", "slow", "fail500"]

DEFAULT_REPLY: dict[str, Any] = {
    "entity_type": "business",
    "subtype": "nonprofit",
    "sic_code": "8661",
    "confidence": 0.91,
    "reason": "church name",
}


class FakeOpenAI:
    def __init__(self) -> None:
        self.mode: Mode = "ok"
        self.reply: dict[str, Any] = dict(DEFAULT_REPLY)
        self.delay_s = 1.0
        self.requests = 0
        self.request_bodies: list[dict[str, Any]] = []
        self.request_times: list[float] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
                return

            def do_POST(self) -> None:
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": "not found"}})
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                with fake._lock:
                    fake.requests += 1
                    fake.request_bodies.append(body)
                    fake.request_times.append(time.monotonic())
                    fake._in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake._in_flight)
                try:
                    self._answer(body)
                finally:
                    with fake._lock:
                        fake._in_flight -= 1

            def _answer(self, body: dict[str, Any]) -> None:
                mode = fake.mode
                if mode == "fail500":
                    self._send(500, {"error": {"message": "upstream exploded", "type": "server_error"}})
                    return
                if mode == "slow":
                    time.sleep(fake.delay_s)
                content = "Sure! It is a business." if mode == "malformed" else json.dumps(fake.reply)
                self._send(
                    200,
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", "fake"),
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": content},
                            }
                        ],
                        "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70},
                    },
                )

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        return Handler
