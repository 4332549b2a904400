"""Records in Redis: one hash per path {r: revision, v: value}; CAS and TTL in Lua scripts.

Revisions come from one counter per prefix, so they never repeat for a path deleted and created
again. The two keys a script touches share no hash tag: use a single Redis (or Sentinel), not
Redis Cluster.
"""

import redis.asyncio as redis
from redis.exceptions import RedisError

from greentic.errors import RevisionConflict, StoreUnavailable
from greentic.session.records import matches

_WRITE = """
local current = redis.call('HGET', KEYS[1], 'r')
if ARGV[3] == 'absent' then
  if current then return 0 end
elseif ARGV[3] ~= 'any' and current ~= ARGV[3] then
  return 0
end
local revision = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'r', revision, 'v', ARGV[1])
if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return revision
"""


class RedisRecords:
    """Records under `{prefix}:{space}:` in one Redis database."""

    def __init__(self, client: redis.Redis, prefix: str, space: str,
                 ttl_s: float | None = None, *, owns_client: bool = False) -> None:
        self.client = client
        self.ttl_ms = int(ttl_s * 1000) if ttl_s else 0
        self._base = f"{prefix}:{space}:"
        self._counter = f"{prefix}:{space}-revision"
        self._write = client.register_script(_WRITE)
        self._owns_client = owns_client

    @classmethod
    async def open(cls, url: str, prefix: str, space: str,
                   ttl_s: float | None) -> "RedisRecords":
        """Connect and check the server answers; StoreUnavailable names GREENTIC_REDIS_URL."""
        client = redis.from_url(url)
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise StoreUnavailable(f"GREENTIC_REDIS_URL={url!r}: Redis does not answer: "
                                   f"{exc}") from None
        return cls(client, prefix, space, ttl_s, owns_client=True)

    async def _write_if(self, path: str, value: bytes, condition: str) -> int:
        revision = await self._write(keys=[self._base + path, self._counter],
                                     args=[value, self.ttl_ms, condition])
        return int(revision)

    async def get(self, path: str) -> tuple[bytes, int] | None:
        revision, value = await self.client.hmget(self._base + path, ["r", "v"])
        if revision is None or value is None:
            return None
        return value, int(revision)

    async def create(self, path: str, value: bytes) -> int:
        revision = await self._write_if(path, value, "absent")
        if not revision:
            raise RevisionConflict(path, 0)
        return revision

    async def update(self, path: str, value: bytes, revision: int) -> int:
        written = await self._write_if(path, value, str(revision))
        if not written:
            raise RevisionConflict(path, revision)
        return written

    async def put(self, path: str, value: bytes) -> int:
        return await self._write_if(path, value, "any")

    async def delete(self, path: str) -> None:
        await self.client.delete(self._base + path)

    async def paths(self, pattern: str) -> list[str]:
        # tokens hold no glob characters ([A-Za-z0-9_-]); `matches` makes `*` stop at dots
        glob = self._base + pattern.replace(">", "*")
        found = set()
        async for raw in self.client.scan_iter(match=glob, count=1000):
            path = raw.decode()[len(self._base):]
            if matches(pattern, path):
                found.add(path)
        return sorted(found)

    async def close(self) -> None:
        if self._owns_client:
            await self.client.aclose()
