"""Operator endpoints that change the worker's state, apart from /health, /ready and /metrics.

Those three are read-only and are scraped from outside the pod; these are not served with them.
They listen on ``operator_host`` (loopback unless configured) and ``operator_port``, only when an
``operator_token`` is set, and each request must carry it as ``Authorization: Bearer <token>``
(compared in constant time). Today there is one: ``POST /dead-letter-guard/resume``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

import structlog
from aiohttp import web
from mode import Service
from pydantic import SecretStr

log = structlog.get_logger(__name__)


def authorized(request: web.Request, token: SecretStr) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    presented, expected = presented.strip(), token.get_secret_value()
    # An empty token on either side never matches (settings refuse a short one; this is the last line).
    return (
        scheme.lower() == "bearer"
        and bool(presented)
        and bool(expected)
        and hmac.compare_digest(presented.encode(), expected.encode())
    )


class OperatorApi(Service):
    def __init__(
        self, *, host: str, port: int, token: SecretStr, resume_after_guard: Callable[[], None], **kwargs: object
    ) -> None:
        super().__init__(**kwargs)
        self._host = host
        self.port = port
        self._token = token
        self._resume_after_guard = resume_after_guard
        self._runner: web.AppRunner | None = None

    def web_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/dead-letter-guard/resume", self._resume)
        return app

    async def _resume(self, request: web.Request) -> web.Response:
        """An operator has looked at the flood of dead letters and lets the worker go on."""
        if not authorized(request, self._token):
            log.warning("operator_request_refused", path=request.path)
            return web.json_response({"error": "a valid operator token is required"}, status=401)
        self._resume_after_guard()
        return web.json_response({"resumed": True})

    async def on_start(self) -> None:
        self._runner = web.AppRunner(self.web_app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self.port).start()
        log.info("operator_api_listening", host=self._host, port=self.port)

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
