"""A steady load through the platform, and the figures of how it came through a fault.

Telegram is the provider: `TelegramDouble` plays Telegram's servers. It POSTs each chat's
updates to ingress's webhook one after another (the next only after the previous got a 2xx;
a non-2xx or a dropped connection is retried with a bounded back-off, as Telegram does), and
it records the bot's `sendMessage` calls. A call counts as delivered when the double answers
it: a call whose sender went away before the answer (a killed egress) was never processed.

The flow runs a component (the `tiny` WAT guest, upper-casing) and writes the session every
turn, replying `turn <n>: C<chat> M<i>`; so the replies show order, duplicates and whether
each turn was counted exactly once.
"""

import asyncio
import bisect
import datetime
import itertools
import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp
import nats
import telegram
from aiohttp import web

from greentic.bus.subjects import conversation_token
from greentic.bus.topology import DEADLETTER_STREAM
from greentic.config.settings import load_settings
from greentic.runner.stores import open_stores
from greentic.session import SessionKey
from greentic.types.tenant import TenantCtx
from tests.integration.platform import Platform

ROOT = Path(__file__).parents[2]
FIGURES_FILE = ROOT / ".greentic" / "test-artifacts" / "reliability.json"
CTX = TenantCtx("dev", "acme", "support")
CHANNEL = "telegram"
SECRET, TOKEN = "tg-load-secret", "777:LOAD"
LOAD_FLOW = """\
id: load
type: messaging
schema_version: 2
start: shout
nodes:
  shout:
    component.exec: {component: tiny, input: "{{in.input.text}}"}
    routing: [{status: ok, to: answer}]
  answer:
    templating.handlebars: {text: "turn {{session.turn}}: {{prev.text}}"}
    routing: reply
"""
REPLY = re.compile(r"turn (\d+): C(\d+) M(\d+)")
_runs = itertools.count(int(time.time()) % 100_000 * 10)


def write_load_pack(directory: Path, tiny_wasm: Path) -> None:
    """A pack with the load flow and the `tiny` component."""
    (directory / "flows").mkdir(parents=True, exist_ok=True)
    (directory / "components").mkdir(exist_ok=True)
    shutil.copyfile(tiny_wasm, directory / "components" / "tiny.wasm")
    (directory / "flows" / "load.ygtc").write_text(LOAD_FLOW)
    (directory / "pack.yaml").write_text(
        "pack_id: load-pack\nversion: 0.1.0\nflows:\n  - id: load\n    file: flows/load.ygtc\n"
        "components:\n  - {id: tiny, world: seed, wasm: components/tiny.wasm}\n")


def load_channel(double_port: int) -> dict:
    """The bundle entry of the Telegram channel bound to the load flow. Egress's send pacing
    (Telegram's 25/s by default) is off: the double has no rate limit, and pacing above the
    rate would spend delivery attempts."""
    return {CHANNEL: {"provider": "telegram", "flow": "load-pack/load", "config": {
        "secret_token": SECRET, "bot_token": TOKEN, "send_rate_per_s": 0,
        "api_base": f"http://127.0.0.1:{double_port}/telegram"}}}


@dataclass
class TelegramDouble:
    """Telegram's servers: sends updates to the webhook and takes the bot's sendMessage."""

    port: int
    replies: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    """chat id → (monotonic time, text) of every delivered sendMessage, in delivery order."""
    webhook_retries: int = 0
    posting: int = 0
    """Webhook POSTs waiting for their answer right now."""
    held: list[web.Request] = field(default_factory=list)
    """sendMessage calls waiting while the double is slow."""
    last_answer: float = 0.0
    failing_until: float = 0.0
    _flowing: asyncio.Event = field(default_factory=asyncio.Event)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        self._flowing.set()
        app = web.Application()
        app.router.add_post(f"/telegram/bot{TOKEN}/sendMessage", self._send_message)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        self._flowing.set()
        await self._runner.cleanup()

    def slow_down(self) -> None:
        """Hold every sendMessage until `speed_up()`."""
        self._flowing.clear()

    def speed_up(self) -> None:
        self._flowing.set()

    def held_open(self) -> int:
        """Held calls whose sender is still connected."""
        return sum(1 for r in self.held if r.transport is not None
                   and not r.transport.is_closing())

    def fail_for(self, seconds: float) -> None:
        """Answer sendMessage with 500 for `seconds`."""
        self.failing_until = time.monotonic() + seconds

    async def _send_message(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.held.append(request)
        try:
            await self._flowing.wait()
        finally:
            self.held.remove(request)
        if time.monotonic() < self.failing_until:
            return web.json_response({"ok": False, "error_code": 500,
                                      "description": "Internal Server Error"}, status=500)
        if request.transport is None or request.transport.is_closing():
            raise ConnectionResetError("the bot went away before the answer")
        self.last_answer = time.monotonic()
        self.replies.setdefault(str(body["chat_id"]), []).append((self.last_answer,
                                                                  body["text"]))
        self._arrived.set()
        return web.json_response({"ok": True, "result": {"message_id": 1}})

    def delivered(self) -> int:
        return sum(len(texts) for texts in self.replies.values())

    async def wait_delivered(self, count: int, within_s: float) -> bool:
        """Until `count` replies were delivered (False when `within_s` ran out first)."""
        try:
            async with asyncio.timeout(within_s):
                while self.delivered() < count:
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            return False
        return True

    async def post_update(self, http: aiohttp.ClientSession, url: str, update: bytes) -> None:
        """Deliver one update like Telegram: until a 2xx, backing off 0.1 s … 2 s."""
        delay = 0.1
        while True:
            self.posting += 1
            try:
                async with http.post(url, data=update, timeout=aiohttp.ClientTimeout(total=10),
                                     headers={"X-Telegram-Bot-Api-Secret-Token": SECRET,
                                              "Content-Type": "application/json"}) as response:
                    if 200 <= response.status < 300:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            finally:
                self.posting -= 1
            self.webhook_retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


def telegram_update(update_id: int, chat_id: int, text: str) -> bytes:
    update = telegram.Update(update_id=update_id, message=telegram.Message(
        message_id=update_id, date=datetime.datetime.now(datetime.UTC),
        chat=telegram.Chat(id=chat_id, type="private"), text=text,
        from_user=telegram.User(id=chat_id, first_name="Load", is_bot=False)))
    return update.to_json().encode()


@dataclass
class Load:
    """`conversations` chats sending `messages` each, interleaved at `rate` messages/s."""

    platform: Platform
    double: TelegramDouble
    conversations: int
    messages: int
    rate: float
    run: int = field(default_factory=lambda: next(_runs))
    sent_at: float = 0.0
    """When the last update was accepted (monotonic)."""

    @property
    def total(self) -> int:
        return self.conversations * self.messages

    def chat_id(self, n: int) -> int:
        return self.run * 10_000 + n

    def expected(self, n: int) -> list[str]:
        return [f"turn {i + 1}: C{n} M{i}" for i in range(self.messages)]

    async def send(self) -> None:
        """Post every update at its time (a chat's next waits for the previous one's 2xx)."""
        url = f"{self.platform.url}/webhooks/{CTX.tenant}/{CTX.team}/{CHANNEL}"
        started = time.monotonic()

        async def chat(http: aiohttp.ClientSession, n: int) -> None:
            for i in range(self.messages):
                due = started + (i * self.conversations + n) / self.rate
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                update_id = self.chat_id(n) * 1000 + i
                await self.double.post_update(http, url, telegram_update(
                    update_id, self.chat_id(n), f"c{n} m{i}"))

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as http:
            await asyncio.gather(*(chat(http, n) for n in range(self.conversations)))
        self.sent_at = time.monotonic()

    def delivered_so_far(self) -> int:
        return sum(len(self.double.replies.get(str(self.chat_id(n)), []))
                   for n in range(self.conversations))

    async def wait_until_delivered(self, fraction: float, within_s: float = 120) -> bool:
        """Until `fraction` of all replies were delivered (False if `within_s` ran out)."""
        return await wait_until(lambda: self.delivered_so_far() >= fraction * self.total,
                                within_s)


async def wait_until(condition: Callable[[], bool], within_s: float) -> bool:
    """Poll `condition` (cheap, in-process) until true; False if `within_s` ran out."""
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@dataclass
class Figures:
    """How one run under one fault came through (a row of docs/reliability.md)."""

    fault: str
    conversations: int
    messages: int
    answered: int
    lost: int
    duplicated: int
    reordered: int
    wrong_turns: int
    """Replies or sessions whose turn counter is not the message's position."""
    dead_letters: int
    recovery_s: float
    """From the fault until replies arrive at half the rate of the 3 s before it again."""
    max_gap_s: float
    """The longest silence at the provider after the fault."""
    duration_s: float
    webhook_retries: int
    handover_s: float | None = None
    """Executor faults: from the fault until every routed partition has a live owner again."""

    def problems(self) -> dict[str, int]:
        """The figures that must be zero."""
        return {name: value for name, value in (
            ("lost", self.lost), ("duplicated", self.duplicated), ("reordered", self.reordered),
            ("wrong_turns", self.wrong_turns), ("dead_letters", self.dead_letters)) if value}


def score(load: Load, fault: str, fault_at: float, started: float, dead_letters: int,
          session_turns: list[int | None]) -> Figures:
    """Compare what the provider received with what each chat sent."""
    answered = lost = duplicated = reordered = wrong_turns = 0
    times: list[float] = []
    for n in range(load.conversations):
        got = load.double.replies.get(str(load.chat_id(n)), [])
        times += [at for at, _ in got]
        texts = [text for _, text in got]
        expected = load.expected(n)
        answered += len(set(texts) & set(expected))
        lost += len(set(expected) - set(texts))
        duplicated += len(texts) - len(set(texts))
        firsts = list(dict.fromkeys(texts))
        positions = [int(m.group(3)) for m in map(REPLY.fullmatch, firsts) if m]
        reordered += positions != sorted(positions)
        wrong_turns += sum(1 for text in set(texts) if text not in expected)
        wrong_turns += session_turns[n] != load.messages
    times.sort()
    after = [t for t in times if t >= fault_at]
    longest = max((b - a for a, b in itertools.pairwise([fault_at, *after])), default=0.0)
    return Figures(fault=fault, conversations=load.conversations, messages=load.total,
                   answered=answered, lost=lost, duplicated=duplicated, reordered=reordered,
                   wrong_turns=wrong_turns, dead_letters=dead_letters,
                   recovery_s=round(recovery(times, fault_at, load.sent_at), 2),
                   max_gap_s=round(longest, 2),
                   duration_s=round((times[-1] if times else started) - started, 2),
                   webhook_retries=load.double.webhook_retries)


def misdelivered(load: Load) -> dict[int, list[str]]:
    """The chats whose replies are not exactly the expected ones, with what they got."""
    found = {n: [text for _, text in load.double.replies.get(str(load.chat_id(n)), [])]
             for n in range(load.conversations)}
    return {n: texts for n, texts in found.items() if texts != load.expected(n)}


def recovery(times: list[float], fault_at: float, until: float, window_s: float = 1.0) -> float:
    """Seconds from the fault until the reply rate over `window_s` is back, for good while the
    load runs (up to `until`), to half of what it was in the 3 s before the fault (`times`
    sorted)."""
    before = bisect.bisect_left(times, fault_at) - bisect.bisect_left(times, fault_at - 3)
    wanted = max(1, before / 3 * window_s / 2)
    recovered, degraded = fault_at, False
    for i in range(bisect.bisect_left(times, fault_at), bisect.bisect_right(times, until)):
        if i - bisect.bisect_right(times, times[i] - window_s) + 1 < wanted:
            degraded = True
        elif degraded:
            recovered, degraded = times[i], False
    return (until if degraded else recovered) - fault_at


async def session_turns(platform: Platform, channel: str,
                        conversations: list[str]) -> list[int | None]:
    """The turn counter of each conversation's session (None: no session)."""
    nc = await nats.connect(platform.nats_servers)
    stores = await open_stores(load_settings(platform.env), nc.jetstream(), ensure=False)
    try:
        found = [await stores.sessions.get(SessionKey(CTX, channel, conversation_token(c)))
                 for c in conversations]
        return [session.turns if session else None for session, _ in
                (f or (None, 0) for f in found)]
    finally:
        await stores.close()
        await nc.close()


async def dead_letter_count(platform: Platform) -> int:
    nc = await nats.connect(platform.nats_servers)
    try:
        return (await nc.jetstream().stream_info(DEADLETTER_STREAM)).state.messages
    finally:
        await nc.close()


def record_figures(figures: Figures, mode: str) -> None:
    """Append a row to the figures file that docs/reliability.md is rendered from."""
    FIGURES_FILE.parent.mkdir(parents=True, exist_ok=True)
    rows = json.loads(FIGURES_FILE.read_text()) if FIGURES_FILE.exists() else []
    rows.append({**asdict(figures), "mode": mode,
                 "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")})
    FIGURES_FILE.write_text(json.dumps(rows, indent=1) + "\n")
