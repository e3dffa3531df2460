"""structlog configuration, and the context that follows a request into its events.

The correlation id of an HTTP request (its `X-Correlation-ID`, or a new one) is bound in
a context variable; the unit of work stamps it on outbox rows, the relay sends it as the
`ce_correlationid` header, and the consumer binds it again before calling a handler, so
one id ties a request to every log line it causes in every service.

A line logged while an OpenTelemetry span is current also carries that span's `trace_id`
and `span_id` (hex, as trace backends show them): the trace follows the same path through
the outbox's `traceparent` header (`shared.tracing`).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog
from opentelemetry import trace

correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)
causation_id_var: ContextVar[str | None] = ContextVar("causation_id", default=None)


def add_trace_ids(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: the current span's `trace_id` and `span_id`, when there is one."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event_dict["trace_id"] = format(span_context.trace_id, "032x")
        event_dict["span_id"] = format(span_context.span_id, "016x")
    return event_dict


def configure_logging(service: str, level: str = "INFO", json: bool | None = None) -> None:
    use_json = (not sys.stderr.isatty()) if json is None else json
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.bind_contextvars(service=service)
    # Libraries (uvicorn, aiokafka, SQLAlchemy) log through the standard library: render
    # their records with the same processors, so one stream has one format, and keep
    # their noise at WARNING.
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RepeatFilter())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                *processors[:4],
                structlog.stdlib.add_logger_name,
                structlog.stdlib.ExtraAdder(),
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)


def bind_correlation(correlation_id: str | None, causation_id: str | None = None) -> None:
    correlation_id_var.set(correlation_id)
    causation_id_var.set(causation_id)
    structlog.contextvars.bind_contextvars(correlation_id=correlation_id)


class Throttled:
    """A repeated failure logged once per interval, with how many times it happened.

    During a broker or database outage a relay or consumer fails every fraction of a
    second; one line per attempt would drown the log (and the disk) while saying nothing
    new. The first failure of a kind is logged at once, then at most one line per
    `interval_s` carrying `repeated` (failures since the last line); `recovered` logs
    the end of the condition with its total.
    """

    def __init__(self, logger: Any, interval_s: float = 30.0) -> None:
        self._log = logger
        self._interval = interval_s
        self._state: dict[str, list[float]] = {}  # key → [last logged, since last, total]

    def failure(self, key: str, event: str, *, level: str = "warning", **fields: Any) -> None:
        now = time.monotonic()
        state = self._state.get(key)
        if state is None:
            self._state[key] = [now, 0, 1]
            getattr(self._log, level)(event, **fields)
            return
        state[1] += 1
        state[2] += 1
        if now - state[0] >= self._interval:
            getattr(self._log, level)(event, repeated=int(state[1]), **fields)
            state[0], state[1] = now, 0

    def recovered(self, key: str, event: str, **fields: Any) -> None:
        state = self._state.pop(key, None)
        if state is not None:
            self._log.info(event, failures=int(state[2]), **fields)

    def failing(self, key: str) -> bool:
        return key in self._state


class RepeatFilter(logging.Filter):
    """The same idea for libraries' records (aiokafka logs every failed connection
    attempt): a record whose logger and message template were seen within `interval_s`
    is dropped and counted; the next one let through says how many were dropped."""

    def __init__(self, interval_s: float = 30.0) -> None:
        super().__init__()
        self._interval = interval_s
        self._seen: dict[tuple[str, str], list[float]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, str(record.msg))
        now = time.monotonic()
        state = self._seen.get(key)
        if state is not None and now - state[0] < self._interval:
            state[1] += 1
            return False
        if state is not None and state[1]:
            record.msg = f"{record.msg} (and {int(state[1])} more like it in {self._interval:.0f}s)"
        self._seen[key] = [now, 0]
        if len(self._seen) > 1000:  # bounded: templates, not values, are the keys
            self._seen.clear()
        return True
