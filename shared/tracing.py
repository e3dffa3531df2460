"""OpenTelemetry traces: one trace from a request through the outbox, Kafka and the
consumers' handlers to the events they publish in turn.

- **The provider.** `configure_tracing(service)` installs the SDK's tracer provider once
  per process (the composition root calls it; tests build many runtimes in one process,
  and the global provider can be set only once: the first call wins). Spans always get
  ids, so log lines carry `trace_id`/`span_id` (`shared.logging`); they are **exported
  only when an OTLP endpoint is configured** (`OTEL_EXPORTER_OTLP_ENDPOINT` or
  `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, OTLP/HTTP protobuf), and not at all with
  `OTEL_TRACES_EXPORTER=none`. `OTEL_SDK_DISABLED=true` installs nothing. The SDK reads
  the rest of the standard variables itself (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
  `OTEL_TRACES_SAMPLER`, `OTEL_EXPORTER_OTLP_HEADERS`, `…_TIMEOUT`).
- **HTTP.** FastAPI's native telemetry (`fastapi_telemetry_options`): a SERVER span per
  request that continues an incoming `traceparent`; the probes are left out.
- **The database.** Each service engine is instrumented (`instrument_engine`): a CLIENT
  span per statement, with the SQL text but never its parameters.
- **Kafka, through the outbox.** The publish happens long after the request, in the
  relay's task, so the context is captured when the outbox row is written: the unit of
  work stores W3C `traceparent` (and `tracestate`) among the row's headers
  (`trace_headers`). The relay sends each row in a PRODUCER span whose parent is that
  stored context and re-injects the headers to point at it; the consumer runs each
  message's handler in a CONSUMER span whose parent it extracts from the message
  (`consumer_span`), so the handler's own events continue the trace.

Only the W3C Trace Context headers are written to Kafka (no `baggage`: an incoming
request's baggage is not forwarded to third-party readers of the topics). Spans carry no
personal data: ids, topics, routes, SQL text; a request's query string is redacted.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi.telemetry import TelemetryConfig
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider, sampling
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, Span, SpanKind, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

#: W3C Trace Context header names, as they appear among a Kafka message's headers
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
TRACE_HEADERS = (TRACEPARENT, TRACESTATE)

#: The routes left out of the HTTP spans: probes and scrapes, many per minute, no story.
UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACER_NAME = "rebond"
_lock = threading.Lock()
_configured = False
_provider: TracerProvider | None = None


@dataclass(frozen=True)
class TracingSetup:
    """What `build_provider` made: the provider, and its exporter when one is configured."""

    provider: TracerProvider
    exporter: SpanExporter | None


def exporting(environ: Mapping[str, str] | None = None) -> bool:
    """Whether spans leave the process: an OTLP endpoint is configured, and neither the
    SDK nor the traces exporter is switched off."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return bool(
        env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    )


def build_provider(service: str, environ: Mapping[str, str] | None = None) -> TracingSetup | None:
    """A tracer provider for `service` (None when `OTEL_SDK_DISABLED=true`), with an OTLP
    exporter behind a batch processor only when `exporting`. Not installed globally."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    # `OTEL_SERVICE_NAME` (read by the SDK's resource detector) wins over the default.
    attributes = {} if env.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service}
    provider = TracerProvider(
        resource=Resource.create(attributes),
        sampler=_RecordedOnceExported(_NoRootStatements(_configured_sampler())),
    )
    provider.add_span_processor(_RedactQuery())
    exporter: SpanExporter | None = None
    if exporting(env):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # Endpoint, headers, timeout and compression from the OTEL_EXPORTER_OTLP_* variables.
        exporter = OTLPSpanExporter()
        export_to(provider, BatchSpanProcessor(exporter))
    return TracingSetup(provider, exporter)


def export_to(provider: TracerProvider, processor: SpanProcessor) -> None:
    """Send the provider's spans to `processor` (an exporter's), and start recording them."""
    provider.add_span_processor(processor)
    if isinstance(provider.sampler, _RecordedOnceExported):
        provider.sampler.recording = True


def configure_tracing(service: str) -> TracerProvider | None:
    """Install the process's tracer provider (see `build_provider`) and return it; a
    second call returns the first one's. A provider installed by someone else (a test's)
    is kept. The SDK shuts it down at exit (`shutdown_tracing` does it sooner): the batch
    processor flushes what is pending, bounded by the exporter's timeout."""
    global _configured, _provider
    with _lock:
        if _configured:
            return _provider
        _configured = True
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            _provider = current
            return _provider
        setup = build_provider(service)
        if setup is None:
            return None
        trace.set_tracer_provider(setup.provider)
        _provider = setup.provider
        return _provider


def shutdown_tracing() -> None:
    """Flush and stop the process's provider (also done at exit)."""
    if _provider is not None:
        _provider.shutdown()


def tracer() -> trace.Tracer:
    return trace.get_tracer(_TRACER_NAME)


def _configured_sampler() -> Sampler:
    # What the SDK would pick itself (OTEL_TRACES_SAMPLER, …_ARG; parent-based always-on
    # by default): the helper is private, hence the fallback.
    pick = getattr(sampling, "_get_from_env_or_default", None)
    return pick() if callable(pick) else sampling.DEFAULT_ON


class _NoRootStatements(Sampler):
    """A database statement outside any request or message (the relay's polling, lease
    renewals, a readiness probe's ping, migrations) starts no trace of its own: such
    one-span traces would be most of what is exported, and tell nothing. The spans the
    database instrumentation makes are CLIENT spans; none of ours is a root CLIENT span."""

    def __init__(self, delegate: Sampler) -> None:
        self._delegate = delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if kind is SpanKind.CLIENT and not has_parent(parent_context):
            return SamplingResult(Decision.DROP)
        return self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"NoRootStatements{{{self._delegate.get_description()}}}"


class _RecordedOnceExported(Sampler):
    """Nothing leaves the process without an exporter: no span is recorded then (no
    attributes, no events, no processors run). Each span still gets its ids, from the
    caller's trace or a new one, so the logs carry trace ids and the events' headers carry
    the trace on (marked not sampled). Recording every span for nobody cost the tests
    about 15 % (the access matrix: 40.6 s without the SDK, 47.2 s recording)."""

    def __init__(self, delegate: Sampler) -> None:
        self._delegate = delegate
        self.recording = False  # set by `export_to`

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if not self.recording:
            return SamplingResult(Decision.DROP)
        return self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"RecordedOnceExported{{{self._delegate.get_description()}}}"


class _RedactQuery(SpanProcessor):
    """A request's query string may hold what a user typed (a search): keep its
    parameter names, never their values."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if isinstance(span, SdkSpan) and span.attributes:
            query = span.attributes.get("url.query")
            if isinstance(query, str) and query:
                names = [part.partition("=")[0] for part in query.split("&")]
                span.set_attribute("url.query", "&".join(f"{n}=REDACTED" for n in names))

    def on_end(self, span: ReadableSpan) -> None:
        return None


# --- HTTP -------------------------------------------------------------------------------


def _untraced(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in UNTRACED_PATHS


def fastapi_telemetry_options() -> TelemetryConfig:
    """The `telemetry=` of every service's `FastAPI(...)`: request spans only (metrics are
    Prometheus', logs structlog's), no exporter of FastAPI's own (`configure_tracing`
    owns the one), probes left out."""
    return {
        "tracing": True,
        "operation_spans": True,
        "metrics": False,
        "logs": False,
        "auto_configure": False,
        "exclude": _untraced,
    }


# --- the database -----------------------------------------------------------------------

_instrumented: weakref.WeakSet[Engine] = weakref.WeakSet()


def instrument_engine(engine: AsyncEngine | Engine) -> None:
    """A CLIENT span per statement of this engine (SQL text, not parameters).

    `SQLAlchemyInstrumentor` 0.66b2 declares `sqlalchemy < 2.1` and instruments nothing
    with SQLAlchemy 2.1 unless told to skip that check (`tests/unit/shared/test_tracing.py`
    notices a release that stops emitting spans). The instrumentor is a process-wide
    singleton that instruments once: the first engine goes through it, the next ones
    (several runtimes in one test process) get the same per-engine tracer it builds."""
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    with _lock:
        if sync_engine in _instrumented:
            return
        _instrumented.add(sync_engine)
        instrumentor = SQLAlchemyInstrumentor()
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(engine=sync_engine, skip_dep_check=True)
            return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.instrumentation.sqlalchemy.version import __version__ as version
    from opentelemetry.metrics import get_meter
    from opentelemetry.semconv.metrics import MetricInstruments

    name = "opentelemetry.instrumentation.sqlalchemy"
    usage = get_meter(name, version).create_up_down_counter(
        name=MetricInstruments.DB_CLIENT_CONNECTIONS_USAGE, unit="connections"
    )
    EngineTracer(trace.get_tracer(name, version), sync_engine, usage)  # type: ignore[no-untyped-call]


# --- Kafka headers ----------------------------------------------------------------------


class _BytesHeaders(Getter[Sequence[tuple[str, bytes]]]):
    """Kafka headers (name, bytes value): a name may repeat, the first one counts."""

    def get(self, carrier: Sequence[tuple[str, bytes]], key: str) -> list[str] | None:
        for name, value in carrier:
            if name == key and value is not None:
                with contextlib.suppress(UnicodeDecodeError):
                    return [value.decode()]
        return None

    def keys(self, carrier: Sequence[tuple[str, bytes]]) -> list[str]:
        return [name for name, _ in carrier]


class _StrHeaders(Getter[Sequence[Sequence[str]]]):
    """The outbox row's stored headers: `[[name, value], …]`."""

    def get(self, carrier: Sequence[Sequence[str]], key: str) -> list[str] | None:
        for name, value in carrier:
            if name == key:
                return [value]
        return None

    def keys(self, carrier: Sequence[Sequence[str]]) -> list[str]:
        return [pair[0] for pair in carrier]


_BYTES = _BytesHeaders()
_STRS = _StrHeaders()


def trace_headers(context: Context | None = None) -> list[tuple[str, str]]:
    """`traceparent` (and `tracestate` when there is one) of the current span, or of
    `context`'s; nothing when there is no valid span context."""
    span_context = trace.get_current_span(context).get_span_context()
    if not span_context.is_valid:
        return []
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context)
    return [(name, carrier[name]) for name in TRACE_HEADERS if carrier.get(name)]


def context_from_kafka(headers: Sequence[tuple[str, bytes]] | None) -> Context:
    """The remote parent a Kafka message's headers carry (an empty context when none)."""
    return _PROPAGATOR.extract(list(headers or ()), context=Context(), getter=_BYTES)


def context_from_stored(headers: Sequence[Sequence[str]]) -> Context:
    """The parent an outbox row's stored headers carry (an empty context when none)."""
    return _PROPAGATOR.extract(headers, context=Context(), getter=_STRS)


def context_from_mapping(headers: Mapping[str, str]) -> Context:
    return _PROPAGATOR.extract(dict(headers), context=Context())


def has_parent(context: Context | None) -> bool:
    return trace.get_current_span(context).get_span_context().is_valid


def replace_trace_headers(
    headers: Sequence[tuple[str, bytes]], context: Context | None = None
) -> list[tuple[str, bytes]]:
    """`headers` with their trace headers replaced by those of the current span (or of
    `context`): the other headers untouched, in their order."""
    kept = [(k, v) for k, v in headers if k not in TRACE_HEADERS]
    return kept + [(k, v.encode()) for k, v in trace_headers(context)]


def producer_span(parent: Context, *, topic: str, event_id: str) -> Span:
    """The PRODUCER span of one outbox row's publication, child of the stored context;
    started, not made current (the caller ends it when the broker has the row)."""
    return tracer().start_span(
        f"send {topic}",
        context=parent,
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
            "messaging.destination.name": topic,
            "messaging.message.id": event_id,
            "cloudevents.event_id": event_id,
        },
    )


@contextlib.contextmanager
def consumer_span(
    parent: Context,
    *,
    topic: str,
    partition: int,
    offset: int,
    consumer: str,
    event_id: str | None = None,
    event_type: str | None = None,
) -> Iterator[Span]:
    """The CONSUMER span of one message's processing, child of the context the message
    carried (a new trace when it carried none), current while the handler runs: what the
    handler logs and publishes belongs to it."""
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": topic,
        "messaging.destination.partition.id": str(partition),
        "messaging.kafka.offset": offset,
        "messaging.consumer.group.name": consumer,
    }
    if event_id is not None:
        attributes["messaging.message.id"] = event_id
        attributes["cloudevents.event_id"] = event_id
    if event_type is not None:
        attributes["cloudevents.event_type"] = event_type
    with tracer().start_as_current_span(
        f"process {topic}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
    ) as span:
        yield span
