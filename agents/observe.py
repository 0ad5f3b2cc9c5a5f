"""Metrics and logs about outcomes (ids and counts; never a payee name)."""

from __future__ import annotations

import time

import structlog

from domain.outcome import Outcome
from streams import metrics

log = structlog.get_logger(__name__)


def observe(outcome: Outcome, received_at_ms: int | None) -> None:
    if outcome.result is not None:
        result = outcome.result
        match, classification = result.match, result.classification
        metrics.child(metrics.MATCH_OUTCOMES, match.decision, match.match_type).inc()
        metrics.MATCH_SCORE.observe(match.score)
        metrics.child(metrics.CLASSIFICATIONS, classification.entity_type, classification.method).inc()
        for reason in result.review_reasons:
            metrics.child(metrics.REVIEWS, reason).inc()
        for stage, elapsed_ms in result.timings_ms.items():
            metrics.child(metrics.STAGE_LATENCY, stage).observe(elapsed_ms / 1000)
        if received_at_ms is not None:
            metrics.END_TO_END_LATENCY.observe(max(0.0, time.time() - received_at_ms / 1000))
    if outcome.letter is not None:
        letter = outcome.letter
        metrics.child(metrics.DEAD_LETTERS, letter.stage, letter.error_type).inc()
        log.warning(
            "dead_lettered",
            stage=letter.stage,
            error_type=letter.error_type,
            source_partition=letter.source_partition,
            source_offset=letter.source_offset,
            original_size=letter.original_size,
            event_id=letter.event_id,
        )


def header_value(headers: object, name: str) -> str | None:
    """A header from a consumed record (a sequence of pairs)."""
    for header_name, value in headers or ():  # type: ignore[attr-defined]
        if header_name == name and value is not None:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None
