"""structlog setup: one JSON object per line on stderr.

Hot-path code logs per packet only at debug; rejects, drops and events are logged at info.
Secrets never reach a log line: config values that are secrets are ``config.Secret`` objects,
whose repr is masked, and handlers log reasons and ids, not attribute dumps.
"""

from __future__ import annotations

import logging
import sys
import weakref
from typing import Any

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

# Every logger handed out. Each caches its bound logger, with the level's filtering, on first use
# (cache_logger_on_first_use: a call below the level costs nothing); setup() drops those caches so
# that a new level (a configuration reload) reaches loggers already in use.
_handed_out: weakref.WeakSet[Any] = weakref.WeakSet()


class _Stderr:
    """Whatever ``sys.stderr`` is when a line is written, not when setup() ran: a stream swapped
    since (a test's capture, an embedding program's redirection) and closed would otherwise turn
    every later log call into an exception.

    Each event reaches it as one string with its newline (``WriteLogger``), and so leaves in one
    ``write(2)``: Python's stderr is write-through, and structlog's ``PrintLogger`` prints the
    event and its newline in two calls, so the supervisor and its workers, which share one stderr,
    once put two events on one line of the log (a CI run: ``{...}{...}`` then two newlines)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def setup(level: str = "info") -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.WriteLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    for proxy in list(_handed_out):
        # structlog's lazy proxy caches by setting its own ``bind``; without it, it binds afresh.
        vars(proxy).pop("bind", None)


def get(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    _handed_out.add(logger)
    return logger
