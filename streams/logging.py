"""structlog JSON logs, for our own loggers and for Faust's and aiokafka's stdlib loggers.

Payee names never go to logs (individuals' names are personal data): log ids and offsets.
Tracebacks are logged without the exceptions' messages, which can quote the input.
"""

from __future__ import annotations

import logging
import logging.config
import sys
from typing import Any

import structlog

from domain.privacy import traceback_without_messages

SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def format_exc_info_without_messages(
    logger: object, method_name: str, event_dict: dict[str, Any]
) -> dict[str, Any]:
    """structlog's ``format_exc_info``, but the ``exception`` field has no exception messages."""
    exc_info = event_dict.pop("exc_info", None)
    if exc_info is True:
        exc_info = sys.exc_info()
    error = exc_info if isinstance(exc_info, BaseException) else exc_info[1] if exc_info else None
    if error is not None:
        event_dict["exception"] = traceback_without_messages(error)
    return event_dict


def faust_logging_config(level: str) -> dict[str, Any]:
    """A ``logging.config`` dict that renders every stdlib record as one JSON line."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    format_exc_info_without_messages,
                    structlog.processors.JSONRenderer(),
                ],
                "foreign_pre_chain": SHARED_PROCESSORS,
            }
        },
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
    }


def configure_logging(level: str) -> None:
    logging.config.dictConfig(faust_logging_config(level))
    structlog.configure(
        processors=[*SHARED_PROCESSORS, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    logging.captureWarnings(True)
    sys.excepthook = lambda *exc_info: logging.getLogger("payee_stream").critical(
        "uncaught_exception", exc_info=exc_info
    )
