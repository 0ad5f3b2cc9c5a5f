"""The fast path: a record of ``payees.raw`` → the core's outcome (result, review copy, audit
event; or the LLM or merchant-data hand-off; or a dead letter) → the delivery layer, via the
consumer loop. Reviewers' decisions in force (the worker's decision table) apply."""

from __future__ import annotations

from aiokafka.structs import ConsumerRecord

from agents.observe import header_value, observe
from domain.outcome import Outcome, raw_record_outcome
from schemas.events import SourcePosition
from streams import metrics
from streams.context import WorkerContext

REPLAY_RUN_HEADER = "x-replay-run-id"


def handle_raw_record(ctx: WorkerContext, record: ConsumerRecord) -> Outcome:
    metrics.child(metrics.RECORDS_IN, record.topic).inc()
    source = SourcePosition(topic=record.topic, partition=record.partition, offset=record.offset)
    outcome = raw_record_outcome(
        record.key,
        record.value,
        source,
        header_value(record.headers, REPLAY_RUN_HEADER),
        ctx.index,
        ctx.versions_of,
        ctx.core,
        ctx.decisions.table,
    )
    observe(outcome, record.timestamp)
    return outcome


def register(ctx: WorkerContext) -> None:
    ctx.source.route(ctx.settings.topic_raw, lambda record: handle_raw_record(ctx, record), guarded=True)
