"""The numbers behind `greentic bench providers`: one Telegram webhook in and one reply out,
through the built-in channel and through the same channel as a provider component
(`examples/providers/telegram`), in the same run and process. Ingress is the channel's whole
webhook handling (verify, parse, the events); egress is the whole send to a local Telegram
double over loopback HTTP (render, POST, classify the answer)."""

import json
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from greentic.component.build import NoSecrets, build
from greentic.component.engine import ComponentEngine
from greentic.component.host import ComponentHost, LoadedComponent
from greentic.hosting.components import ComponentRegistry
from greentic.hosting.launcher import free_port
from greentic.providers.channel import ChannelInstance
from greentic.providers.components import ComponentProviders, ComponentSender, ComponentWebhook
from greentic.providers.telegram import TelegramSender, TelegramWebhook
from greentic.state.store import MemoryStateStore
from greentic.types.component import ComponentCapabilities, ComponentManifest
from greentic.types.envelope import Button, Envelope
from greentic.types.tenant import TenantCtx

TELEGRAM_EXAMPLE = Path(__file__).parents[3] / "examples" / "providers" / "telegram"
CTX = TenantCtx("dev", "bench", "bench")
UPDATE = {"update_id": 1001, "message": {"message_id": 7, "date": 1700000000,
                                         "chat": {"id": 4242, "type": "private"},
                                         "from": {"id": 99, "first_name": "Ada"},
                                         "text": "hello from the bench"}}


class _Only(ComponentRegistry):
    """A registry holding one loaded component for every channel (no KV index to follow)."""

    def __init__(self, host: ComponentHost, loaded: LoadedComponent) -> None:
        super().__init__(host)
        self.only = loaded

    def get(self, ctx: TenantCtx, pack: str, component: str) -> LoadedComponent | None:
        return self.only


async def _timed(call: Callable[[], Awaitable[Any]], count: int) -> list[float]:
    await call()  # warm: first compile, connection
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples


def _row(name: str, samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    return {"name": name, "p50_us": statistics.median(ordered) * 1e6,
            "p99_us": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6}


async def _double(port: int) -> web.AppRunner:
    async def send_message(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "result": {"message_id": 1}})

    app = web.Application()
    app.router.add_post("/bot{token}/sendMessage", send_message)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def measure(calls: int, work_dir: Path) -> list[dict[str, Any]]:
    """[built-in ingress, component ingress, built-in egress, component egress] rows."""
    engine = ComponentEngine.shared(work_dir / "compiled")
    wasm = build(TELEGRAM_EXAMPLE, work_dir / "telegram-provider.wasm", work_dir / "builds")
    host = ComponentHost(engine, MemoryStateStore(), NoSecrets(), threads=1)
    port = free_port()
    channel = ChannelInstance(CTX, "tg", "bench/telegram", {
        "secret_token": "bench-secret", "bot_token": "123:bench",
        "api_base": f"http://127.0.0.1:{port}"})
    loaded = host.load(ComponentManifest(
        id="telegram", world="provider", capabilities=ComponentCapabilities(
            host=["secrets"], secrets=["secret_token", "bot_token"],
            http_hosts=["127.0.0.1"])), wasm.read_bytes())
    providers = ComponentProviders(_Only(host, loaded), {("bench", "bench", "tg"): channel})
    body = json.dumps(UPDATE).encode()
    headers = {"X-Telegram-Bot-Api-Secret-Token": "bench-secret",
               "Content-Type": "application/json"}
    request = make_mocked_request("POST", "/webhooks/bench/bench/tg", headers=headers)
    reply = Envelope(id="r1", ctx=CTX, channel="tg", provider="telegram", conversation="4242",
                     text="hello back", buttons=[Button("Yes", "yes"), Button("No", "no")])
    double = await _double(port)
    try:
        async with aiohttp.ClientSession() as http:
            built_in, component = TelegramWebhook(), ComponentWebhook(providers, http)
            rows = [
                _row("ingress: built-in Telegram", await _timed(
                    lambda: built_in.receive(request, body, channel), calls)),
                _row("ingress: Telegram provider component", await _timed(
                    lambda: component.receive(request, body, channel), calls)),
                _row("egress: built-in Telegram (loopback POST)", await _timed(
                    lambda: TelegramSender(http).send(reply, channel), calls)),
                _row("egress: Telegram provider component (loopback POST)", await _timed(
                    lambda: ComponentSender(providers, http).send(reply, channel), calls))]
    finally:
        await double.cleanup()
        host.close()
    return rows
