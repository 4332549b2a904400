"""Components through the running system: a WebChat message whose flow calls a component built
from source, with nats-server, pack-loader (object store + KV index) and executor as real
processes."""

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import nats
import pytest
import yaml

from greentic.bus.topology import COMPONENT_INDEX_BUCKET, COMPONENTS_OBJECT_STORE
from greentic.component import ComponentEngine
from greentic.component.engine import sha256
from greentic.providers.webchat.client import DirectLineClient
from tests.guests import COMPILE_CACHE
from tests.integration.platform import Platform, make_platform

SHOP_API_KEY = "sk-shop-4321"


def flow(flow_id: str, call: dict, *, ok: str = "{{prev.text}}",
         error: str = "error {{prev.error.code}}: {{prev.error.message}}") -> dict:
    """A flow: one component call, then a reply for `ok` or for `error`."""
    return {"id": flow_id, "type": "messaging", "schema_version": 2, "start": "call",
            "nodes": {
                "call": {**call, "routing": [{"status": "ok", "to": "found"},
                                             {"status": "error", "to": "sorry"}]},
                "found": {"templating.handlebars": {"text": ok}, "routing": "reply"},
                "sorry": {"templating.handlebars": {"text": error}, "routing": "reply"}}}


TEXT = "{{in.input.text}}"
SHOP_FLOWS = {
    "echo": flow("echo", {"component.exec": {"component": "echo", "input": TEXT}}),
    "tiny": flow("tiny", {"component.exec": {"component": "tiny", "input": TEXT}}),
    "hostile": flow("hostile", {"component.exec": {"component": "hostile", "input": TEXT}}),
    "orders": flow("orders", {"component.exec": {"component": "orders", "operation": "lookup",
                                                 "input": {"order": TEXT}}}),
    "peek": flow("peek", {"component.exec": {"component": "orders", "operation": "peek",
                                             "input": {"tenant": TEXT}}}),
    "tools": flow("tools", {"mcp": {"component": "calc", "tool": "add",
                                    "arguments": {"a": TEXT, "b": 1}}}),
    "sneaky": flow("sneaky", {"component.exec": {"component": "sneaky", "operation": "lookup",
                                                 "input": {"order": TEXT}}}),
}
SHOP_COMPONENTS = [
    {"id": "echo", "world": "seed", "wasm": "components/echo.wasm"},
    {"id": "tiny", "world": "seed", "wasm": "components/tiny.wasm"},
    {"id": "hostile", "world": "seed", "wasm": "components/hostile.wasm",
     # fuel beyond the deadline's reach: the loop is stopped by the deadline, not by fuel
     "capabilities": {"limits": {"timeout_ms": 200, "memory_mib": 48, "fuel": 10**12}}},
    {"id": "orders", "world": "node", "wasm": "components/orders.wasm",
     "operations": ["lookup", "peek"],
     "capabilities": {"host": ["state", "secrets"], "secrets": ["api-key"]}},
    {"id": "calc", "world": "mcp", "wasm": "components/calc.wasm"},
    {"id": "sneaky", "world": "node", "wasm": "components/orders.wasm"},  # grants nothing
]
NOSY_FLOW = flow("nosy", {"component.exec": {"component": "orders", "operation": "lookup",
                                             "input": {"order": TEXT}}})


def channels(names) -> dict:
    return {name: {"provider": "webchat", "flow": f"shop-pack/{name}",
                   "config": {"anonymous": True}} for name in names}


BUNDLE = {
    "packs": {"shop-pack": {"path": "packs/shop"}, "nosy-pack": {"path": "packs/nosy"}},
    "tenants": {
        "shop": {"packs": ["shop-pack"], "teams": {"web": {"channels": channels(SHOP_FLOWS)}}},
        "rival": {"packs": ["shop-pack"], "teams": {"web": {"channels": channels(["orders"])}}},
        "nosy": {"packs": ["nosy-pack"], "teams": {"web": {"channels": {"webchat": {
            "provider": "webchat", "flow": "nosy-pack/nosy", "config": {"anonymous": True}}}}}},
    },
}


def write_packs(guests: dict[str, Path]):
    def write(root: Path) -> None:
        shop = root / "packs" / "shop"
        (shop / "flows").mkdir(parents=True)
        (shop / "components").mkdir()
        for name in ("echo", "tiny", "hostile", "orders", "calc"):
            shutil.copyfile(guests[name], shop / "components" / f"{name}.wasm")
        for name, document in SHOP_FLOWS.items():
            (shop / "flows" / f"{name}.ygtc").write_text(yaml.safe_dump(document))
        (shop / "pack.yaml").write_text(yaml.safe_dump(
            {"pack_id": "shop-pack", "version": "0.1.0", "components": SHOP_COMPONENTS}))
        nosy = root / "packs" / "nosy"
        (nosy / "flows").mkdir(parents=True)
        (nosy / "flows" / "nosy.ygtc").write_text(yaml.safe_dump(NOSY_FLOW))
        (nosy / "pack.yaml").write_text("pack_id: nosy-pack\nversion: 0.1.0\n")
    return write


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, guests) -> Iterator[Platform]:
    engine = ComponentEngine(COMPILE_CACHE)  # compile once, ahead of the executors' start
    for path in guests.values():
        engine.compile(path.stem, path.read_bytes())
    engine.close()
    running = make_platform(Path(tmp_path_factory.mktemp("components")), bundle=BUNDLE,
                            write_packs=write_packs(guests),
                            GREENTIC_COMPONENT_CACHE_DIR=str(COMPILE_CACHE),
                            GREENTIC_SECRET__SHOP__API_KEY=SHOP_API_KEY,
                            GREENTIC_SECRET__RIVAL__API_KEY="sk-rival-0007")
    try:
        wait_for_components(running, count=2 * (len(SHOP_COMPONENTS) - 1), refused=2)
    except BaseException:
        running.stop()
        raise
    yield running
    running.stop()


def wait_for_components(platform: Platform, count: int, refused: int,
                        timeout: float = 120) -> None:
    """Until the executor has loaded `count` components (index entries) and refused
    `refused`."""
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{platform.health_ports['executor']}/healthz"
    loaded = 0
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url, timeout=5) as response:
            stats = json.load(response)
        loaded = stats.get("components", 0)
        if loaded >= count and stats.get("component_refusals", 0) >= refused:
            return
        time.sleep(0.2)
    raise TimeoutError(f"executor loaded {loaded}/{count} components:\n"
                       f"{platform.log('executor')[-3000:]}")


async def ask(platform: Platform, http: aiohttp.ClientSession, channel: str, *texts: str,
              tenant: str = "shop", wait_s: float = 20) -> list[str]:
    """Send `texts` one after another on a new conversation; the bot's reply to each."""
    client = DirectLineClient(platform.url, http)
    await client.open(tenant, "web", channel)
    answers = []
    for text in texts:
        sent = await client.post(text)
        deadline = time.monotonic() + wait_s
        reply = None
        while reply is None and time.monotonic() < deadline:
            reply = next((a.text for a in await client.poll()
                          if a.from_ and a.from_.role == "bot" and a.reply_to_id == sent), None)
            if reply is None:
                await asyncio.sleep(0.05)
        assert reply is not None, f"no reply to {text!r} on {channel}"
        answers.append(reply)
    return answers


async def test_component_bytes_are_in_the_object_store_and_indexed_per_tenant(
        platform: Platform, guests) -> None:
    nc = await nats.connect(platform.nats_url)
    js = nc.jetstream()
    try:
        index = await js.key_value(COMPONENT_INDEX_BUCKET)
        keys = set(await index.keys())
        assert "dev.shop.shop-pack.orders" in keys and "dev.rival.shop-pack.orders" in keys
        assert not any(key.startswith("dev.nosy.") for key in keys), \
            "a tenant sees only its packs' components"
        document = json.loads((await index.get("dev.shop.shop-pack.orders")).value)
        assert document["digest"] == sha256(guests["orders"].read_bytes())
        objects = await js.object_store(COMPONENTS_OBJECT_STORE)
        stored = await objects.get(document["digest"])
        assert sha256(stored.data) == document["digest"]
    finally:
        await nc.close()


async def test_seed_world_guests_answer_through_a_flow(platform, http) -> None:
    assert await ask(platform, http, "echo", "hello components") == ["HELLO COMPONENTS"]
    assert await ask(platform, http, "tiny", "tiny too") == ["TINY TOO"]


async def test_the_node_world_guest_remembers_per_conversation_and_uses_its_secret(
        platform, http) -> None:
    first, second = await ask(platform, http, "orders", "A-17", "B-2")
    assert first == "Order A-17 has shipped (checked with key …4321)."
    assert second == "Order B-2 has shipped (checked with key …4321). Last time you asked " \
                     "about A-17."
    assert await ask(platform, http, "orders", "C-3") == [
        "Order C-3 has shipped (checked with key …4321)."], "a new conversation starts empty"
    assert await ask(platform, http, "orders", "R-1", tenant="rival") == [
        "Order R-1 has shipped (checked with key …0007)."], "each tenant gets its own secret"


async def test_reading_another_tenants_state_is_denied(platform, http) -> None:
    [answer] = await ask(platform, http, "peek", "rival")
    assert answer.startswith("error permission-denied: state of tenant 'rival' is not readable")


async def test_a_component_of_a_pack_the_tenant_lacks_is_not_found(platform, http) -> None:
    client = DirectLineClient(platform.url, http)
    await client.open("nosy", "web", "webchat")
    [answer] = await ask(platform, http, "webchat", "A-1", tenant="nosy")
    assert answer == ("error not-found: component 'orders' is not available to tenant 'nosy' "
                      "in pack 'nosy-pack'")


async def test_a_guest_importing_host_interfaces_its_manifest_does_not_declare_is_refused(
        platform, http) -> None:
    [answer] = await ask(platform, http, "sneaky", "A-1")
    assert answer.startswith("error refused: component 'sneaky': imports ")
    assert "greentic:state/state-store@1.0.0" in answer
    assert "its manifest does not declare it (add ['secrets', 'state'] to capabilities.host)" \
        in answer
    assert "refused" in platform.log("executor")


async def test_hostile_guests_become_error_replies_and_the_next_message_is_answered(
        platform, http) -> None:
    answers = await ask(platform, http, "hostile", "loop", "hi", "bomb", "trap", "after")
    assert answers[0] == "error timeout: timeout after 200 ms"
    assert answers[1] == "fine: hi"
    assert answers[2] == "error memory: memory limit 48 MiB exceeded"
    assert answers[3].startswith("error trap: trap: wasm trap: wasm `unreachable`")
    assert answers[3].endswith("RuntimeError: the guest gave up")
    assert answers[4] == "fine: after"


async def test_an_mcp_tool_is_called_from_a_flow(platform, http) -> None:
    assert await ask(platform, http, "tools", "41") == ["42"]


def test_greentic_send_gets_the_node_world_answer(platform: Platform) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "greentic", "send", "--url", platform.url, "--tenant", "shop",
         "--team", "web", "--channel", "orders", "Z-9"],
        capture_output=True, text=True, timeout=60, env={**os.environ}, check=False)
    assert result.returncode == 0, result.stderr
    assert "Order Z-9 has shipped (checked with key …4321)." in result.stdout


async def test_a_changed_component_is_swapped_without_a_restart(platform, http,
                                                                guests) -> None:
    assert await ask(platform, http, "echo", "before") == ["BEFORE"]
    executor = platform.services["executor"]
    target = platform.root / "packs" / "shop" / "components" / "echo.wasm"
    shutil.copyfile(guests["hostile"], target)  # same world, different behaviour
    digest = sha256(target.read_bytes())
    deadline = time.monotonic() + 60
    wanted = f'"key": "dev.shop.shop-pack.echo", "world": "seed", "digest": "{digest[:12]}"'
    while wanted not in platform.log("executor"):
        assert time.monotonic() < deadline, "the new version was never loaded"
        await asyncio.sleep(0.2)
    assert await ask(platform, http, "echo", "after") == ["fine: after"]
    assert executor.poll() is None and platform.services["executor"] is executor
