"""`greentic pack deploy` and version pinning through the running platform: a conversation
paused in v1 finishes on v1 (its flow and its component bytes) while new conversations get v2;
a tampered v3 is refused naming the entry and v2 keeps answering; a restarted pack-loader still
serves the deployed v2."""

import asyncio
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import nats
import pytest
from nacl.signing import SigningKey

from greentic.bus.topology import FLOWS_BUCKET, PACK_VERSIONS_BUCKET, SESSIONS_BUCKET
from greentic.component.build import build
from greentic.pack.archive import build_pack, sign_pack
from greentic.pack.index import decode_flow_document, flow_key
from greentic.pack.keys import format_public_key
from greentic.providers.webchat.client import DirectLineClient
from tests.guests import BUILD_CACHE, EXAMPLES
from tests.integration.platform import Platform, make_platform
from tests.integration.registry import Registry
from tests.integration.test_message_path import collect_replies, open_client
from tests.unit.pack_fixtures import rezip

KEY = SigningKey.generate()

# v1 asks, pauses, then calls component `shout` on the answer and thanks
ASK_FLOW = """\
id: ask
type: messaging
schema_version: 2
start: question
nodes:
  question:
    session.wait: {text: "WORD: your name?"}
    routing: [{to: shout}]
  shout:
    component.exec: {component: shout, input: "{{in.input.text}}"}
    routing: [{status: ok, to: answer}, {status: error, to: sorry}]
  answer:
    templating.handlebars: {text: "WORD thanks {{prev.text}}"}
    routing: reply
  sorry:
    templating.handlebars: {text: "WORD failed: {{prev.error.message}}"}
    routing: reply
"""


def lowercasing_tiny(out: Path) -> Path:
    """The tiny WAT guest changed to lower-case its input instead of upper-casing it."""
    source = out / "tiny-lower"
    shutil.copytree(EXAMPLES / "tiny", source)
    wat = source / "tiny.wat"
    wat.write_text(wat.read_text()
                   .replace("(i32.const 97)", "(i32.const 65)")
                   .replace("(i32.const 122)", "(i32.const 90)")
                   .replace("(i32.sub (local.get $c) (i32.const 32))",
                            "(i32.add (local.get $c) (i32.const 32))"))
    return build(source, out / "tiny-lower.wasm", BUILD_CACHE)


def signed_pack(root: Path, word: str, version: str, component: Path) -> bytes:
    """Pack `shop`: flow `ask` saying `word`, component `shout` = `component`'s bytes."""
    source = root / "source" / word
    (source / "flows").mkdir(parents=True)
    shutil.copyfile(component, source / "shout.wasm")
    (source / "pack.yaml").write_text(
        f"pack_id: shop\nversion: {version}\npublisher: tests\n"
        "flows: [{id: ask, file: flows/ask.ygtc}]\n"
        "components: [{id: shout, version: 0.1.0, world: seed, wasm: shout.wasm}]\n")
    (source / "flows" / "ask.ygtc").write_text(ASK_FLOW.replace("WORD", word))
    return sign_pack(build_pack(source), KEY)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    root = Path(tmp_path_factory.mktemp("deploy"))
    upper = build(EXAMPLES / "tiny", root / "tiny.wasm", BUILD_CACHE)
    lower = lowercasing_tiny(root)
    (root / "packs").mkdir()
    (root / "packs" / "shop.gtpack").write_bytes(signed_pack(root, "v1", "1.0.1", upper))
    (root / "releases").mkdir()
    (root / "releases" / "shop-v2.gtpack").write_bytes(signed_pack(root, "v2", "1.0.2", lower))

    def tamper(entries: dict[str, bytes]) -> None:
        entries["flows/ask/flow.ygtc"] = entries["flows/ask/flow.ygtc"].replace(b"v3", b"v9")

    (root / "releases" / "shop-v3.gtpack").write_bytes(
        rezip(signed_pack(root, "v3", "1.0.3", upper), tamper))
    running = make_platform(
        root, {"shop": {"provider": "webchat", "flow": "shop/ask",
                        "config": {"anonymous": True}}},
        {"shop": "packs/shop.gtpack"},
        GREENTIC_TRUSTED_KEYS=format_public_key(KEY.verify_key),
        GREENTIC_COMPONENT_CACHE_DIR=str(root / "compiled"))
    yield running
    running.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def deploy(platform: Platform, *args: str) -> subprocess.CompletedProcess:
    """`greentic pack deploy ARGS` as a user runs it, against the platform's NATS."""
    return subprocess.run(
        [sys.executable, "-m", "greentic", "pack", "deploy", *args, "--nats", platform.nats_url],
        capture_output=True, text=True, timeout=60, cwd=platform.root,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})


def push(release: Path, locator: str) -> subprocess.CompletedProcess:
    """`greentic pack push RELEASE LOCATOR` as a user runs it."""
    return subprocess.run([sys.executable, "-m", "greentic", "pack", "push", str(release),
                           locator], capture_output=True, text=True, timeout=60)


async def say(client: DirectLineClient, text: str) -> str:
    await client.post(text)
    [reply] = await collect_replies(client, 1)
    return reply.text


async def new_conversation_asking(platform: Platform, http: aiohttp.ClientSession,
                                  question: str) -> DirectLineClient:
    """A new conversation once its first answer is `question` (the executor may take a moment
    to see a newly published version): each try is a fresh conversation."""
    deadline = time.monotonic() + 15
    while True:
        client = await open_client(platform, http, channel="shop")
        answer = await say(client, "hi")
        if answer == question:
            return client
        assert time.monotonic() < deadline, f"still answering {answer!r}"
        await asyncio.sleep(0.1)


class KvReads:
    """Counts the KV reads (JetStream direct gets) executors send, per bucket."""

    def __init__(self, platform: Platform) -> None:
        self.url = platform.nats_url
        self.counts: dict[str, int] = {}

    async def __aenter__(self) -> "KvReads":
        self._nc = await nats.connect(self.url)
        for bucket in (SESSIONS_BUCKET, PACK_VERSIONS_BUCKET):
            await self._nc.subscribe(f"$JS.API.DIRECT.GET.KV_{bucket}.>", cb=self._count(bucket))
            await self._nc.subscribe(f"$JS.API.STREAM.MSG.GET.KV_{bucket}",
                                     cb=self._count(bucket))
        await self._nc.flush()
        return self

    def _count(self, bucket: str):
        async def count(_msg) -> None:
            self.counts[bucket] = self.counts.get(bucket, 0) + 1
        return count

    async def __aexit__(self, *_exc) -> None:
        await self._nc.flush()
        await self._nc.close()


async def test_paused_conversations_finish_on_their_version_and_deploys_are_verified(
        platform: Platform, http: aiohttp.ClientSession) -> None:
    # conversations A and A2 pause in v1
    a = await open_client(platform, http, channel="shop")
    assert await say(a, "hi") == "v1: your name?"
    a2 = await open_client(platform, http, channel="shop")
    assert await say(a2, "hi") == "v1: your name?"

    release = platform.root / "releases" / "shop-v2.gtpack"
    digest = f"sha256:{hashlib.sha256(release.read_bytes()).hexdigest()}"
    deployed = deploy(platform, "shop", "releases/shop-v2.gtpack", "--digest", digest)
    assert deployed.returncode == 0, deployed.stderr
    assert "deployed shop 1.0.2 (revision " in deployed.stdout
    assert "flow       ask" in deployed.stdout and "component  shout sha256:" in deployed.stdout

    # a new conversation B runs v2, flow and component (lower-cases)
    b = await new_conversation_asking(platform, http, "v2: your name?")
    async with KvReads(platform) as current:
        assert await say(b, "Ada") == "v2 thanks ada"
    # A, paused in v1, finishes on v1: v1's text and v1's component bytes (upper-cases)
    async with KvReads(platform) as pinned:
        assert await say(a, "Ada") == "v1 thanks ADA"
    # and then starts over on v2
    assert await say(a, "hi again") == "v2: your name?"
    health = platform.health("executor")
    assert health["pinned_turns"] == 1 and health["pinned_revision_loads"] == 1
    assert current.counts.get(PACK_VERSIONS_BUCKET, 0) == 0  # current version: no extra read
    assert pinned.counts.get(PACK_VERSIONS_BUCKET, 0) == 1  # the old version, once
    # the same session reads either way (none: the owning executor remembers what it wrote)
    assert current.counts.get(SESSIONS_BUCKET, 0) == pinned.counts.get(SESSIONS_BUCKET, 0)
    warm_ms = health["pinned_revision_last_load_ms"]

    # a restarted executor still finishes A2 on v1: the revision comes from KV, the component
    # bytes from the object store
    platform.kill("executor")
    platform.start("executor")
    assert await say(a2, "Cy") == "v1 thanks CY"
    health = platform.health("executor")
    assert health["pinned_turns"] == 1 and health["pinned_revision_loads"] == 1
    print(f"\nKV reads per turn on the current version: {current.counts}; on a pinned one: "
          f"{pinned.counts}; old revision loaded in {warm_ms} ms (its component already "
          f"loaded), {health['pinned_revision_last_load_ms']} ms after an executor restart")

    # a tampered v3 is refused naming the entry; v2 keeps answering
    refused = deploy(platform, "shop", "releases/shop-v3.gtpack")
    assert refused.returncode == 1
    assert "flows/ask/flow.ygtc" in refused.stderr and "SBOM" in refused.stderr, refused.stderr
    c = await open_client(platform, http, channel="shop")
    assert await say(c, "hi") == "v2: your name?"
    # a pack the bundle does not have is refused with the reason
    unknown = deploy(platform, "billing", "releases/shop-v2.gtpack")
    assert unknown.returncode == 1 and "not in the bundle" in unknown.stderr

    # a restarted pack-loader serves the deployed v2, not the bundle's v1
    platform.kill("pack-loader")
    platform.start("pack-loader")
    assert "deployment restored" in platform.log("pack-loader")
    nc = await nats.connect(platform.nats_url)
    try:
        flows = await nc.jetstream().key_value(FLOWS_BUCKET)
        entry = await flows.get(flow_key("dev", "acme", "shop", "ask"))
        assert decode_flow_document(entry.value or b"").pack_version == "1.0.2"
    finally:
        await nc.close()
    d = await open_client(platform, http, channel="shop")
    assert await say(d, "hi") == "v2: your name?"
    assert await say(d, "Bo") == "v2 thanks bo"


async def test_a_pack_pushed_to_a_registry_is_deployed_by_its_oci_locator(
        platform: Platform, http: aiohttp.ClientSession, registry: Registry) -> None:
    # E pauses in whatever version serves now (v1, or v2 after the test above)
    e = await open_client(platform, http, channel="shop")
    question = await say(e, "hi")
    paused_in = question.split(":")[0]
    assert paused_in in ("v1", "v2"), question

    release = platform.root / "releases" / "shop-v4.gtpack"
    release.write_bytes(signed_pack(platform.root, "v4", "1.0.4",
                                    build(EXAMPLES / "tiny", platform.root / "up.wasm",
                                          BUILD_CACHE)))
    locator = registry.locator("deploy/shop", "1.0.4")
    pushed = push(release, locator)
    assert pushed.returncode == 0, pushed.stderr
    layer = next(line.split()[1] for line in pushed.stdout.splitlines()
                 if line.startswith("layer"))

    deployed = deploy(platform, "shop", locator, "--digest", layer)
    assert deployed.returncode == 0, deployed.stderr
    assert "deployed shop 1.0.4 (revision " in deployed.stdout and locator in deployed.stdout
    f = await new_conversation_asking(platform, http, "v4: your name?")
    assert await say(f, "Fay") == "v4 thanks FAY"
    # E finishes on the version it paused in, with that version's component
    expected = "Eve".upper() if paused_in == "v1" else "Eve".lower()
    assert await say(e, "Eve") == f"{paused_in} thanks {expected}"

    # a wrong pin is refused and v4 keeps answering
    wrong = deploy(platform, "shop", locator, "--digest", "sha256:" + "0" * 64)
    assert wrong.returncode == 1 and "sha256:" in wrong.stderr
    # a restarted pack-loader pulls the deployed locator again and serves v4
    platform.kill("pack-loader")
    platform.start("pack-loader")
    g = await new_conversation_asking(platform, http, "v4: your name?")
    assert await say(g, "Gil") == "v4 thanks GIL"
