"""A channel the services have no code for: a signed-webhook provider component from a pack,
deployed with `greentic pack deploy`, through the running platform (real nats-server, the five
services, the real component). A signed webhook reaches the flow, the reply leaves as the
request the component renders, to a local double that checks its exact bytes; a bad signature
is refused before anything is published."""

import asyncio
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from nacl.signing import SigningKey

from greentic.component.build import build
from greentic.component.engine import ComponentEngine
from greentic.hosting.launcher import free_port
from greentic.pack.archive import build_pack, sign_pack
from greentic.pack.keys import format_public_key
from tests.guests import BUILD_CACHE, COMPILE_CACHE
from tests.integration.platform import Platform, make_platform
from tests.integration.test_channels import ingress_count

ROOT = Path(__file__).parents[2]
PROVIDER = ROOT / "examples" / "providers" / "signed-webhook"
HOSTILE = ROOT / "examples" / "providers" / "hostile"
HOSTILE_MODES = ("trap", "loop", "huge", "bad-json")
SECRET = "hooks-signing-secret"
KEY = SigningKey.generate()
FLOW = """\
id: main
type: messaging
nodes:
  answer:
    templating.handlebars:
      text: "hooks heard: {{in.input.text}}"
      buttons: [Yes, No]
    routing: reply
"""


def hooks_pack(root: Path, wasm: Path | None, hostile: Path | None = None) -> Path:
    """Pack `hooks`: flow `main`, and (with `wasm`) provider components `signed-webhook` and
    `hostile` (which misbehaves as its channel's config says)."""
    source = root / ("hooks-provider" if wasm else "hooks-empty")
    (source / "flows").mkdir(parents=True)
    (source / "flows" / "main.ygtc").write_text(FLOW)
    component = ""
    if wasm is not None and hostile is not None:
        (source / "provider.wasm").write_bytes(wasm.read_bytes())
        (source / "hostile.wasm").write_bytes(hostile.read_bytes())
        component = ("components:\n- {id: signed-webhook, version: 0.1.0, world: provider, "
                     "wasm: provider.wasm, capabilities: {host: [secrets], secrets: "
                     "[signing_secret], http_hosts: [127.0.0.1]}}\n"
                     "- {id: hostile, version: 0.1.0, world: provider, wasm: hostile.wasm, "
                     "capabilities: {host: [secrets], limits: {timeout_ms: 300}}}\n")
    (source / "pack.yaml").write_text("pack_id: hooks\nversion: 0.1.0\nkind: provider\n"
                                      "flows: [{id: main, file: flows/main.ygtc}]\n" + component)
    return source


class Double:
    """The channel's far end: records each request, answers 200 {"id": …}."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.arrived = asyncio.Event()
        self.port = free_port()

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path, dict(request.headers),
                              await request.read()))
        self.arrived.set()
        return web.json_response({"id": f"far-{len(self.requests)}"})

    async def __aenter__(self) -> "Double":
        app = web.Application()
        app.router.add_post("/reply", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.runner.cleanup()


@pytest.fixture(scope="module")
def double_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, double_port: int) -> Iterator[Platform]:
    root = Path(tmp_path_factory.mktemp("providers"))
    wasm = build(PROVIDER, root / "signed-webhook.wasm", BUILD_CACHE)
    hostile = build(HOSTILE, root / "hostile.wasm", BUILD_CACHE)
    engine = ComponentEngine.shared(COMPILE_CACHE)  # compiled once for the three services
    for built in (wasm, hostile):
        engine.compile(built.stem, built.read_bytes())
    (root / "releases").mkdir()
    (root / "releases" / "hooks.gtpack").write_bytes(
        sign_pack(build_pack(hooks_pack(root, wasm, hostile)), KEY))
    channels = {mode: {"provider": "hooks/hostile", "flow": "hooks/main",
                       "config": {"mode": mode}} for mode in HOSTILE_MODES}
    running = make_platform(
        root, {"hooks": {"provider": "hooks/signed-webhook", "flow": "hooks/main",
                         "config": {"signing_secret": SECRET,
                                    "reply_url": f"http://127.0.0.1:{double_port}/reply"}},
               **{f"chaos-{mode}": channel for mode, channel in channels.items()}},
        {"hooks": str(hooks_pack(root, None))},
        GREENTIC_TRUSTED_KEYS=format_public_key(KEY.verify_key),
        GREENTIC_COMPONENT_CACHE_DIR=str(COMPILE_CACHE))
    deployed = subprocess.run(
        [sys.executable, "-m", "greentic", "pack", "deploy", "hooks", "releases/hooks.gtpack",
         "--nats", running.nats_url], capture_output=True, text=True, timeout=60,
        cwd=root, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    yield running
    running.stop()


def sign(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


async def post(platform: Platform, http: aiohttp.ClientSession, body: bytes,
               signature: str | None, channel: str = "hooks") -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Signature"] = signature
    async with http.post(f"http://127.0.0.1:{platform.http_port}/webhooks/acme/support/"
                         f"{channel}", data=body, headers=headers) as answer:
        return answer.status, await answer.text()


async def test_a_signed_webhook_reaches_the_flow_and_the_reply_leaves_as_rendered(
        platform: Platform, http: aiohttp.ClientSession, double_port: int) -> None:
    double = Double()
    double.port = double_port
    async with double:
        body = json.dumps({"event_id": "ev-1", "conversation": "room-7", "user": "ada",
                           "text": "hello"}).encode()
        deadline = time.monotonic() + 60
        while True:  # the deploy's provider component reaches ingress within moments
            status, text = await post(platform, http, body, sign(body))
            if status == 200 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert status == 200, text
        await asyncio.wait_for(double.arrived.wait(), 20)
        [(method, path, headers, sent)] = double.requests
        assert (method, path) == ("POST", "/reply")
        reply = json.loads(sent)
        assert reply["conversation"] == "room-7" and reply["text"] == "hooks heard: hello"
        assert reply["buttons"] == [{"title": "Yes", "value": "Yes"},
                                    {"title": "No", "value": "No"}]
        assert sent == json.dumps(reply, sort_keys=True, separators=(",", ":")).encode()
        assert headers["Content-Type"] == "application/json"
        assert headers["X-Signature"] == sign(sent)
        # the same delivery again (a provider retry) is published once: no second reply
        assert (await post(platform, http, body, sign(body)))[0] == 200
        await asyncio.sleep(1.5)
        assert len(double.requests) == 1


async def test_a_bad_signature_is_refused_before_anything_is_published(
        platform: Platform, http: aiohttp.ClientSession) -> None:
    body = json.dumps({"event_id": "ev-2", "conversation": "room-7", "user": "eve",
                       "text": "let me in"}).encode()
    before = await ingress_count(platform)
    for signature in (None, "sha256=" + "0" * 64, sign(body + b" ")):
        status, text = await post(platform, http, body, signature)
        assert status == 401, text
    garbage = b"not json at all"
    assert (await post(platform, http, garbage, sign(garbage)))[0] == 400
    assert await ingress_count(platform) == before


async def test_a_misbehaving_provider_gets_its_webhook_a_502_and_the_others_keep_serving(
        platform: Platform, http: aiohttp.ClientSession, double_port: int) -> None:
    body = b'{"text": "anything"}'
    deadline = time.monotonic() + 60
    while (await post(platform, http, body, None, channel="chaos-trap"))[0] == 503:
        assert time.monotonic() < deadline, "the hostile provider never loaded"
        await asyncio.sleep(0.2)  # the deploy's components reach ingress within moments
    platform_failures = sum(platform.health("ingress").get("provider_component_failures",
                                                           {}).values())
    before = await ingress_count(platform)
    for mode in HOSTILE_MODES:
        started = time.monotonic()
        status, text = await post(platform, http, body, None, channel=f"chaos-{mode}")
        assert status == 502, (mode, status, text)
        assert "'hooks/hostile' failed" in text, text
        assert time.monotonic() - started < 5, mode  # its 300 ms deadline, not a stall
    assert await ingress_count(platform) == before
    failures = platform.health("ingress").get("provider_component_failures", {})
    assert sum(failures.values()) == platform_failures + len(HOSTILE_MODES), failures
    double = Double()
    double.port = double_port
    async with double:  # meanwhile the signed-webhook channel still answers
        hello = json.dumps({"event_id": "ev-9", "conversation": "room-9", "user": "bo",
                            "text": "still there?"}).encode()
        assert (await post(platform, http, hello, sign(hello)))[0] == 200
        await asyncio.wait_for(double.arrived.wait(), 20)
        assert json.loads(double.requests[0][3])["text"] == "hooks heard: still there?"


def test_the_services_hold_no_code_for_the_channel() -> None:
    for path in [*(ROOT / "shared" / "greentic" / "services").glob("*.py"),
                 *(ROOT / "shared" / "greentic" / "providers").rglob("*.py")]:
        source = path.read_text()
        assert "X-Signature" not in source and "signed-webhook" not in source, path
