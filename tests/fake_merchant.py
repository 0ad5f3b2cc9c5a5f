"""A local merchant-data provider speaking domain/merchant_http.py's wire contract (stdlib only,
loopback only), for tests.

Modes, switchable at runtime: ok, slow (answers after `delay_s`), fail500 (HTTP 500), malformed
(a reply that is not the schema). It knows the merchants in `merchants` (by upper-case name),
counts requests and keeps every search it was sent, so a test can check what left the company.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Mode = Literal["ok", "slow", "fail500", "malformed"]

DEFAULT_MERCHANTS: dict[str, dict[str, Any]] = {
    "ACME TOOLS INC": {
        "id": "M-1001",
        "name": "ACME TOOLS",
        "mcc": "5251",
        "mcc_description": "Hardware stores",
        "card_acceptance": {"accepts_cards": True, "level2": True, "level3": False},
        "last_activity_date": "2026-11-20",
    },
}


class FakeMerchantProvider:
    def __init__(self) -> None:
        self.mode: Mode = "ok"
        self.delay_s = 1.0
        self.merchants: dict[str, dict[str, Any]] = dict(DEFAULT_MERCHANTS)
        self.requests = 0
        self.searches: list[dict[str, Any]] = []
        self.authorization: list[str | None] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def reset(self) -> None:
        with self._lock:
            self.mode = "ok"
            self.delay_s = 1.0
            self.merchants = dict(DEFAULT_MERCHANTS)
            self.requests = 0
            self.searches.clear()
            self.authorization.clear()

    def start(self) -> FakeMerchantProvider:
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
                if self.path.rstrip("/") != "/v1/merchant-searches":
                    self._send(404, {"error": "not found"})
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                with fake._lock:
                    fake.requests += 1
                    fake.searches.extend(body.get("searches", []))
                    fake.authorization.append(self.headers.get("Authorization"))
                mode = fake.mode
                if mode == "fail500":
                    self._send(500, {"error": "upstream exploded"})
                    return
                if mode == "slow":
                    time.sleep(fake.delay_s)
                if mode == "malformed":
                    self._send(200, {"matches": "sure"})
                    return
                results = []
                for search in body.get("searches", []):
                    merchant = fake.merchants.get(" ".join(str(search.get("merchant_name", "")).upper().split()))
                    results.append(
                        {"reference": search.get("reference"), "matched": merchant is not None,
                         "match_confidence": 0.93 if merchant else None, "merchant": merchant}
                    )
                self._send(200, {"results": results})

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
