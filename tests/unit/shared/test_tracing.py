"""Tracing without a broker: W3C headers in and out of Kafka-style and stored headers,
trace ids in the log lines, the HTTP spans (probes left out, query values redacted), the
SQL spans of every instrumented engine, and OTLP export only when an endpoint is set —
checked against a real HTTP server receiving `/v1/traces`."""

from __future__ import annotations

import io
import json
import logging
import os
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import structlog
from fastapi import FastAPI
from opentelemetry import propagate, trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState
from sqlalchemy import text

from shared import tracing
from shared.db import create_engine
from shared.events.envelope import Envelope, EventPayload
from shared.logging import add_trace_ids, configure_logging, get_logger
from shared.messaging.unit_of_work import _outbox_row
from tests.unit.shared.test_envelope import closure_announced as closure

_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider (the first `configure_tracing` installs it, whoever
    calls it), with this module's in-memory exporter on it; emptied for each test."""
    provider = tracing.configure_tracing("unit-tests")
    if not isinstance(provider, TracerProvider):
        pytest.skip("OpenTelemetry SDK disabled in this environment")
    if not getattr(provider, "_rebond_unit_exporter", False):
        tracing.export_to(provider, SimpleSpanProcessor(_EXPORTER))
        provider._rebond_unit_exporter = True  # type: ignore[attr-defined]
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def remote(trace_state: str | None = None) -> tuple[int, int, Any]:
    """A random remote parent (as an incoming `traceparent` would give): ids, context."""
    trace_id, span_id = random.getrandbits(128), random.getrandbits(64)
    state = TraceState.from_header([trace_state]) if trace_state else TraceState()
    parent = SpanContext(
        trace_id, span_id, is_remote=True, trace_flags=TraceFlags(1), trace_state=state
    )
    return trace_id, span_id, trace.set_span_in_context(NonRecordingSpan(parent))


def traceparent(trace_id: int, span_id: int) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-01"


# --- headers --------------------------------------------------------------------------


def test_no_trace_header_without_a_span() -> None:
    assert tracing.trace_headers() == []
    envelope: Envelope[EventPayload] = Envelope.new(closure(), source="site_registry")
    row = _outbox_row(envelope, tracing.trace_headers())
    assert [k for k, _ in row.headers] == [k for k, _ in envelope.headers()]


def test_the_current_span_goes_into_the_outbox_row(spans: InMemorySpanExporter) -> None:
    trace_id, _, parent = remote(trace_state="rebond=t61rcWkgMzE")
    envelope: Envelope[EventPayload] = Envelope.new(closure(), source="site_registry")
    with tracing.tracer().start_as_current_span("request", context=parent) as span:
        row = _outbox_row(envelope, tracing.trace_headers())
    span_id = span.get_span_context().span_id
    # the ce_* headers first, unchanged, then the W3C ones
    assert row.headers[:-2] == [[k, v.decode()] for k, v in envelope.headers()]
    (name, value), (state_name, state) = row.headers[-2:]
    assert (name, state_name, state) == ("traceparent", "tracestate", "rebond=t61rcWkgMzE")
    assert value.rsplit("-", 1)[0] == f"00-{trace_id:032x}-{span_id:016x}"
    assert int(value.rsplit("-", 1)[1], 16) & 1  # sampled


def test_kafka_and_stored_headers_give_back_the_parent() -> None:
    trace_id, span_id = random.getrandbits(128), random.getrandbits(64)
    value = traceparent(trace_id, span_id)
    kafka = [("ce_id", b"x"), ("traceparent", value.encode()), ("tracestate", b"a=b")]
    stored = [["ce_id", "x"], ["traceparent", value], ["tracestate", "a=b"]]

    for context in (tracing.context_from_kafka(kafka), tracing.context_from_stored(stored)):
        parent = trace.get_current_span(context).get_span_context()
        assert tracing.has_parent(context)
        assert (parent.trace_id, parent.span_id, parent.is_remote) == (trace_id, span_id, True)
        assert parent.trace_state.get("a") == "b"
    assert tracing.context_from_mapping(dict(stored)) is not None


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("traceparent", b"00-not-a-trace-01")],
        [("traceparent", b"00-" + b"0" * 32 + b"-" + b"1" * 16 + b"-01")],  # all-zero id
        [("traceparent", b"\xff\xfe")],  # not UTF-8: ignored, not an error
        None,
    ],
)
def test_no_or_broken_traceparent_is_no_parent(headers: Any) -> None:
    assert not tracing.has_parent(tracing.context_from_kafka(headers))


def test_trace_headers_are_replaced_the_others_kept_in_order() -> None:
    trace_id, span_id, parent = remote()
    old = [("ce_id", b"1"), ("traceparent", b"00-old"), ("ce_type", b"t"), ("tracestate", b"x")]
    new = tracing.replace_trace_headers(old, parent)
    assert new == [
        ("ce_id", b"1"),
        ("ce_type", b"t"),
        ("traceparent", traceparent(trace_id, span_id).encode()),
    ]
    assert tracing.replace_trace_headers(old, trace.set_span_in_context(trace.INVALID_SPAN)) == [
        ("ce_id", b"1"),
        ("ce_type", b"t"),
    ]


def test_only_w3c_trace_context_is_written_no_baggage(spans: InMemorySpanExporter) -> None:
    from opentelemetry import baggage

    ctx = baggage.set_baggage("user", "someone@example.org")
    with tracing.tracer().start_as_current_span("request", context=ctx):
        names = [k for k, _ in tracing.trace_headers()]
    assert names == [tracing.TRACEPARENT]


# --- logs -----------------------------------------------------------------------------


def test_log_lines_carry_the_current_span_ids_and_none_outside(spans: InMemorySpanExporter) -> None:
    assert add_trace_ids(None, "info", {"event": "x"}) == {"event": "x"}
    trace_id, _, parent = remote()
    with tracing.tracer().start_as_current_span("work", context=parent) as span:
        line = add_trace_ids(None, "info", {"event": "x"})
    assert line["trace_id"] == f"{trace_id:032x}"
    assert line["span_id"] == f"{span.get_span_context().span_id:016x}"


@pytest.fixture
def json_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """`configure_logging` (JSON) writing to a buffer; the logging setup restored after."""
    out = io.StringIO()
    monkeypatch.setattr("sys.stderr", out)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging("unit", json=True)
    yield out
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def test_the_service_log_format_shows_the_trace_id(
    spans: InMemorySpanExporter, json_logs: io.StringIO
) -> None:
    trace_id, _, parent = remote()
    with tracing.tracer().start_as_current_span("work", context=parent):
        get_logger("t").info("inside")
        logging.getLogger("some.library").warning("library line inside")
    get_logger("t").info("outside")
    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    by_event = {line["event"]: line for line in lines}
    assert by_event["inside"]["trace_id"] == f"{trace_id:032x}"
    assert by_event["library line inside"]["trace_id"] == f"{trace_id:032x}"
    assert "trace_id" not in by_event["outside"] and "span_id" not in by_event["outside"]


# --- HTTP -----------------------------------------------------------------------------


async def test_http_spans_continue_the_callers_trace_probes_left_out(
    spans: InMemorySpanExporter,
) -> None:
    app = FastAPI(telemetry=tracing.fastapi_telemetry_options())

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/sites/{siret}")
    async def get_site(siret: str, q: str = "") -> dict[str, str]:
        return {
            "siret": siret,
            "trace": f"{trace.get_current_span().get_span_context().trace_id:032x}",
        }

    trace_id, span_id = random.getrandbits(128), random.getrandbits(64)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        assert (
            await client.get("/healthz", headers={"traceparent": traceparent(trace_id, span_id)})
        ).status_code == 200
        assert spans.get_finished_spans() == ()
        resp = await client.get(
            "/sites/36120038900019",
            params={"q": "Jean Dupont"},
            headers={"traceparent": traceparent(trace_id, span_id)},
        )
    assert resp.json()["trace"] == f"{trace_id:032x}"  # the handler runs in the trace
    server = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert len(server) == 1
    (span,) = server
    assert span.name == "GET /sites/{siret}"
    assert span.context.trace_id == trace_id
    assert span.parent is not None and span.parent.span_id == span_id
    assert span.attributes is not None
    assert span.attributes["url.query"] == "q=REDACTED"
    assert "Dupont" not in json.dumps(dict(span.attributes))


# --- the database ---------------------------------------------------------------------


def sql_spans(spans: InMemorySpanExporter, trace_id: int) -> list[ReadableSpan]:
    return [
        s
        for s in spans.get_finished_spans()
        if s.kind is SpanKind.CLIENT and s.context.trace_id == trace_id
    ]


async def test_every_instrumented_engine_emits_sql_spans_without_parameters(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    """Fails when an opentelemetry-instrumentation-sqlalchemy release stops emitting
    spans with the locked SQLAlchemy (its declared range excludes 2.1: `skip_dep_check`),
    or stops doing so for a second engine of the process."""
    engines = [create_engine(f"sqlite+aiosqlite:///{tmp_path / f'db{n}.sqlite'}") for n in (1, 2)]
    try:
        for engine in engines:
            tracing.instrument_engine(engine)
            tracing.instrument_engine(engine)  # twice: still one span a statement
        for engine in engines:
            trace_id, _, parent = remote()
            with tracing.tracer().start_as_current_span("work", context=parent):
                async with engine.connect() as conn:
                    await conn.execute(
                        text("SELECT :secret"), {"secret": "jean.dupont@example.org"}
                    )
            selects = [s for s in sql_spans(spans, trace_id) if s.name.startswith("SELECT")]
            assert len(selects) == 1, [s.name for s in sql_spans(spans, trace_id)]
            attributes = json.dumps(dict(selects[0].attributes or {}))
            assert "SELECT ?" in attributes  # the statement, with its placeholder
            assert "dupont" not in attributes
        # Outside any request or message (a relay's poll, a probe's ping): no trace at all.
        spans.clear()
        async with engines[0].connect() as conn:
            await conn.execute(text("SELECT 2"))
        assert [s.name for s in spans.get_finished_spans()] == []
    finally:
        for engine in engines:
            await engine.dispose()


# --- export ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "exports"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, False),
    ],
)
def test_spans_are_exported_only_when_an_endpoint_is_configured(
    environ: dict[str, str], exports: bool
) -> None:
    assert tracing.exporting(environ) is exports
    setup = tracing.build_provider("site_registry", environ)
    if environ.get("OTEL_SDK_DISABLED") == "true":
        assert setup is None
        return
    assert setup is not None
    assert (setup.exporter is not None) is exports
    setup.provider.shutdown()


class _Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append((self.path, self.headers.get("Content-Type", ""), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    received: list[tuple[str, str, bytes]] = []
    handler = type("Collector", (_Collector,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def test_with_an_endpoint_spans_reach_the_collector_by_otlp_http(
    collector: tuple[str, list[tuple[str, str, bytes]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    setup = tracing.build_provider("campaigns")
    assert setup is not None and setup.exporter is not None
    trace_id, _, parent = remote()
    with setup.provider.get_tracer("t").start_as_current_span("launch", context=parent):
        pass
    setup.provider.shutdown()  # flushes the batch processor

    assert [(path, kind) for path, kind, _ in received] == [
        ("/v1/traces", "application/x-protobuf")
    ]
    request = ExportTraceServiceRequest.FromString(received[0][2])
    (resource_spans,) = request.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert service["service.name"] == "campaigns"
    names = {
        (s.name, s.trace_id.hex()) for scope in resource_spans.scope_spans for s in scope.spans
    }
    assert names == {("launch", f"{trace_id:032x}")}


def test_otel_service_name_wins_over_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "rebond-campaigns-eu")
    setup = tracing.build_provider("campaigns", dict(os.environ))
    assert setup is not None
    assert setup.provider.resource.attributes["service.name"] == "rebond-campaigns-eu"
    setup.provider.shutdown()


def test_configure_tracing_is_idempotent() -> None:
    first = tracing.configure_tracing("one")
    assert tracing.configure_tracing("two") is first
    if first is not None:
        assert trace.get_tracer_provider() is first


def test_without_an_exporter_no_span_is_recorded_yet_the_ids_go_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    setup = tracing.build_provider("campaigns", dict(os.environ))
    assert setup is not None and setup.exporter is None
    trace_id, span_id, parent = remote()
    with setup.provider.get_tracer("t").start_as_current_span("launch", context=parent) as span:
        assert not span.is_recording()  # nothing kept for nobody
        context = span.get_span_context()
        assert context.is_valid and context.trace_id == trace_id  # the caller's trace
        assert context.span_id != span_id
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        assert carrier["traceparent"].split("-")[1] == f"{trace_id:032x}"
    # An exporter added later (a test's, an operator's) starts the recording.
    memory = InMemorySpanExporter()
    tracing.export_to(setup.provider, SimpleSpanProcessor(memory))
    with setup.provider.get_tracer("t").start_as_current_span("recorded", context=parent):
        pass
    assert [s.name for s in memory.get_finished_spans()] == ["recorded"]
    setup.provider.shutdown()
