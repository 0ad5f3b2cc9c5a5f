"""Web endpoints on the worker's Faust web server: /health, /ready and /metrics (read-only; the
endpoints that change state are in streams/operator_api.py, served apart)."""

from __future__ import annotations

from collections.abc import Iterator

from faust.web import Request, Response, View
from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from streams import metrics
from streams.context import WorkerContext


PROMETHEUS_TEXT = "text/plain; version=0.0.4"


def lag_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "payee_stream_consumer_lag",
        "High-water mark minus committed offset, per topic partition",
        labels=["topic", "partition"],
    )


class ConsumerLagCollector(Collector):
    """Lag read at scrape time: high-water mark (from Fetch responses) minus committed offset."""

    def __init__(self, ctx: WorkerContext) -> None:
        self._ctx = ctx

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield lag_family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = lag_family()
        source = self._ctx.source
        consumer = source.consumer
        for tp in sorted(source.assignment()) if consumer is not None else ():
            highwater = consumer.highwater(tp)
            committed = source.committed(tp)
            if highwater is not None:
                family.add_metric([tp.topic, str(tp.partition)], max(0, highwater - (committed or 0)))
        yield family


def register(ctx: WorkerContext) -> None:
    app = ctx.app
    metrics.REGISTRY.register(ConsumerLagCollector(ctx))

    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "alive"})

    @app.page("/ready")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            not_ready = ctx.not_ready_because()
            body = {
                "ready": not not_ready,
                "not_ready_because": not_ready,
                "supplier_index_ready": ctx.index_service.ready,
                "decisions_ready": ctx.decisions.ready,
                "decisions": len(ctx.decisions.table),
                "broker_reachable": ctx.broker_health.reachable,
                "broker_error": ctx.broker_health.error,
                "suppliers": len(ctx.index),
                "rebalancing": ctx.source.rebalancing,
                "assigned_partitions": len(ctx.source.assignment()),
                "paused_partitions": ctx.source.paused(),
                "delivery_stalled": ctx.source.stalled,
                "dead_letter_guard_tripped": ctx.source.guard_tripped,
            }
            return self.json(body, status=200 if not not_ready else 503)

    @app.page("/decisions/{decision_id}")
    class DecisionInForce(View):
        """Whether this worker applies a reviewer's decision (bench/decision_propagation.py)."""

        async def get(self, request: Request, decision_id: str) -> Response:
            return self.json({"decision_id": decision_id, "in_force": decision_id in ctx.decisions.table})

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            metrics.INDEX_READY.set(1 if ctx.index_service.ready else 0)
            # aiohttp wants the charset outside content_type; the exposition format is UTF-8.
            return self.text(generate_latest(metrics.REGISTRY).decode(), content_type=PROMETHEUS_TEXT)
