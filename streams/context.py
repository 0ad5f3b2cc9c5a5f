"""What the agents share: settings, the supplier index, the reviewers' decisions, the LLM and
merchant-data clients, the core's configuration and the consumer loop they register on.
Imports no agent (agents import this)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import faust

from domain.classify import LlmClassifier
from domain.merchant_http import HttpMerchantProvider
from domain.matching import SupplierIndex
from domain.outcome import CoreConfig
from domain.pipeline import current_versions
from schemas.events import Versions
from streams.broker_health import BrokerHealth
from streams.decisions_table import DecisionTableService
from streams.settings import Settings
from streams.source import SourceLoop
from streams.supplier_index import SupplierIndexService

try:
    PIPELINE_VERSION = version("payee-stream")
except PackageNotFoundError:  # running from a source tree that is not installed
    PIPELINE_VERSION = "0.0.0+source"


@dataclass
class WorkerContext:
    app: faust.App
    settings: Settings
    index_service: SupplierIndexService
    broker_health: BrokerHealth
    decisions: DecisionTableService
    llm: LlmClassifier | None
    merchant: HttpMerchantProvider | None
    core: CoreConfig
    source: SourceLoop

    @property
    def index(self) -> SupplierIndex:
        return self.index_service.index

    def versions(self) -> Versions:
        return self.versions_of(self.index)

    def versions_of(self, index: SupplierIndex) -> Versions:
        return current_versions(index, PIPELINE_VERSION, self.core.thresholds, self.core.default_places)

    def not_ready_because(self) -> list[str]:
        reasons = []
        if not self.index_service.ready:
            reasons.append("supplier index loading")
        if not self.decisions.ready:
            reasons.append("decisions loading")
        if not self.broker_health.reachable:
            reasons.append("broker unreachable")
        if self.source.rebalancing:
            reasons.append("rebalancing")
        if self.index_service.ready and self.decisions.ready and not self.source.started_consuming:
            reasons.append("consumer starting")
        if self.source.stalled:
            reasons.append("delivery stalled")
        if self.source.guard_tripped and self.settings.dlq_guard_action == "pause":
            reasons.append("dead-letter guard tripped")
        return reasons

    @property
    def ready(self) -> bool:
        return not self.not_ready_because()
