"""The sessions an executor wrote, kept for the next turns of the conversations it owns."""

from collections import OrderedDict

from greentic.session.model import Session, SessionKey


class SessionCache:
    """Least recently used first out, at most `size` sessions; the store stays the truth (a
    session served from here is written back with a compare-and-swap on its revision, which
    fails if anyone else wrote it since)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = 0
        self._entries: OrderedDict[SessionKey, tuple[int, Session, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: SessionKey) -> tuple[Session, int] | None:
        """The session and its revision as this replica last wrote it, or None."""
        found = self._entries.get(key)
        if found is None:
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return found[1], found[2]

    def put(self, key: SessionKey, partition: int, session: Session, revision: int) -> None:
        if self.size == 0:
            return
        self._entries[key] = (partition, session, revision)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def forget(self, key: SessionKey) -> None:
        self._entries.pop(key, None)

    def drop_partition(self, partition: int) -> None:
        """Everything of a partition this replica no longer owns."""
        for key in [k for k, (owner, _, _) in self._entries.items() if owner == partition]:
            del self._entries[key]
