"""One executor process, two tenants: while `burner`'s conversations keep a component that
spins until its 200 ms deadline running on every wasm thread, `calm`'s turns through the same
executor still complete. Latencies (idle vs during the burn) are printed, not asserted."""

import asyncio
import shutil
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import yaml

from greentic.component import ComponentEngine
from greentic.providers.webchat.client import DirectLineClient
from tests.guests import COMPILE_CACHE
from tests.integration.platform import Platform, make_platform
from tests.integration.test_components import flow, wait_for_components

BURNING_CONVERSATIONS = 6
FLOWS = {"spin": flow("spin", {"component.exec": {"component": "spinner", "input": "x"}}),
         "calm": flow("calm", {"component.exec": {"component": "spinner", "input": ""}})}
BUNDLE = {
    "packs": {"spin-pack": {"path": "packs/spin"}},
    "tenants": {
        tenant: {"packs": ["spin-pack"], "teams": {"web": {"channels": {"webchat": {
            "provider": "webchat", "flow": f"spin-pack/{flow_id}",
            "config": {"anonymous": True}}}}}}
        for tenant, flow_id in (("burner", "spin"), ("calm", "calm"))},
}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, guests) -> Iterator[Platform]:
    def write(root: Path) -> None:
        pack = root / "packs" / "spin"
        (pack / "flows").mkdir(parents=True)
        (pack / "components").mkdir()
        shutil.copyfile(guests["spinner"], pack / "components" / "spinner.wasm")
        for name, document in FLOWS.items():
            (pack / "flows" / f"{name}.ygtc").write_text(yaml.safe_dump(document))
        (pack / "pack.yaml").write_text(yaml.safe_dump({
            "pack_id": "spin-pack", "version": "0.1.0", "components": [{
                "id": "spinner", "world": "seed", "wasm": "components/spinner.wasm",
                "capabilities": {"host": ["log", "state"], "limits": {"timeout_ms": 200}}}]}))

    engine = ComponentEngine(COMPILE_CACHE)
    engine.compile("spinner", guests["spinner"].read_bytes())
    engine.close()
    running = make_platform(Path(tmp_path_factory.mktemp("noisy")), bundle=BUNDLE,
                            write_packs=write, GREENTIC_COMPONENT_CACHE_DIR=str(COMPILE_CACHE))
    try:
        wait_for_components(running, count=2, refused=0)
    except BaseException:
        running.stop()
        raise
    yield running
    running.stop()


async def turn(client: DirectLineClient, text: str, wait_s: float = 30) -> tuple[str, float]:
    """Post `text`; the bot's reply to it and the seconds it took."""
    started = time.monotonic()
    sent = await client.post(text)
    deadline = started + wait_s
    while time.monotonic() < deadline:
        reply = next((a.text for a in await client.poll()
                      if a.from_ and a.from_.role == "bot" and a.reply_to_id == sent), None)
        if reply is not None:
            return reply, time.monotonic() - started
        await asyncio.sleep(0.02)
    raise AssertionError(f"no reply to {text!r} within {wait_s} s")


async def calm_turns(platform: Platform, http: aiohttp.ClientSession, count: int
                     ) -> list[float]:
    client = DirectLineClient(platform.url, http)
    await client.open("calm", "web", "webchat")
    latencies = []
    for n in range(count):
        reply, seconds = await turn(client, f"calm {n}")
        assert reply == "ok"
        latencies.append(seconds)
    return latencies


async def test_a_calm_tenants_turns_complete_while_another_burns_its_budget(
        platform: Platform, http: aiohttp.ClientSession) -> None:
    idle = await calm_turns(platform, http, 5)
    stop = asyncio.Event()
    warmed = asyncio.Event()  # the burners have had as many turns as there are burners
    burned: list[str] = []

    async def burn() -> None:
        client = DirectLineClient(platform.url, http)
        await client.open("burner", "web", "webchat")
        n = 0
        while not stop.is_set():
            burned.append((await turn(client, f"burn {n}"))[0])
            if len(burned) >= BURNING_CONVERSATIONS:
                warmed.set()
            n += 1

    burners = [asyncio.create_task(burn()) for _ in range(BURNING_CONVERSATIONS)]
    await asyncio.wait_for(warmed.wait(), 60)
    busy = await calm_turns(platform, http, 5)
    stop.set()
    await asyncio.gather(*burners)
    assert set(burned) == {"error timeout: timeout after 200 ms"}
    print(f"\ncalm turn round trip through the executor, idle: median "
          f"{statistics.median(idle) * 1000:.0f} ms, max {max(idle) * 1000:.0f} ms; while "
          f"{BURNING_CONVERSATIONS} burner conversations spin 200 ms each on 2 wasm threads: "
          f"median {statistics.median(busy) * 1000:.0f} ms, max {max(busy) * 1000:.0f} ms "
          f"({len(burned)} burner turns timed out)")
