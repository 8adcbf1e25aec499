"""Structured JSON logs (structlog). Secrets are never passed to a logger."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    numeric = logging.getLevelName(level.upper())
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=numeric, force=True)
    # huey logs every periodic task it enqueues and runs at INFO; the worker logs what
    # matters (job.done, job.skipped_locked) itself.
    logging.getLogger("huey").setLevel(max(numeric, logging.WARNING))
    _configure_structlog(numeric, json=json)


def _configure_structlog(numeric: int, *, json: bool = True) -> None:
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    if not structlog.is_configured():
        # Library use (tests, benchmarks): JSON on stderr until `tenure serve` configures logging.
        _configure_structlog(logging.INFO)
    return structlog.get_logger(name)  # type: ignore[no-any-return]
