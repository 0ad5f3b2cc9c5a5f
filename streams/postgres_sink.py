"""PostgreSQL sink: audit events and results from Kafka into PostgreSQL, once per event.

A consumer group of its own (``{app_id}-sink``) reads the audit and enriched topics. Each
fetched batch is written in one transaction, and only then are its offsets committed, so a
crash or an outage loses nothing: the batch is read again and written again, and the
deterministic ids turn the second write into a no-op (``ON CONFLICT DO NOTHING``).

Audit events list every decision taken on a record; each decision is one row of
``audit_events``. Results are kept once per (event id, result version) in
``payee_result_events``, and ``payee_results`` holds each record's newest result by order key
(its source offset), so a late redelivery of an older result never wins and a repaired result
of the same source record (new result version) replaces the old one.

While PostgreSQL is down the same batch is retried with capped exponential backoff; records
that can never be stored (undecodable, invalid ids) are set aside in ``sink_rejected_records``
instead of blocking the stream. Logs carry ids, offsets and error codes, never payee names.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, NamedTuple, Protocol, TypeVar

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from domain.privacy import error_location
from schemas.events import AuditEvent, EnrichedPayee
from streams import metrics
from streams.db import migrate
from streams.kafka_io import ensure_topics, group_consumer_options
from streams.kafka_security import kafka_client_options
from streams.postgres import create_pool
from streams.review.sink_rows import (
    DELETE_SUPPLIERS_SQL,
    RESOLVE_BY_RESULTS_SQL,
    UPSERT_REVIEW_ITEMS_SQL,
    UPSERT_SUPPLIERS_SQL,
    ReviewItemRow,
    SupplierRow,
    review_item_row,
    supplier_row,
)
from streams.review.store import resolve_arrivals
from streams.settings import Settings

log = structlog.get_logger(__name__)

EventT = TypeVar("EventT", AuditEvent, EnrichedPayee)

# A write of one batch takes milliseconds; anything this slow is a hung connection.
COMMAND_TIMEOUT_S = 30.0
FETCH_TIMEOUT_MS = 500


class ConsumedRecord(Protocol):
    """The parts of an aiokafka ``ConsumerRecord`` the sink reads."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class AuditRow(NamedTuple):
    event_id: uuid.UUID
    audit_event_id: uuid.UUID
    decision_index: int
    order_key: int
    correlation_id: str
    record_key: str | None
    action: str
    stage: str
    outcome: str
    versions: str
    timings_ms: str
    result_event_id: uuid.UUID | None
    replay_run_id: str | None
    occurred_at: datetime


class ResultRow(NamedTuple):
    event_id: uuid.UUID
    result_version: str
    order_key: int
    record_key: str
    correlation_id: str
    status: str
    entity_type: str
    subtype: str | None
    sic_code: str | None
    confidence: float
    method: str
    supplier_id: str | None
    match_score: float
    match_type: str
    versions: str
    result: str
    replay_run_id: str | None
    processed_at: datetime


class RejectedRow(NamedTuple):
    topic: str
    partition: int
    offset: int
    reason: str
    value: bytes | None


class SettledRow(NamedTuple):
    """A result that needed no review: it settles an older open review item of its record."""

    record_key: str
    order_key: int
    processed_at: datetime
    decision_id: uuid.UUID | None


@dataclass
class SinkBatch:
    audit: list[AuditRow] = field(default_factory=list)
    results: list[ResultRow] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)
    review_items: list[ReviewItemRow] = field(default_factory=list)
    settled: list[SettledRow] = field(default_factory=list)
    # The batch's last word per supplier id: a row to upsert, or None (a tombstone) to delete.
    suppliers: dict[str, SupplierRow | None] = field(default_factory=dict)


@dataclass(frozen=True)
class ConsoleTopics:
    """The topics the sink stores for the review console, when it serves one."""

    review: str
    suppliers: str
    default_amount: float


def settled_row(event: EnrichedPayee) -> SettledRow:
    decision_id = event.match.decision_id or event.classification.decision_id
    try:
        decision = uuid.UUID(decision_id) if decision_id else None
    except ValueError:  # the result is stored all the same; only the link is lost
        decision = None
    return SettledRow(event.record_key, event.order_key, _aware(event.processed_at), decision)


class UnstorableEvent(ValueError):
    """A decoded event PostgreSQL would refuse; the message names no field values."""


def _json(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except ValueError:  # pydantic accepts NaN and Infinity; jsonb does not
        raise UnstorableEvent("number is NaN or infinite") from None


def _check_no_nul(value: Any) -> None:
    """PostgreSQL text and jsonb cannot hold NUL, which JSON allows (unpaired surrogates, the
    other unstorable text, are already refused by pydantic's JSON parser)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise UnstorableEvent("text contains a NUL character")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_no_nul(key)
            _check_no_nul(item)
    elif isinstance(value, list):
        for item in value:
            _check_no_nul(item)


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise UnstorableEvent("event id is not a UUID") from None


def _aware(moment: datetime) -> datetime:
    """Timestamps without a zone are taken as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _decode(model: type[EventT], value: bytes | None) -> EventT:
    if value is None:
        raise UnstorableEvent("empty value")
    event = model.model_validate_json(value)
    _check_no_nul(event.model_dump(mode="json"))
    return event


def audit_rows(event: AuditEvent) -> list[AuditRow]:
    """One row per decision; ids stable for the same audit event and outcome."""
    audit_event_id = _uuid(event.event_id)
    version = event.result_version or event.dead_letter_event_id or ""
    common = {
        "audit_event_id": audit_event_id,
        "order_key": event.order_key,
        "correlation_id": event.correlation_id,
        "record_key": event.record_key,
        "versions": _json(event.versions.model_dump(mode="json")),
        "result_event_id": _uuid(event.result_event_id) if event.result_event_id else None,
        "replay_run_id": event.replay_run_id,
        "occurred_at": _aware(event.occurred_at),
    }
    return [
        AuditRow(
            event_id=uuid.uuid5(audit_event_id, f"{version}\x1f{position}\x1f{decision.action}"),
            decision_index=position,
            action=decision.action,
            stage=decision.stage,
            outcome=_json(decision.outcome),
            timings_ms=_json(decision.timings_ms),
            **common,
        )
        for position, decision in enumerate(event.decisions)
    ]


def result_row(event: EnrichedPayee) -> ResultRow:
    match, classification = event.match, event.classification
    return ResultRow(
        event_id=_uuid(event.event_id),
        result_version=event.result_version,
        order_key=event.order_key,
        record_key=event.record_key,
        correlation_id=event.correlation_id,
        status=event.status,
        entity_type=classification.entity_type,
        subtype=classification.subtype,
        sic_code=classification.sic_code,
        confidence=classification.confidence,
        method=classification.method,
        supplier_id=match.supplier_id,
        match_score=match.score,
        match_type=match.match_type,
        versions=_json(event.versions.model_dump(mode="json")),
        result=_json(event.model_dump(mode="json")),
        replay_run_id=event.replay_run_id,
        processed_at=_aware(event.processed_at),
    )


def rejection_reason(error: ValidationError | UnstorableEvent) -> str:
    """Why a record was rejected, without its content (pydantic messages quote input values)."""
    if isinstance(error, ValidationError):
        problems = "; ".join(f"{error_location(e['loc'])}: {e['type']}" for e in error.errors()[:5])
        return f"{error.error_count()} validation error(s): {problems}"
    return str(error)


def rows_from_events(
    records: Iterable[ConsumedRecord],
    audit_topic: str,
    enriched_topic: str,
    console: ConsoleTopics | None = None,
) -> SinkBatch:
    """Decode consumed records into table rows; what cannot be stored becomes a rejected row."""
    batch = SinkBatch()
    for record in records:
        try:
            if record.topic == audit_topic:
                batch.audit.extend(audit_rows(_decode(AuditEvent, record.value)))
            elif record.topic == enriched_topic:
                event = _decode(EnrichedPayee, record.value)
                batch.results.append(result_row(event))
                if event.status == "enriched":
                    batch.settled.append(settled_row(event))
            elif console is not None and record.topic == console.review:
                event = _decode(EnrichedPayee, record.value)
                row = result_row(event)
                batch.review_items.append(
                    review_item_row(event, row.result, row.processed_at, console.default_amount)
                )
            elif console is not None and record.topic == console.suppliers:
                if record.key is None:
                    raise UnstorableEvent("supplier record without a key")
                supplier_id = record.key.decode(errors="replace")
                try:
                    batch.suppliers[supplier_id] = supplier_row(record.value) if record.value else None
                except (ValueError, KeyError, TypeError):
                    raise UnstorableEvent("not a supplier") from None
            else:
                raise UnstorableEvent("record from a topic the sink does not store")
        except (ValidationError, UnstorableEvent) as error:
            batch.rejected.append(
                RejectedRow(
                    record.topic, record.partition, record.offset, rejection_reason(error), record.value
                )
            )
    return batch


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows → one list per column, the shape ``unnest`` takes."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


def _row_count(status: str) -> int:
    """Rows affected, from a command status such as ``INSERT 0 42``."""
    return int(status.rsplit(" ", 1)[-1])


INSERT_AUDIT_SQL = """
INSERT INTO audit_events (event_id, audit_event_id, decision_index, order_key, correlation_id,
                          record_key, action, stage, outcome, versions, timings_ms,
                          result_event_id, replay_run_id, occurred_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int4[], $4::int8[], $5::text[], $6::text[],
                     $7::text[], $8::text[], $9::jsonb[], $10::jsonb[], $11::jsonb[], $12::uuid[],
                     $13::text[], $14::timestamptz[])
ON CONFLICT (event_id) DO NOTHING
"""

# Both result statements read the same parameters: the batch's result rows as columns.
RESULT_ROWS_SQL = """
unnest($1::uuid[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::text[], $7::text[],
       $8::text[], $9::text[], $10::float8[], $11::text[], $12::text[], $13::float8[], $14::text[],
       $15::jsonb[], $16::jsonb[], $17::text[], $18::timestamptz[])
    AS r(event_id, result_version, order_key, record_key, correlation_id, status, entity_type,
         subtype, sic_code, confidence, method, supplier_id, match_score, match_type, versions,
         result, replay_run_id, processed_at)
"""

INSERT_RESULT_EVENTS_SQL = f"""
INSERT INTO payee_result_events (event_id, result_version, order_key, record_key, correlation_id,
                                 status, replay_run_id, result, processed_at)
SELECT event_id, result_version, order_key, record_key, correlation_id, status, replay_run_id,
       result, processed_at
FROM {RESULT_ROWS_SQL}
ON CONFLICT (event_id, result_version) DO NOTHING
"""

# DISTINCT ON: one command may not update a row twice, so only each key's newest result is
# offered: highest order key (source offset), then, for one source record processed twice, the
# later processing. The WHERE keeps a newer stored result from being replaced by an older
# redelivery, and skips rewriting the very same result.
UPSERT_LATEST_RESULTS_SQL = f"""
INSERT INTO payee_results (record_key, event_id, result_version, order_key, status, entity_type,
                           subtype, sic_code, confidence, method, supplier_id, match_score,
                           match_type, versions, result, processed_at)
SELECT DISTINCT ON (record_key)
       record_key, event_id, result_version, order_key, status, entity_type, subtype, sic_code,
       confidence, method, supplier_id, match_score, match_type, versions, result, processed_at
FROM {RESULT_ROWS_SQL}
ORDER BY record_key, order_key DESC, processed_at DESC, event_id DESC
ON CONFLICT (record_key) DO UPDATE
SET event_id = excluded.event_id, result_version = excluded.result_version,
    order_key = excluded.order_key, status = excluded.status, entity_type = excluded.entity_type,
    subtype = excluded.subtype, sic_code = excluded.sic_code, confidence = excluded.confidence,
    method = excluded.method, supplier_id = excluded.supplier_id,
    match_score = excluded.match_score, match_type = excluded.match_type,
    versions = excluded.versions, result = excluded.result, processed_at = excluded.processed_at,
    updated_at = now()
WHERE excluded.order_key > payee_results.order_key
   OR (excluded.order_key = payee_results.order_key
       AND excluded.processed_at >= payee_results.processed_at
       AND (excluded.event_id, excluded.result_version)
           <> (payee_results.event_id, payee_results.result_version))
"""

INSERT_REJECTED_SQL = """
INSERT INTO sink_rejected_records (topic, kafka_partition, kafka_offset, reason, value)
SELECT * FROM unnest($1::text[], $2::int4[], $3::int8[], $4::text[], $5::bytea[])
ON CONFLICT (topic, kafka_partition, kafka_offset) DO NOTHING
"""


class SinkWriter:
    """Writes batches to PostgreSQL through a small pool, created on first use and re-created
    after failures so that the sink reconnects by itself when PostgreSQL comes back."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pool: asyncpg.Pool | None = None

    async def _acquire_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            self._pool = await create_pool(
                self._settings, min_size=1, max_size=2, command_timeout=COMMAND_TIMEOUT_S
            )
        return self._pool

    async def migrate(self) -> None:
        pool = await self._acquire_pool()
        async with pool.acquire() as conn:
            await migrate(conn, self._settings.postgres_schema)

    async def write(self, batch: SinkBatch) -> dict[str, int]:
        """Write the batch in one transaction; returns the rows inserted or updated per table."""
        pool = await self._acquire_pool()
        written: dict[str, int] = {}
        async with pool.acquire() as conn, conn.transaction():
            if batch.audit:
                written["audit_events"] = _row_count(
                    await conn.execute(INSERT_AUDIT_SQL, *_columns(batch.audit, len(AuditRow._fields)))
                )
            if batch.results:
                columns = _columns(batch.results, len(ResultRow._fields))
                written["payee_result_events"] = _row_count(
                    await conn.execute(INSERT_RESULT_EVENTS_SQL, *columns)
                )
                written["payee_results"] = _row_count(await conn.execute(UPSERT_LATEST_RESULTS_SQL, *columns))
            if batch.review_items:
                written["review_items"] = _row_count(
                    await conn.execute(
                        UPSERT_REVIEW_ITEMS_SQL, *_columns(batch.review_items, len(ReviewItemRow._fields))
                    )
                )
                written["review_items_settled_on_arrival"] = await resolve_arrivals(
                    conn, [row.normalized_name for row in batch.review_items]
                )
            if batch.settled:
                written["review_items_settled"] = _row_count(
                    await conn.execute(RESOLVE_BY_RESULTS_SQL, *_columns(batch.settled, len(SettledRow._fields)))
                )
            upserts = [row for row in batch.suppliers.values() if row is not None]
            if upserts:
                written["supplier_directory"] = _row_count(
                    await conn.execute(UPSERT_SUPPLIERS_SQL, *_columns(upserts, len(SupplierRow._fields)))
                )
            deletions = [supplier_id for supplier_id, row in batch.suppliers.items() if row is None]
            if deletions:
                written["supplier_directory_deleted"] = _row_count(
                    await conn.execute(DELETE_SUPPLIERS_SQL, deletions)
                )
            if batch.rejected:
                written["sink_rejected_records"] = _row_count(
                    await conn.execute(
                        INSERT_REJECTED_SQL, *_columns(batch.rejected, len(RejectedRow._fields))
                    )
                )
        for table, count in written.items():
            metrics.SINK_WRITES.labels(table=table).inc(count)
        return written

    def reset(self) -> None:
        """Drop the pool after a failure; the next write connects afresh."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()


def backoff_delay(
    attempt: int, initial_s: float, max_s: float, jitter: Callable[[], float] = random.random
) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): doubling from ``initial_s`` up to
    ``max_s``, with the upper half randomised so that sinks restarting together spread out."""
    ceiling = min(max_s, initial_s * 2**attempt)
    return ceiling / 2 + jitter() * ceiling / 2


def _error_fields(error: BaseException) -> dict[str, str]:
    # PostgreSQL's and asyncpg's messages can quote the offending value (a payee name, say);
    # only socket errors' messages are logged.
    fields = {"error_type": type(error).__name__}
    if isinstance(error, asyncpg.PostgresError):
        fields["sqlstate"] = error.sqlstate or ""
    elif isinstance(error, OSError):
        fields["error"] = str(error)
    return fields


async def stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Wait up to ``seconds``; True if ``stop`` was set by then."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


async def retry_until_done(
    operation: Callable[[], Awaitable[object]],
    writer: SinkWriter,
    settings: Settings,
    stop: asyncio.Event,
    description: str,
    **log_context: Any,
) -> bool:
    """Run ``operation`` until it succeeds, resetting the pool and backing off after each failure.

    Returns False if ``stop`` is set first: the caller leaves the work undone (and its offsets
    uncommitted) for the next run.
    """
    attempt = 0
    while True:
        try:
            await operation()
            return True
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            metrics.SINK_ERRORS.inc()
            writer.reset()
            delay = backoff_delay(attempt, settings.sink_retry_initial_s, settings.sink_retry_max_s)
            log.error(
                f"{description}_failed",
                attempt=attempt + 1,
                retry_in_s=round(delay, 2),
                **_error_fields(error),
                **log_context,
            )
            attempt += 1
        if stop.is_set() or await stopped_within(stop, delay):
            return False


def sink_consumer(settings: Settings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *sink_topics(settings),
        **kafka_client_options(settings),
        group_id=sink_group_id(settings),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        **group_consumer_options(settings),
    )


def sink_topics(settings: Settings) -> list[str]:
    return [settings.topic_audit, settings.topic_enriched, settings.topic_review, settings.topic_suppliers]


def console_topics(settings: Settings) -> ConsoleTopics:
    return ConsoleTopics(
        review=settings.topic_review,
        suppliers=settings.topic_suppliers,
        default_amount=settings.review_default_amount,
    )


def sink_group_id(settings: Settings) -> str:
    return f"{settings.app_id}-sink"


def log_rejected(rejected: list[RejectedRow]) -> None:
    for row in rejected:
        metrics.SINK_REJECTED.labels(topic=row.topic).inc()
        log.warning(
            "sink_record_rejected",
            topic=row.topic,
            partition=row.partition,
            offset=row.offset,
            reason=row.reason,
        )


async def commit_written(consumer: AIOKafkaConsumer, fetched: Mapping[TopicPartition, list[Any]]) -> None:
    offsets = {tp: records[-1].offset + 1 for tp, records in fetched.items() if records}
    try:
        await consumer.commit(offsets)
    except KafkaError as error:
        # The rows are stored; if the commit is lost (say, to a rebalance) the batch is read
        # again and its second write inserts nothing.
        log.warning("sink_commit_failed", error_type=type(error).__name__, partitions=len(offsets))


async def run_sink(settings: Settings, stop: asyncio.Event) -> None:
    """Consume, write, commit, until ``stop`` is set; then finish the batch in hand and return."""
    await ensure_topics(settings)
    writer = SinkWriter(settings)
    try:
        if not await retry_until_done(writer.migrate, writer, settings, stop, "sink_migrate"):
            return
        consumer = sink_consumer(settings)
        await consumer.start()
        log.info(
            "sink_started",
            group_id=sink_group_id(settings),
            topics=sink_topics(settings),
        )
        try:
            while not stop.is_set():
                fetched = await consumer.getmany(
                    timeout_ms=FETCH_TIMEOUT_MS, max_records=settings.sink_batch_size
                )
                records = [record for partition_records in fetched.values() for record in partition_records]
                if not records:
                    continue
                metrics.SINK_BACKLOG.set(len(records))
                batch = rows_from_events(
                    records, settings.topic_audit, settings.topic_enriched, console_topics(settings)
                )
                log_rejected(batch.rejected)
                first = records[0]
                written = await retry_until_done(
                    partial(writer.write, batch),
                    writer,
                    settings,
                    stop,
                    "sink_write",
                    records=len(records),
                    first_topic=first.topic,
                    first_partition=first.partition,
                    first_offset=first.offset,
                )
                if not written:
                    log.warning("sink_stopped_before_write", records=len(records))
                    break
                await commit_written(consumer, fetched)
                metrics.SINK_BACKLOG.set(0)
        finally:
            await consumer.stop()
    finally:
        await writer.close()
        log.info("sink_stopped")
