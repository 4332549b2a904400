"""`greentic bench e2e`: WebChat conversations through the five services, and in the same run
a baseline of the same shape — client → stream → relay → stream → relay → stream → relay →
stream → client, each relay its own process doing no work — so our figures read as ratios of
what nats-py can do on this machine at all."""

import asyncio
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import nats
from nats.js.api import StorageType, StreamConfig

from greentic.bench.procstat import cpu_seconds, rss_mib
from greentic.bus.topology import DEFAULT_PARTITIONS, HOPS
from greentic.component.build import build
from greentic.hosting.launcher import SERVICES, free_port, is_ready, start_service, stop_processes

PAYLOAD_BYTES = 600
# each turn: one component call, then a reply naming the session's turn (a session write)
BENCH_FLOW = """\
id: bench
type: messaging
start: work
nodes:
  work:
    component.exec:
      component: work
      input: "{{input.text}}"
    routing: [{status: ok, to: answer}, {status: error, to: failed}]
  answer:
    templating.handlebars:
      text: "turn {{session.turn}}: {{prev.text}}"
    routing: reply
  failed:
    templating.handlebars:
      text: "error {{prev.error.code}}: {{prev.error.message}}"
    routing: reply
"""
# The `work` component (seed world): spins `iterations` times inside wasm (a stand-in for a
# component doing real work, 0 = none), then answers with the text uppercased.
WORK_WIT = "package bench:work;\n\nworld work {\n  include greentic:component/component;\n}\n"
WORK_WAT = """\
(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32)
        (param $size i32) (result i32)
    (local $at i32)
    (local.set $at (i32.and (i32.add (global.get $heap)
                                     (i32.sub (local.get $align) (i32.const 1)))
                            (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $at) (local.get $size)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (if (i32.eq (memory.grow (i32.add (i32.shr_u (global.get $heap) (i32.const 16))
                                              (i32.const 1)))
                        (i32.const -1))
              (then unreachable))))
    (local.get $at))
  (func (export "execute") (param $id i32) (param $id_len i32) (param $content i32)
        (param $content_len i32) (param $sender i32) (param $sender_len i32) (param $ts i64)
        (result i32)
    (local $i i32)
    (local $c i32)
    (local $spin i32)
    (local.set $spin (i32.const {iterations}))
    (block $spun
      (loop $again
        (br_if $spun (i32.eqz (local.get $spin)))
        (local.set $spin (i32.sub (local.get $spin) (i32.const 1)))
        (br $again)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $content_len)))
        (local.set $c (i32.load8_u (i32.add (local.get $content) (local.get $i))))
        (if (i32.and (i32.ge_u (local.get $c) (i32.const 97))
                     (i32.le_u (local.get $c) (i32.const 122)))
          (then (i32.store8 (i32.add (local.get $content) (local.get $i))
                            (i32.sub (local.get $c) (i32.const 32)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.store8 (i32.const 64) (i32.const 1))
    (i32.store8 (i32.const 68) (i32.const 1))
    (i32.store (i32.const 72) (local.get $content))
    (i32.store (i32.const 76) (local.get $content_len))
    (i32.store8 (i32.const 80) (i32.const 0))
    (i32.const 64))
  (func (export "cabi_post_execute") (param i32)
    (global.set $heap (i32.const 1024)))
)
"""
BUILD_CACHE = Path(".greentic/cache/builds")


@dataclass
class Result:
    """One measured run: how many messages, how long, and each message's latency."""

    name: str
    messages: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    processes: dict[str, tuple[float, float]] = field(default_factory=dict)
    """process → (CPU seconds used during the run, RSS MiB at the end)."""
    lag_max: int | None = None
    """Most messages waiting in the hops' consumers (pending + unacked) seen during the run."""
    rss: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    """process → (seconds into the run, RSS MiB) samples, when asked for."""

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _measure_processes(processes: dict[str, subprocess.Popen], before: dict[str, float]
                       ) -> dict[str, tuple[float, float]]:
    return {name: (cpu_seconds(p.pid) - before[name], rss_mib(p.pid))
            for name, p in processes.items()}


async def _paced(count: int, rate: float | None, send) -> None:
    """Call `send(i)` for i < count, all at once (rate None) or at `rate` per second."""
    if rate is None:
        await asyncio.gather(*(send(i) for i in range(count)))
        return
    started = time.perf_counter()
    tasks = []
    for i in range(count):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(i)))
    await asyncio.gather(*tasks)


# --- the baseline ---------------------------------------------------------------------
async def create_baseline_streams(url: str) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    for hop in range(4):
        config = StreamConfig(name=f"BENCH_{hop}", subjects=[f"bench.{hop}"],
                              storage=StorageType.FILE, duplicate_window=120)
        try:
            await js.delete_stream(config.name)
        except nats.js.errors.NotFoundError:
            pass
        await js.add_stream(config)
    await nc.close()


def start_relays(url: str) -> dict[str, subprocess.Popen]:
    return {f"relay-{hop}": subprocess.Popen(
        [sys.executable, "-m", "greentic.bench.relay", url, f"BENCH_{hop}", f"bench.{hop}",
         f"bench.{hop + 1}"], stdin=subprocess.DEVNULL) for hop in range(3)}


async def run_baseline(url: str, messages: int, rate: float | None,
                       relays: dict[str, subprocess.Popen]) -> Result:
    nc = await nats.connect(url)
    js = nc.jetstream()
    latencies: list[float] = []
    done = asyncio.Event()
    last = [0.0]

    async def arrived(msg: nats.aio.msg.Msg) -> None:
        now = time.perf_counter()
        latencies.append((now - json.loads(msg.data)["t"]) * 1000)
        last[0] = now
        if len(latencies) >= messages:
            done.set()

    await nc.subscribe("bench.3", cb=arrived)
    pad = "x" * (PAYLOAD_BYTES - 60)
    before = {name: cpu_seconds(p.pid) for name, p in relays.items()}
    started = time.perf_counter()

    async def send(i: int) -> None:
        body = json.dumps({"id": i, "t": time.perf_counter(), "pad": pad}).encode()
        await js.publish("bench.0", body, headers={"Nats-Msg-Id": f"b{started}-{i}"})

    await _paced(messages, rate, send)
    await asyncio.wait_for(done.wait(), 120)
    await nc.close()
    return Result("baseline (4 streams, 3 relays)", messages, last[0] - started, latencies,
                  _measure_processes(relays, before))


# --- the platform -------------------------------------------------------------------
def build_work_component(root: Path, iterations: int) -> Path:
    """The bench's `work` component, built from WAT (cached by source like every guest)."""
    source = root / "work-guest"
    (source / "wit").mkdir(parents=True, exist_ok=True)
    (source / "wit" / "world.wit").write_text(WORK_WIT)
    (source / "work.wat").write_text(WORK_WAT.replace("{iterations}", str(iterations)))
    return build(source, root / "work.wasm", BUILD_CACHE)


def write_bench_bundle(root: Path, spin: int = 0) -> Path:
    """A dev pack (the bench flow + the `work` component) bound to one WebChat channel."""
    pack = root / "pack"
    (pack / "flows").mkdir(parents=True, exist_ok=True)
    (pack / "components").mkdir(exist_ok=True)
    shutil.copyfile(build_work_component(root, spin), pack / "components" / "work.wasm")
    (pack / "pack.yaml").write_text(json.dumps({
        "pack_id": "bench", "version": "0.1.0",
        "flows": [{"id": "bench", "file": "flows/bench.ygtc"}],
        "components": [{"id": "work", "world": "seed", "wasm": "components/work.wasm",
                        "capabilities": {"limits": {"timeout_ms": 10_000,
                                                    "fuel": 50_000_000_000}}}]}))
    (pack / "flows" / "bench.ygtc").write_text(BENCH_FLOW)
    bundle = root / "bundle.yaml"
    bundle.write_text(json.dumps({"packs": {"bench": {"path": "pack"}}, "tenants": {"bench": {
        "packs": ["bench"], "teams": {"load": {"channels": {"webchat": {
            "provider": "webchat", "flow": "bench/bench", "config": {"anonymous": True}}}}}}}}))
    return bundle


def start_platform(root: Path, url: str, executors: int, http_port: int, *, spin: int = 0,
                   wasm_threads: int | None = None) -> dict[str, subprocess.Popen]:
    """The five services on the bench bundle; `wasm_threads` caps each executor's wasm threads
    (1 makes one executor use one core for components, for the scaling run)."""
    env = {"GREENTIC_NATS_URL": url, "GREENTIC_BUNDLE": str(write_bench_bundle(root, spin)),
           "GREENTIC_HTTP_PORT": str(http_port), "GREENTIC_LOG_LEVEL": "warning",
           "GREENTIC_WEBCHAT_TOKEN_KEY": secrets.token_hex(16),
           "GREENTIC_EXECUTOR_REPLICAS": str(executors),
           "GREENTIC_COMPONENT_CACHE_DIR": str(Path(".greentic/cache/components").resolve())}
    if wasm_threads is not None:  # the scaling run: CPU-bound executors share the work
        env["GREENTIC_WASM_THREADS"] = str(wasm_threads)
        # a replica holding more than it can run hoards conversations: their next messages,
        # fetched by the other replica, wait for them (64 in flight: 1.61x, 2 per thread: 1.82x)
        env["GREENTIC_EXECUTOR_MAX_IN_FLIGHT"] = str(2 * wasm_threads)
    (root / "logs").mkdir(exist_ok=True)
    processes, ports = {}, {}
    names = [s for s in SERVICES if s != "executor"] + \
        [f"executor-{n}" for n in range(executors)]
    for name in names:
        ports[name] = free_port()
        processes[name] = start_service(name.split("-")[0] if name.startswith("executor")
                                        else name, {**env, "GREENTIC_HEALTH_PORT":
                                                    str(ports[name])},
                                        root / "logs" / f"{name}.log")
    deadline = time.monotonic() + 60
    executor_ports = [ports[name] for name in names if name.startswith("executor")]
    while not (all(is_ready(port) for port in ports.values())
               and partitions_settled(executor_ports)):
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes.values()):
            stop_processes(list(processes.values()), 10)
            raise RuntimeError(f"the platform did not start; see {root}/logs")
        time.sleep(0.1)
    return processes


def partitions_settled(health_ports: list[int]) -> bool:
    """Whether the executors own every routed partition once, each some (the steady state a
    run measures; right after start they are still handing partitions to each other)."""
    shares = []
    for port in health_ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                shares.append(json.loads(r.read()).get("partitions") or [])
        except OSError:
            return False
    every = sorted(p for share in shares for p in share)
    return all(shares) and len(every) == len(set(every)) == DEFAULT_PARTITIONS


class _Conversation:
    """One WebChat user: a Direct Line conversation with its WebSocket stream."""

    def __init__(self, http: aiohttp.ClientSession, base: str,
                 sent: dict[str, float]) -> None:
        self.http, self.base = http, base
        self.sent = sent

    async def open(self, on_reply) -> None:
        async with self.http.post(f"{self.base}/webchat/api/token", json={
                "tenant": "bench", "team": "load", "channel": "webchat"}) as response:
            token = (await response.json())["token"]
        async with self.http.post(f"{self.base}/v3/directline/conversations",
                                  headers={"Authorization": f"Bearer {token}"}) as response:
            started = await response.json()
        self.token, self.id = started["token"], started["conversationId"]
        self.ws = await self.http.ws_connect(started["streamUrl"])
        self.reader = asyncio.create_task(self._read(on_reply))

    async def _read(self, on_reply) -> None:
        async for frame in self.ws:
            for activity in json.loads(frame.data).get("activities", []):
                if activity.get("from", {}).get("role") == "bot":
                    on_reply(activity.get("replyToId") or "")

    async def post(self, text: str) -> None:
        started = time.perf_counter()
        async with self.http.post(
                f"{self.base}/v3/directline/conversations/{self.id}/activities",
                json={"type": "message", "text": text, "from": {"id": "load"}},
                headers={"Authorization": f"Bearer {self.token}"}) as response:
            self.sent[(await response.json())["id"]] = started

    async def close(self) -> None:
        self.reader.cancel()
        await self.ws.close()


async def watch_lag(url: str, highest: list[int], every_s: float = 0.25) -> None:
    """Keep `highest[0]` at the most messages the hops' consumers held at once, until
    cancelled."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    try:
        while True:
            lag = 0
            for hop in HOPS.values():  # the routed hop has a consumer per partition
                for info in await js.consumers_info(hop.stream):
                    lag += (info.num_pending or 0) + (info.num_ack_pending or 0)
            highest[0] = max(highest[0], lag)
            await asyncio.sleep(every_s)
    finally:
        await nc.close()


async def sample_rss(processes: dict[str, subprocess.Popen], every_s: float,
                     samples: dict[str, list[tuple[float, float]]]) -> None:
    """Append each process's RSS to `samples` every `every_s` seconds, until cancelled."""
    started = time.perf_counter()
    while True:
        now = time.perf_counter() - started
        for name, process in processes.items():
            samples.setdefault(name, []).append((now, rss_mib(process.pid)))
        await asyncio.sleep(every_s)


async def run_platform(base: str, conversations: int, per_conversation: int,
                       rate: float | None, processes: dict[str, subprocess.Popen],
                       nats_url: str | None = None, rss_every_s: float | None = None) -> Result:
    """Drive the conversations (in order each, all at once; or `rate` messages/s spread over
    them) and measure send → reply latency; with `nats_url`, the consumer lag as well; with
    `rss_every_s`, each process's memory over time."""
    total = conversations * per_conversation
    sent: dict[str, float] = {}
    arrived: dict[str, float] = {}  # a reply may beat the POST's own answer: match at the end
    done = asyncio.Event()

    def on_reply(reply_to: str) -> None:
        arrived.setdefault(reply_to, time.perf_counter())
        if len(arrived) >= total:
            done.set()

    connector = aiohttp.TCPConnector(limit=conversations * 2)
    async with aiohttp.ClientSession(connector=connector) as http:
        users = [_Conversation(http, base, sent) for _ in range(conversations)]
        for user in users:
            await user.open(on_reply)
        before = {name: cpu_seconds(p.pid) for name, p in processes.items()}
        lag = [0]
        rss: dict[str, list[tuple[float, float]]] = {}
        watchers = ([asyncio.create_task(watch_lag(nats_url, lag))] if nats_url else []) + \
            ([asyncio.create_task(sample_rss(processes, rss_every_s, rss))] if rss_every_s
             else [])
        started = time.perf_counter()
        if rate is None:  # as fast as possible, each conversation in order
            async def converse(user: _Conversation) -> None:
                for i in range(per_conversation):
                    await user.post(f"message {i}")

            await asyncio.gather(*(converse(user) for user in users))
        else:
            await _paced(total, rate, lambda i: users[i % conversations].post(f"message {i}"))
        try:
            await asyncio.wait_for(done.wait(), 600)
        finally:
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
        for user in users:
            await user.close()
    latencies = [(arrived[i] - sent[i]) * 1000 for i in arrived if i in sent]
    return Result("greentic (5 services)", total, max(arrived.values()) - started, latencies,
                  _measure_processes(processes, before), lag[0] if nats_url else None, rss)


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="greentic-bench-"))
