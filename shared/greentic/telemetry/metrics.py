"""Metrics through the OpenTelemetry API: scraped as Prometheus text at `/metrics` on every
service's health port, and pushed over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set."""

import os

from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import REGISTRY, generate_latest

METER = metrics.get_meter("greentic")

MESSAGES = METER.create_counter(
    "greentic.messages", unit="1",
    description="Messages a hop finished, by stage and outcome (handled, retried, dead_lettered)")
MESSAGES_IN = METER.create_counter(
    "greentic.messages.in", unit="1", description="Messages accepted from users, per channel")
MESSAGES_OUT = METER.create_counter(
    "greentic.messages.out", unit="1", description="Replies delivered to providers, per channel")
ERRORS = METER.create_counter(
    "greentic.errors", unit="1", description="Failures by stage and kind (exception type)")
DEAD_LETTERS = METER.create_counter(
    "greentic.dead_letters", unit="1", description="Messages moved to GREENTIC_DEADLETTER")
FLOW_DURATION = METER.create_histogram(
    "greentic.flow.duration", unit="s", description="Time to run one flow turn")
CONSUMER_LAG = METER.create_gauge(
    "greentic.consumer.lag", unit="1",
    description="Messages waiting for a hop's durable consumer (num_pending + redeliveries)")


def configure_metrics(service: str) -> MeterProvider:
    """Install the process's meter provider (once, at start)."""
    readers: list[MetricReader] = [PrometheusMetricReader()]
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or \
            os.environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    provider = MeterProvider(metric_readers=readers, resource=Resource.create({
        "service.name": f"greentic-{service}", "service.namespace": "greentic"}))
    metrics.set_meter_provider(provider)
    return provider


def prometheus_text() -> bytes:
    """The `/metrics` body."""
    return generate_latest(REGISTRY)
