"""A merchant-data provider over HTTP (aiohttp), behind the guard rails every external call has
here (domain/resilience.py): a bounded LRU cache by query, a circuit breaker, a concurrency
limit, a token-bucket rate limit, a per-attempt deadline and retries of transient errors
(timeouts, connection errors, HTTP 429 and 5xx) with backoff and jitter.

Wire contract (a batched merchant search of the kind Mastercard Track Search offers; an adapter
for a provider with another shape implements ``MerchantProvider`` the same way):

    POST {base_url}/merchant-searches        Authorization: Bearer {api_key}
    {"searches": [{"reference": "0", "merchant_name": "ACME TOOLS INC",
                   "address": {"street": "PO BOX 12", "city": "AUSTIN", "state": "TX",
                               "postal_code": "78701", "country": "US"}}]}
    200 {"results": [{"reference": "0", "matched": true, "match_confidence": 0.93,
                      "merchant": {"id": "M-1", "name": "ACME TOOLS", "mcc": "5251",
                                   "mcc_description": "Hardware stores",
                                   "card_acceptance": {"accepts_cards": true, "level2": true, "level3": false},
                                   "last_activity_date": "2026-11-20"}}]}

A failure never raises to the caller: each query it concerned comes back as ``LookupFailure``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.merchant import LookupFailure, LookupOutcome, MerchantData, MerchantQuery
from domain.resilience import (
    BreakerState,
    CallError,
    CallLimits,
    CallStats,
    CircuitBreaker,
    Clock,
    LruCache,
    TokenBucket,
    retry_transient,
)

SEARCH_PATH = "/merchant-searches"


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpProviderConfig(CallLimits):
    name: str
    base_url: str
    api_key: str = field(repr=False)
    timeout_s: float = 5.0
    cache_size: int = 50_000
    max_batch: int = 50  # queries per request


@dataclass(slots=True)
class ProviderStats(CallStats):
    """Running counters; the service can export them as metrics."""

    requests: int = 0
    queries: int = 0
    breaker_rejections: int = 0


class _CardAcceptance(BaseModel):
    model_config = ConfigDict(extra="ignore")

    accepts_cards: bool | None = None
    level2: bool | None = None
    level3: bool | None = None


class _Merchant(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = Field(default=None, max_length=100)
    name: str | None = Field(default=None, max_length=300)
    mcc: str | None = Field(default=None, max_length=8)
    mcc_description: str | None = Field(default=None, max_length=200)
    card_acceptance: _CardAcceptance = Field(default_factory=_CardAcceptance)
    last_activity_date: date | None = None


class _Result(BaseModel):
    model_config = ConfigDict(extra="ignore")

    reference: str
    matched: bool
    match_confidence: float | None = Field(default=None, ge=0, le=1)
    merchant: _Merchant | None = None


class _Reply(BaseModel):
    """The only reply shape accepted from the provider."""

    model_config = ConfigDict(extra="ignore")

    results: list[_Result]


def _search(query: MerchantQuery) -> dict[str, object]:
    address = {
        "street": query.street,
        "city": query.city,
        "state": query.state,
        "postal_code": query.postal_code,
        "country": query.country,
    }
    return {
        "reference": query.reference,
        "merchant_name": query.name,
        "address": {key: value for key, value in address.items() if value},
    }


def _data(result: _Result) -> MerchantData:
    merchant = result.merchant
    if not result.matched or merchant is None:
        return MerchantData(found=False)
    return MerchantData(
        found=True,
        merchant_name=merchant.name,
        merchant_id=merchant.id,
        mcc=merchant.mcc,
        mcc_description=merchant.mcc_description,
        accepts_cards=merchant.card_acceptance.accepts_cards,
        level2=merchant.card_acceptance.level2,
        level3=merchant.card_acceptance.level3,
        last_active=merchant.last_activity_date,
        match_confidence=result.match_confidence,
    )


class HttpMerchantProvider:
    def __init__(
        self,
        config: HttpProviderConfig,
        *,
        clock: Clock = time.monotonic,
        backoff_base_s: float = 0.25,
        backoff_max_s: float = 5.0,
    ) -> None:
        self.name = config.name
        self._config = config
        self._url = config.base_url.rstrip("/") + SEARCH_PATH
        self._breaker = CircuitBreaker(config.breaker_failure_threshold, config.breaker_reset_s, clock)
        self._bucket = TokenBucket(config.rate_per_s, config.burst, clock)
        self._semaphore = asyncio.Semaphore(config.max_concurrency)
        self._cache: LruCache[tuple[str | None, ...], MerchantData] = LruCache(config.cache_size)
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._session: aiohttp.ClientSession | None = None  # made on first use, inside the event loop
        self.stats = ProviderStats()

    @property
    def breaker_state(self) -> BreakerState:
        return self._breaker.state

    @property
    def batch_capacity(self) -> int:
        """How many queries one ``lookup`` sends at once (requests of ``max_batch``, in parallel)."""
        return self._config.max_batch * self._config.max_concurrency

    async def lookup(self, queries: Sequence[MerchantQuery]) -> list[LookupOutcome]:
        outcomes: list[LookupOutcome | None] = [None] * len(queries)
        # One question per distinct query: the same business on many invoices is asked once.
        pending: dict[tuple[str | None, ...], list[int]] = {}
        for position, query in enumerate(queries):
            self.stats.queries += 1
            cached = self._cache.get(query.cache_key)
            if cached is not None:
                self.stats.cache_hits += 1
                outcomes[position] = cached
            else:
                pending.setdefault(query.cache_key, []).append(position)
        distinct = [queries[positions[0]] for positions in pending.values()]
        size = self._config.max_batch
        chunks = [distinct[start : start + size] for start in range(0, len(distinct), size)]
        answers = await asyncio.gather(*(self._lookup_chunk(chunk) for chunk in chunks))
        for chunk, chunk_answers in zip(chunks, answers, strict=True):
            for query, answer in zip(chunk, chunk_answers, strict=True):
                for position in pending[query.cache_key]:
                    outcomes[position] = answer
        return [outcome if outcome is not None else LookupFailure("no answer") for outcome in outcomes]

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _lookup_chunk(self, chunk: list[MerchantQuery]) -> list[LookupOutcome]:
        if not self._breaker.allow_request():
            self.stats.breaker_rejections += 1
            return [LookupFailure("circuit breaker open")] * len(chunk)

        try:
            data = await retry_transient(
                lambda: self._call_once(chunk), self._config.max_retries, self._backoff_base_s,
                self._backoff_max_s, on_retry=self.stats.count_retry,
            )
        except CallError as error:
            self.stats.record_failure(self._breaker)
            return [LookupFailure(error.reason)] * len(chunk)
        self.stats.record_success(self._breaker)
        for query, answer in zip(chunk, data, strict=True):
            self._cache.put(query.cache_key, answer)
        return list(data)

    async def _call_once(self, chunk: list[MerchantQuery]) -> list[MerchantData]:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {self._config.api_key}"})
        async with self._semaphore:
            await self._bucket.acquire()
            self.stats.requests += 1
            try:
                async with asyncio.timeout(self._config.timeout_s):
                    async with self._session.post(self._url, json={"searches": [_search(q) for q in chunk]}) as response:
                        if response.status == 429 or response.status >= 500:
                            raise CallError(f"HTTP {response.status}", transient=True)
                        if response.status >= 400:
                            raise CallError(f"HTTP {response.status}", transient=False)
                        body = await response.read()
            except TimeoutError as error:
                self.stats.timeouts += 1
                raise CallError("timed out", transient=True) from error
            except aiohttp.ClientError as error:
                raise CallError(f"connection failed ({type(error).__name__})", transient=True) from error
        return self._parse(body, chunk)

    def _parse(self, body: bytes, chunk: list[MerchantQuery]) -> list[MerchantData]:
        try:
            reply = _Reply.model_validate_json(body)
        except ValidationError as error:
            self.stats.invalid_replies += 1
            raise CallError("reply did not match the schema", transient=False) from error
        by_reference = {result.reference: result for result in reply.results}
        if any(query.reference not in by_reference for query in chunk):
            self.stats.invalid_replies += 1
            raise CallError("reply is missing queries", transient=False)
        return [_data(by_reference[query.reference]) for query in chunk]
