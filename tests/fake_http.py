"""A loopback JSON-over-HTTP server for the fakes of external providers (stdlib only): one POST
endpoint, served from a thread; a fake says what it answers to each request body."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

Reply = tuple[int, dict[str, Any]]


class LoopbackJSONServer:
    path = ""  # the one POST path, e.g. "/v1/chat/completions"
    not_found: dict[str, Any] = {"error": "not found"}  # the provider's own 404 body

    def __init__(self) -> None:
        if not self.path:
            raise TypeError(f"{type(self).__name__} names no path to serve")
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, body: dict[str, Any], headers: Message) -> Reply:
        """The status and JSON body for one request (called on the server's threads)."""
        raise NotImplementedError

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """Around answering and sending one request (a fake may count requests in flight)."""
        yield

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
                return

            def do_POST(self) -> None:
                if self.path.rstrip("/") != fake.path:
                    self._send(404, fake.not_found)
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                with fake.serving():
                    self._send(*fake.answer(body, self.headers))

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
