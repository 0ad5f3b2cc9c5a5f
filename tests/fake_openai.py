"""A local OpenAI-compatible chat-completions server for tests (stdlib only, loopback only).

Modes, switchable at runtime: ok (valid JSON reply), malformed (reply text that is not the schema),
slow (answers after `delay_s`), fail500 (HTTP 500). It counts requests and the peak number in flight.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from email.message import Message
from typing import Any, Literal

from tests.fake_http import LoopbackJSONServer, Reply

Mode = Literal["ok", "malformed", "slow", "fail500"]

DEFAULT_REPLY: dict[str, Any] = {
    "entity_type": "business",
    "subtype": "nonprofit",
    "sic_code": "8661",
    "confidence": 0.91,
    "reason": "church name",
}


class FakeOpenAI(LoopbackJSONServer):
    path = "/v1/chat/completions"
    not_found = {"error": {"message": "not found"}}

    def __init__(self) -> None:
        self.mode: Mode = "ok"
        self.reply: dict[str, Any] = dict(DEFAULT_REPLY)
        self.delay_s = 1.0
        self.requests = 0
        self.request_bodies: list[dict[str, Any]] = []
        self.request_times: list[float] = []
        self.max_in_flight = 0
        self._in_flight = 0
        super().__init__()

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def answer(self, body: dict[str, Any], headers: Message) -> Reply:
        with self._lock:
            self.requests += 1
            self.request_bodies.append(body)
            self.request_times.append(time.monotonic())
        return self._reply(body)

    def _reply(self, body: dict[str, Any]) -> Reply:
        mode = self.mode
        if mode == "fail500":
            return 500, {"error": {"message": "upstream exploded", "type": "server_error"}}
        if mode == "slow":
            time.sleep(self.delay_s)
        content = "Sure! It is a business." if mode == "malformed" else json.dumps(self.reply)
        return 200, {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70},
        }
