"""A Direct Line client that talks to ingress like a user (used by `greentic send` and tests)."""

import asyncio
import time
import uuid
from dataclasses import dataclass, field

import aiohttp
import msgspec

from greentic.errors import GreenticError
from greentic.providers.webchat.activity import Activity


class DirectLineError(GreenticError):
    """The server answered a Direct Line call with an error."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status


@dataclass
class DirectLineClient:
    """One user in one conversation."""

    base_url: str
    session: aiohttp.ClientSession
    user_id: str = field(default_factory=lambda: f"user-{uuid.uuid4().hex[:8]}")
    token: str = ""
    conversation: str = ""
    watermark: int = 0

    async def _call(self, method: str, path: str, json: object = None) -> dict:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self.session.request(method, self.base_url.rstrip("/") + path, json=json,
                                        headers=headers) as response:
            body = await response.read()
            if response.status >= 300:
                raise DirectLineError(response.status, body.decode(errors="replace"))
            return msgspec.json.decode(body) if body else {}

    async def anonymous_channels(self) -> list[dict[str, str]]:
        return await self._call("GET", "/webchat/api/channels")  # type: ignore[return-value]

    async def open(self, tenant: str, team: str, channel: str, secret: str | None = None) -> str:
        """Get a token (anonymous, or from a channel secret) and start a conversation."""
        if secret:
            self.token = secret
        else:
            granted = await self._call("POST", "/webchat/api/token",
                                       {"tenant": tenant, "team": team, "channel": channel})
            self.token = granted["token"]
        started = await self._call("POST", "/v3/directline/conversations")
        self.token, self.conversation = started["token"], started["conversationId"]
        return self.conversation

    async def post(self, text: str) -> str:
        """Send a message; returns its id once ingress has made it durable."""
        activity = {"type": "message", "text": text, "from": {"id": self.user_id},
                    "channelData": {"clientActivityID": uuid.uuid4().hex}}
        posted = await self._call("POST", f"/v3/directline/conversations/{self.conversation}"
                                  "/activities", activity)
        return posted["id"]

    async def poll(self) -> list[Activity]:
        """Activities since the last poll."""
        body = await self._call("GET", f"/v3/directline/conversations/{self.conversation}"
                                f"/activities?watermark={self.watermark}")
        if body.get("watermark"):
            self.watermark = int(body["watermark"])
        return [msgspec.convert(a, Activity) for a in body.get("activities", [])]

    async def replies_to(self, message_id: str, *, wait_s: float, settle: float = 0.3,
                         expected: int | None = None) -> list[Activity]:
        """Bot activities answering `message_id`: waits up to `wait_s` for the first one, then
        `settle` seconds for more (or until `expected` arrived)."""
        found: list[Activity] = []
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            for activity in await self.poll():
                if activity.reply_to_id == message_id and activity.from_ and \
                        activity.from_.role == "bot":
                    found.append(activity)
            if found and (expected is not None and len(found) >= expected):
                break
            if found:
                deadline = min(deadline, time.monotonic() + settle)
            await asyncio.sleep(0.05)
        return found
