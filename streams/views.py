"""Web endpoints on the worker's Faust web server: /health, /ready and /metrics."""

from __future__ import annotations

from collections.abc import Iterator

from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from streams import metrics
from streams.app import WorkerContext


class ConsumerLagCollector(Collector):
    """Lag read at scrape time: high-water mark (from Fetch responses) minus committed offset."""

    def __init__(self, ctx: WorkerContext) -> None:
        self._ctx = ctx

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "payee_stream_consumer_lag",
            "High-water mark minus committed offset, per topic partition",
            labels=["topic", "partition"],
        )
        consumer = self._ctx.app.consumer
        for tp in sorted(consumer.assignment()):
            highwater = consumer.highwater(tp)
            committed = consumer._committed_offset.get(tp)  # Faust keeps no public accessor
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
            body = {
                "ready": ctx.ready,
                "supplier_index_ready": ctx.index_service.ready,
                "suppliers": len(ctx.index),
                "rebalancing": bool(app.rebalancing),
                "assigned_partitions": len(app.consumer.assignment()),
            }
            return self.json(body, status=200 if ctx.ready else 503)

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            metrics.INDEX_READY.set(1 if ctx.index_service.ready else 0)
            return self.bytes(generate_latest(metrics.REGISTRY), content_type=CONTENT_TYPE_LATEST)
