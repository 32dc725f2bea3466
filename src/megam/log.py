"""structlog set-up shared by every process: JSON lines, or readable lines on a terminal.

Logs go to stderr. They are one JSON object per line unless a person is reading: on a terminal
(and without ``json=True``) they are rendered by structlog's console renderer. Library loggers
(aio-pika, aiormq, pymongo) go through stdlib ``logging``; they are routed to the same renderer
so that an operator reads one format.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
import structlog

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def wants_json(stream: Any, json: bool | None) -> bool:
    """JSON when asked, and by default whenever no person is reading (a file, a pipe)."""
    if json is not None:
        return json
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):
        return True


def configure(level: str = "info", *, stream: object = None, json: bool | None = None) -> None:
    numeric = _LEVELS.get(level.lower(), logging.INFO)
    out = stream or sys.stderr
    as_json = wants_json(out, json)
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso" if as_json else "%H:%M:%S", utc=as_json),
    ]
    if as_json:
        renderer: list[structlog.types.Processor] = [
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ]
        factory: Any = structlog.BytesLoggerFactory(file=getattr(out, "buffer", out))
        foreign: structlog.types.Processor = structlog.processors.JSONRenderer(
            serializer=lambda obj, **_: _dumps(obj).decode()
        )
    else:
        console = structlog.dev.ConsoleRenderer(colors=True)
        renderer, factory, foreign = [console], structlog.PrintLoggerFactory(file=out), console
    structlog.configure(
        processors=[*shared, *renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(out)  # type: ignore[arg-type]
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, foreign],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.WARNING) if numeric < logging.WARNING else numeric)


def get(name: str) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)


def _dumps(obj: Any, **_: Any) -> bytes:
    # A foreign record (aiormq, aio-pika) may carry values orjson cannot encode (an exc_info
    # class): their repr, rather than a logging error instead of the line.
    return orjson.dumps(obj, default=repr)
