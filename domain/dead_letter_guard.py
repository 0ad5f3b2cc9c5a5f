"""Poison-flood guard: when most recent records are dead letters, something upstream is broken,
and dead-lettering everything quietly would hide it. The guard trips; the worker then pauses
(or only alerts), and an operator decides."""

from __future__ import annotations

from collections import deque


class DeadLetterGuard:
    def __init__(self, window: int, max_ratio: float, min_records: int) -> None:
        self._outcomes: deque[bool] = deque(maxlen=window)
        self._dead = 0
        self._max_ratio = max_ratio
        self._min_records = min_records
        self.tripped = False

    @property
    def ratio(self) -> float:
        return self._dead / len(self._outcomes) if self._outcomes else 0.0

    def record(self, dead_lettered: bool) -> bool:
        """Count one outcome; True when this one trips the guard."""
        if len(self._outcomes) == self._outcomes.maxlen and self._outcomes[0]:
            self._dead -= 1
        self._outcomes.append(dead_lettered)
        self._dead += dead_lettered
        if not self.tripped and len(self._outcomes) >= self._min_records and self.ratio > self._max_ratio:
            self.tripped = True
            return True
        return False

    def reset(self) -> None:
        self._outcomes.clear()
        self._dead = 0
        self.tripped = False
