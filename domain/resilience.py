"""Guard rails for calls to external services (the LLM, merchant-data providers): a token-bucket
rate limit, a circuit breaker, a bounded LRU cache and retries of transient errors with
exponential backoff and jitter. Clocks and sleeps are injectable so tests run on fake time."""

from __future__ import annotations

import asyncio
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from typing import Generic, Literal, TypeVar

BreakerState = Literal["closed", "open", "half_open"]
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class CallLimits:
    """How far every external client may go: deadline, retries, rate, concurrency, cache and
    breaker. Each client's config extends it with its endpoint (and its own defaults)."""

    timeout_s: float = 10.0
    max_retries: int = 2
    rate_per_s: float = 5.0
    burst: int = 10
    max_concurrency: int = 4
    cache_size: int = 10_000
    breaker_failure_threshold: int = 5
    breaker_reset_s: float = 30.0


CALL_LIMIT_FIELDS = tuple(limit.name for limit in fields(CallLimits))


class CallError(Exception):
    """A failed call to an external service; ``transient`` errors are worth a retry."""

    def __init__(self, reason: str, *, transient: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


@dataclass(slots=True)
class CallStats:
    """Counters every guarded client of an external service keeps (exported as metrics)."""

    successes: int = 0
    failures: int = 0
    retries: int = 0
    timeouts: int = 0
    invalid_replies: int = 0
    cache_hits: int = 0
    breaker_opens: int = 0

    def count_retry(self) -> None:
        self.retries += 1

    def record_failure(self, breaker: CircuitBreaker) -> None:
        self.failures += 1
        if breaker.record_failure():
            self.breaker_opens += 1

    def record_success(self, breaker: CircuitBreaker) -> None:
        breaker.record_success()
        self.successes += 1


class TokenBucket:
    """Allows `rate_per_s` calls per second on average and up to `burst` at once."""

    def __init__(
        self, rate_per_s: float, burst: int, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self._rate = rate_per_s
        self._capacity = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:  # one waiter at a time keeps the order fair
            while True:
                now = self._clock()
                self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
                self._updated = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await self._sleep((1.0 - self._tokens) / self._rate)


class CircuitBreaker:
    """Opens after `failure_threshold` failures in a row; after `reset_s` lets one trial call through."""

    def __init__(self, failure_threshold: int, reset_s: float, clock: Clock = time.monotonic) -> None:
        self._threshold = failure_threshold
        self._reset_s = reset_s
        self._clock = clock
        self._state: BreakerState = "closed"
        self._consecutive_failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        if self._state == "open" and self._clock() - self._opened_at >= self._reset_s:
            self._state = "half_open"
            self._trial_in_flight = False
        return self._state

    def allow_request(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self._state = "closed"
        self._consecutive_failures = 0
        self._trial_in_flight = False

    def record_failure(self) -> bool:
        """Counts a failure; True when this failure opened the breaker."""
        self._consecutive_failures += 1
        if self._state == "half_open" or self._consecutive_failures >= self._threshold:
            was_open = self._state == "open"
            self._state = "open"
            self._opened_at = self._clock()
            self._trial_in_flight = False
            return not was_open
        return False


class LruCache(Generic[K, V]):
    """At most `size` entries; the least recently used goes first. Size 0 caches nothing."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


async def retry_transient(
    call: Callable[[], Awaitable[T]],
    max_retries: int,
    backoff_base_s: float,
    backoff_max_s: float,
    on_retry: Callable[[], None] = lambda: None,
    sleep: Sleep = asyncio.sleep,
) -> T:
    """``call()``, retried on a transient ``CallError`` up to `max_retries` times with exponential
    backoff (capped) and jitter; a permanent error or the last failure is raised."""
    attempt = 0
    while True:
        try:
            return await call()
        except CallError as error:
            if not error.transient or attempt >= max_retries:
                raise
        attempt += 1
        on_retry()
        backoff = min(backoff_max_s, backoff_base_s * 2 ** (attempt - 1))
        await sleep(backoff * random.uniform(0.5, 1.5))
