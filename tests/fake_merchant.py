"""A local merchant-data provider speaking domain/merchant_http.py's wire contract (stdlib only,
loopback only), for tests.

Modes, switchable at runtime: ok, slow (answers after `delay_s`), fail500 (HTTP 500), malformed
(a reply that is not the schema). It knows the merchants in `merchants` (by upper-case name),
counts requests and keeps every search it was sent, so a test can check what left the company.
"""

from __future__ import annotations

import time
from email.message import Message
from typing import Any, Literal

from tests.fake_http import LoopbackJSONServer, Reply

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


class FakeMerchantProvider(LoopbackJSONServer):
    path = "/v1/merchant-searches"

    def __init__(self) -> None:
        self.mode: Mode = "ok"
        self.delay_s = 1.0
        self.merchants: dict[str, dict[str, Any]] = dict(DEFAULT_MERCHANTS)
        self.requests = 0
        self.searches: list[dict[str, Any]] = []
        self.authorization: list[str | None] = []
        super().__init__()

    def reset(self) -> None:
        with self._lock:
            self.mode = "ok"
            self.delay_s = 1.0
            self.merchants = dict(DEFAULT_MERCHANTS)
            self.requests = 0
            self.searches.clear()
            self.authorization.clear()

    def answer(self, body: dict[str, Any], headers: Message) -> Reply:
        with self._lock:
            self.requests += 1
            self.searches.extend(body.get("searches", []))
            self.authorization.append(headers.get("Authorization"))
        mode = self.mode
        if mode == "fail500":
            return 500, {"error": "upstream exploded"}
        if mode == "slow":
            time.sleep(self.delay_s)
        if mode == "malformed":
            return 200, {"matches": "sure"}
        results = []
        for search in body.get("searches", []):
            merchant = self.merchants.get(" ".join(str(search.get("merchant_name", "")).upper().split()))
            results.append(
                {"reference": search.get("reference"), "matched": merchant is not None,
                 "match_confidence": 0.93 if merchant else None, "merchant": merchant}
            )
        return 200, {"results": results}
