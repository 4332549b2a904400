"""The SessionStore contract, implemented once over any `Records` backend."""

from typing import Protocol

from greentic.session.model import (
    Session,
    SessionKey,
    decode_session,
    encode_session,
    key_pattern,
    parse_session_key,
)
from greentic.session.records import Records


class SessionStore(Protocol):
    async def get(self, key: SessionKey) -> tuple[Session, int] | None:
        """The session and its revision, or None (never written, deleted or expired)."""

    async def create(self, key: SessionKey, session: Session) -> int:
        """Store a new session; RevisionConflict if one exists. Returns its revision."""

    async def update(self, key: SessionKey, session: Session, revision: int) -> int:
        """Compare-and-swap: RevisionConflict unless `revision` is still the stored one."""

    async def delete(self, key: SessionKey) -> None:
        """Forget a session (operators; the next message starts the flow afresh)."""

    async def list_keys(self, env: str, tenant: str | None = None, team: str | None = None,
                        channel: str | None = None) -> list[SessionKey]:
        """Keys of live sessions, narrowed by any of tenant, team, channel."""

    async def close(self) -> None:
        """Release what the store opened."""


class RecordSessionStore:
    """Sessions as JSON records; every backend's behaviour comes from its `Records`."""

    def __init__(self, records: Records) -> None:
        self.records = records

    async def get(self, key: SessionKey) -> tuple[Session, int] | None:
        found = await self.records.get(key.path())
        if found is None:
            return None
        return decode_session(found[0]), found[1]

    async def create(self, key: SessionKey, session: Session) -> int:
        return await self.records.create(key.path(), encode_session(session))

    async def update(self, key: SessionKey, session: Session, revision: int) -> int:
        return await self.records.update(key.path(), encode_session(session), revision)

    async def delete(self, key: SessionKey) -> None:
        await self.records.delete(key.path())

    async def list_keys(self, env: str, tenant: str | None = None, team: str | None = None,
                        channel: str | None = None) -> list[SessionKey]:
        pattern = key_pattern(env, tenant, team, channel)
        return [parse_session_key(path) for path in await self.records.paths(pattern)]

    async def close(self) -> None:
        await self.records.close()
