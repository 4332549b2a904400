"""One trace across the processes a message passes, metrics after a conversation."""

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.parser import text_string_to_metric_families

from greentic.hosting.launcher import free_port
from greentic.providers.webchat.client import DirectLineClient
from tests.integration.platform import Platform
from tests.integration.provider_double import channel_platform

OTLP_PORT = free_port()
platform = channel_platform("observability", {}, OTEL_EXPORTER_OTLP_ENDPOINT=(
    f"http://127.0.0.1:{OTLP_PORT}"), OTEL_BSP_SCHEDULE_DELAY="100",
    OTEL_METRIC_EXPORT_INTERVAL="1000")


class OtlpReceiver:
    """A minimal OTLP/HTTP collector: decodes the protobuf trace exports it receives."""

    def __init__(self) -> None:
        self.spans: list[dict] = []

    async def traces(self, request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in export.resource_spans:
            service = next(a.value.string_value for a in resource_spans.resource.attributes
                           if a.key == "service.name")
            for scope in resource_spans.scope_spans:
                for item in scope.spans:
                    self.spans.append({"service": service, "name": item.name,
                                       "trace_id": item.trace_id.hex(),
                                       "span_id": item.span_id.hex(),
                                       "parent": item.parent_span_id.hex()})
        return web.Response(content_type="application/x-protobuf")

    async def ignore(self, _request: web.Request) -> web.Response:
        return web.Response(content_type="application/x-protobuf")


@pytest.fixture
async def receiver() -> AsyncIterator[OtlpReceiver]:
    collector = OtlpReceiver()
    app = web.Application()
    app.router.add_post("/v1/traces", collector.traces)
    app.router.add_post("/v1/metrics", collector.ignore)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", OTLP_PORT).start()
    yield collector
    await runner.cleanup()


async def test_one_trace_chains_the_client_ingress_router_executor_and_egress(
        platform: Platform, http: aiohttp.ClientSession, receiver: OtlpReceiver) -> None:
    client = DirectLineClient(platform.url, http)
    await client.open("acme", "support", "webchat")
    trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
    async with http.post(
            f"{platform.url}/v3/directline/conversations/{client.conversation}/activities",
            json={"type": "message", "text": "trace me", "from": {"id": "u1"}},
            headers={"Authorization": f"Bearer {client.token}",
                     "traceparent": f"00-{trace_id}-{client_span}-01"}) as response:
        message_id = (await response.json())["id"]
    assert await client.replies_to(message_id, wait_s=20)
    wanted = {"greentic-ingress", "greentic-router", "greentic-executor", "greentic-egress"}
    deadline = time.monotonic() + 20
    while {s["service"] for s in receiver.spans if s["trace_id"] == trace_id} != wanted:
        assert time.monotonic() < deadline, json.dumps(receiver.spans, indent=1)
        await asyncio.sleep(0.1)
    spans = {s["span_id"]: s for s in receiver.spans if s["trace_id"] == trace_id}

    def first(service: str, prefix: str) -> dict:
        return next(s for s in spans.values()
                    if s["service"] == service and s["name"].startswith(prefix))

    def ancestors(item: dict) -> list[str]:
        chain = []
        while item["parent"] in spans:
            item = spans[item["parent"]]
            chain.append(item["service"])
        return chain

    http_span = first("greentic-ingress", "POST")
    assert http_span["parent"] == client_span
    assert ancestors(first("greentic-router", "ingress process")) == ["greentic-ingress"]
    assert ancestors(first("greentic-executor", "routed process"))[:2] == [
        "greentic-router", "greentic-ingress"]
    assert any(s["name"] == "node answer" for s in spans.values())
    assert ancestors(first("greentic-egress", "egress process"))[-3:] == [
        "greentic-executor", "greentic-router", "greentic-ingress"]


async def test_metrics_count_the_conversation_on_every_service(
        platform: Platform, http: aiohttp.ClientSession, receiver: OtlpReceiver) -> None:
    client = DirectLineClient(platform.url, http)
    await client.open("acme", "support", "webchat")
    assert await client.replies_to(await client.post("count me"), wait_s=20)
    expected = {
        "ingress": ("greentic_messages_in_total",
                    {"channel": "webchat", "provider": "webchat", "tenant": "acme"}),
        "router": ("greentic_messages_total", {"outcome": "handled", "stage": "ingress"}),
        "executor": ("greentic_flow_duration_seconds_count", {"flow": "echo", "tenant": "acme"}),
        "egress": ("greentic_messages_out_total",
                   {"channel": "webchat", "provider": "webchat", "tenant": "acme"}),
    }
    for service, (name, labels) in expected.items():
        async with http.get(f"http://127.0.0.1:{platform.health_ports[service]}/metrics") as r:
            assert r.status == 200 and r.content_type == "text/plain"
            samples = [s for family in text_string_to_metric_families(await r.text())
                       for s in family.samples if s.name == name]
        matching = [s.value for s in samples if labels.items() <= s.labels.items()]
        assert matching and matching[0] >= 1, (service, name, samples)
    async with http.get(f"http://127.0.0.1:{platform.health_ports['executor']}/metrics") as r:
        assert 'greentic_consumer_lag{consumer="executor-0"' in await r.text()
