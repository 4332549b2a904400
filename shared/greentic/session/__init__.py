"""Conversation sessions: one contract, three backends (JetStream KV, Redis, memory)."""

from greentic.session.model import (
    Session,
    SessionKey,
    decode_session,
    encode_session,
    parse_session_key,
)
from greentic.session.records import MemoryRecords, Records
from greentic.session.store import RecordSessionStore, SessionStore

__all__ = ["MemoryRecords", "RecordSessionStore", "Records", "Session", "SessionKey",
           "SessionStore", "decode_session", "encode_session", "parse_session_key"]
