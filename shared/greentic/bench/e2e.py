"""`greentic bench e2e`: WebChat conversations through the five services, and in the same run
a baseline of the same shape — client → stream → relay → stream → relay → stream → relay →
stream → client, each relay its own process doing no work — so our figures read as ratios of
what nats-py can do on this machine at all."""

import asyncio
import json
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import nats
from nats.js.api import StorageType, StreamConfig

from greentic.bench.procstat import cpu_seconds, rss_mib
from greentic.cli.processes import SERVICES, free_port, is_ready, start_service, stop_processes

PAYLOAD_BYTES = 600
BENCH_FLOW = """\
id: bench
type: messaging
start: answer
nodes:
  answer:
    templating.handlebars:
      text: "turn {{session.turn}}: {{input.text}}"
    routing: reply
"""


@dataclass
class Result:
    """One measured run: how many messages, how long, and each message's latency."""

    name: str
    messages: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    processes: dict[str, tuple[float, float]] = field(default_factory=dict)
    """process → (CPU seconds used during the run, RSS MiB at the end)."""

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
def write_bench_bundle(root: Path) -> Path:
    (root / "pack" / "flows").mkdir(parents=True, exist_ok=True)
    (root / "pack" / "pack.yaml").write_text("pack_id: bench\nversion: 0.1.0\nflows:\n"
                                             "  - {id: bench, file: flows/bench.ygtc}\n")
    (root / "pack" / "flows" / "bench.ygtc").write_text(BENCH_FLOW)
    bundle = root / "bundle.yaml"
    bundle.write_text(json.dumps({"packs": {"bench": {"path": "pack"}}, "tenants": {"bench": {
        "packs": ["bench"], "teams": {"load": {"channels": {"webchat": {
            "provider": "webchat", "flow": "bench/bench", "config": {"anonymous": True}}}}}}}}))
    return bundle


def start_platform(root: Path, url: str, executors: int, http_port: int
                   ) -> dict[str, subprocess.Popen]:
    env = {"GREENTIC_NATS_URL": url, "GREENTIC_BUNDLE": str(write_bench_bundle(root)),
           "GREENTIC_HTTP_PORT": str(http_port), "GREENTIC_LOG_LEVEL": "warning",
           "GREENTIC_WEBCHAT_TOKEN_KEY": secrets.token_hex(16),
           "GREENTIC_EXECUTOR_REPLICAS": str(executors)}
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
    while not all(is_ready(port) for port in ports.values()):
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes.values()):
            stop_processes(list(processes.values()), 10)
            raise RuntimeError(f"the platform did not start; see {root}/logs")
        time.sleep(0.1)
    return processes


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


async def run_platform(base: str, conversations: int, per_conversation: int,
                       rate: float | None, processes: dict[str, subprocess.Popen]) -> Result:
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
        started = time.perf_counter()
        if rate is None:  # as fast as possible, each conversation in order
            async def converse(user: _Conversation) -> None:
                for i in range(per_conversation):
                    await user.post(f"message {i}")

            await asyncio.gather(*(converse(user) for user in users))
        else:
            await _paced(total, rate, lambda i: users[i % conversations].post(f"message {i}"))
        await asyncio.wait_for(done.wait(), 300)
        for user in users:
            await user.close()
    latencies = [(arrived[i] - sent[i]) * 1000 for i in arrived if i in sent]
    return Result("greentic (5 services)", total, max(arrived.values()) - started, latencies,
                  _measure_processes(processes, before))


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="greentic-bench-"))
