"""Logs carry the trace they were written in; headers carry the trace to the next hop."""

import json

import pytest
import structlog

from greentic.bus.headers import TRACEPARENT, envelope_headers
from greentic.telemetry.logging import configure_logging
from greentic.telemetry.tracing import configure_tracing, span
from greentic.types import Envelope, TenantCtx

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture(scope="module", autouse=True)
def tracing() -> None:
    configure_tracing("test")


def test_a_log_line_inside_a_span_names_its_trace_and_span(
        capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("test", "info", "json")
    with span("work", headers={TRACEPARENT: PARENT}):
        structlog.get_logger("t").info("inside")
    structlog.get_logger("t").info("outside")
    inside, outside = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert inside["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert len(inside["span_id"]) == 16 and inside["span_id"] != "00f067aa0ba902b7"
    assert "trace_id" not in outside


def test_published_headers_continue_the_current_trace() -> None:
    envelope = Envelope(id="m1", ctx=TenantCtx("dev", "t", "m"), channel="c", provider="p",
                        conversation="c1")
    with span("hop", headers={TRACEPARENT: PARENT}) as current:
        headers = envelope_headers(envelope)
    version, trace_id, span_id, flags = headers[TRACEPARENT].split("-")
    assert (version, trace_id, flags) == ("00", "4bf92f3577b34da6a3ce929d0e0e4736", "01")
    assert span_id == format(current.get_span_context().span_id, "016x")


def test_without_an_exporter_a_new_trace_has_ids_but_is_not_recorded() -> None:
    envelope = Envelope(id="m1", ctx=TenantCtx("dev", "t", "m"), channel="c", provider="p",
                        conversation="c1")
    with span("hop") as current:
        headers = envelope_headers(envelope)
    assert not current.is_recording()
    _, trace_id, span_id, flags = headers[TRACEPARENT].split("-")
    assert int(flags, 16) & 1 == 0 and int(trace_id, 16) != 0  # not sampled
    assert span_id == format(current.get_span_context().span_id, "016x")


def test_without_an_exporter_an_unsampled_trace_continues_without_new_spans(
        capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("test", "info", "json")
    unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
    envelope = Envelope(id="m1", ctx=TenantCtx("dev", "t", "m"), channel="c", provider="p",
                        conversation="c1")
    with span("hop", headers={TRACEPARENT: unsampled}), span("node"):
        structlog.get_logger("t").info("inside")
        headers = envelope_headers(envelope)
    inside = json.loads(capsys.readouterr().err.splitlines()[0])
    assert (inside["trace_id"], inside["span_id"]) == ("4bf92f3577b34da6a3ce929d0e0e4736",
                                                       "00f067aa0ba902b7")
    assert headers[TRACEPARENT] == unsampled
