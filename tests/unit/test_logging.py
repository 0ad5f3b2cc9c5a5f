"""Worker logging: JSON lines at the configured level, and no debug records built above it."""

from __future__ import annotations

import logging

import faust
import pytest

from streams.app import JsonLogWorker
from streams.logging import configure_logging, faust_logging_config


@pytest.mark.parametrize("level", ["WARNING", "ERROR", "INFO"])
def test_library_debug_records_are_not_built_above_debug(level):
    app = faust.App("logging-test", broker="kafka://127.0.0.1:1")
    configure_logging(level)
    worker = JsonLogWorker(app, loglevel=level.lower(), logging_config=faust_logging_config(level), quiet=True)
    try:
        worker._setup_logging()  # what the worker does when it starts
        for name in ("aiokafka.producer.producer", "faust.topics", "payee_stream"):
            assert not logging.getLogger(name).isEnabledFor(logging.DEBUG)
        assert logging.getLogger("payee_stream").getEffectiveLevel() == getattr(logging, level)
    finally:
        logging.root.setLevel(logging.WARNING)
        logging.root.handlers.clear()
