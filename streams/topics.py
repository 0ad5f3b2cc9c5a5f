"""Topic declarations. Values are raw bytes: decoding is a processing step whose failures are
dead-lettered, rather than a Faust deserialisation error that would drop the message."""

from __future__ import annotations

from dataclasses import dataclass

import faust
from faust.types import TopicT

from streams.settings import Settings


@dataclass(frozen=True)
class Topics:
    raw: TopicT
    enriched: TopicT
    review: TopicT
    audit: TopicT
    dlq: TopicT
    llm: TopicT
    merchant: TopicT


def bytes_topic(app: faust.App, name: str, partitions: int, **options: object) -> TopicT:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
        **options,
    )


def declare_topics(app: faust.App, settings: Settings) -> Topics:
    parts = settings.partitions
    return Topics(
        raw=bytes_topic(app, settings.topic_raw, parts),
        enriched=bytes_topic(app, settings.topic_enriched, parts),
        review=bytes_topic(app, settings.topic_review, parts),
        audit=bytes_topic(app, settings.topic_audit, parts),
        dlq=bytes_topic(app, settings.topic_dlq, parts),
        llm=bytes_topic(app, settings.topic_llm, parts),
        merchant=bytes_topic(app, settings.topic_merchant, parts),
    )
