"""OpenTelemetry traces: one span per hop, W3C trace context carried in NATS headers, so one
trace id follows a message through ingress, router, executor and egress.

Every span has ids (so logs carry trace ids and the next hop continues the trace). Spans are
recorded and exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
`…_TRACES_ENDPOINT`) is set, with the standard OTEL_* variables for batching and sampling.
Without an exporter only traces a caller marked as sampled are recorded: building a span that
nobody reads cost ~10 % of the executor's CPU per message.
"""

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context, attach, detach
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACER = trace.get_tracer("greentic")
_PROPAGATOR = TraceContextTextMapPropagator()
_exporting = False


def configure_tracing(service: str) -> TracerProvider:
    """Install the process's tracer provider (once, at start)."""
    global _exporting
    _exporting = exporting = bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or
                     os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"greentic-{service}",
                                  "service.namespace": "greentic"}),
        sampler=None if exporting else ParentBased(ALWAYS_OFF))  # None: OTEL_TRACES_SAMPLER
    if exporting:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


def context_from(headers: Mapping[str, str] | None) -> Context:
    """The trace context a message or request carries (`traceparent`), if any."""
    return _PROPAGATOR.extract(dict(headers or {}))


def inject_context(headers: dict[str, str]) -> dict[str, str]:
    """Add the current span's `traceparent` (and `tracestate`) to outgoing headers."""
    _PROPAGATOR.inject(headers)
    return headers


@contextmanager
def span(name: str, *, kind: SpanKind = SpanKind.INTERNAL,
         headers: Mapping[str, str] | None = None,
         attributes: dict[str, Any] | None = None) -> Iterator[Span]:
    """A span, child of the current one or of the context in `headers`; an exception marks
    it as failed (and propagates). With no exporter, inside a trace nobody sampled, no span
    is made: the caller's ids go on to log lines and the next hop (half the spans' cost)."""
    context = context_from(headers) if headers is not None else None
    parent = trace.get_current_span(context).get_span_context()
    if not _exporting and parent.is_valid and not parent.trace_flags.sampled:
        token = attach(context) if context is not None else None
        try:
            yield trace.get_current_span()
        finally:
            if token is not None:
                detach(token)
        return
    with TRACER.start_as_current_span(name, context=context, kind=kind,
                                      attributes={k: v for k, v in (attributes or {}).items()
                                                  if v is not None},
                                      record_exception=True,
                                      set_status_on_exception=True) as current:
        yield current


def mark_error(current: Span, reason: str) -> None:
    current.set_status(Status(StatusCode.ERROR, reason))


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) in hex of the current span, for logs."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
