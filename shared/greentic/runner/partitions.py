"""Which executor replica owns which routed partition: leases in a JetStream KV bucket.

Every replica announces itself (`member.{id}`) once per round, a third of the lease. A
partition belongs to the live member that rendezvous hashing picks for it, so a replica that
joins or leaves moves only its own share. A replica takes a partition by creating its key
`partition.{n}` (refused while anyone holds it), keeps it by a compare-and-swap on the key's
revision every round, and hands it on by deleting it once its turns are done (`on_lost` has
returned). A replica that stops renewing (killed, frozen, cut off) loses its keys when the
bucket's max_age drops them — and knows first: its own deadline, counted from the moment a
renewal was *sent*, passes before the server's, so `holds()` turns false before anyone else
can take the partition.
"""

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
import socket
import time
from collections.abc import Awaitable, Callable

import nats.errors
import structlog
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

log = structlog.get_logger(__name__)

SAFETY = 0.8
"""A replica trusts its hold for this share of the lease after sending the renewal."""

PartitionHandler = Callable[[int], Awaitable[None]]


def member_id() -> str:
    """This process's name among the replicas: host, pid and a random part (a KV key token)."""
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:40] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


def owner_of(partition: int, members: list[str]) -> str:
    """Rendezvous hashing: the member scoring highest for this partition."""
    return max(members, key=lambda member: hashlib.blake2b(
        f"{member}/{partition}".encode(), digest_size=8).digest())


class PartitionLeases:
    """Takes, renews and hands on this replica's partitions; calls `on_gained(n)` once a
    partition is held and `on_lost(n)` before it is given up (or at once when it was lost)."""

    def __init__(self, kv: KeyValue, partitions: int, lease_s: float,
                 on_gained: PartitionHandler, on_lost: PartitionHandler,
                 member: str | None = None) -> None:
        self.kv = kv
        self.partitions = partitions
        self.lease_s = lease_s
        self.on_gained = on_gained
        self.on_lost = on_lost
        self.member = member or member_id()
        self.round_s = lease_s / 3
        self.revisions: dict[int, int] = {}
        """Partitions held, with the revision of their key."""
        self.deadlines: dict[int, float] = {}
        self.handovers = 0
        self.takeovers = 0
        self._seen: dict[str, float] = {}
        """Other members, by when their announcement was last seen (monotonic)."""
        self._releasing: dict[int, asyncio.Task[None]] = {}
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        """Set when a member came or went or a partition was let go: a round is due now."""
        self._known = asyncio.Event()
        """Set once the bucket's current members were read (before the first round)."""

    def holds(self, partition: int) -> bool:
        """Whether this replica may run turns of `partition` right now (also while handing it
        on: the turns in hand finish before the key is deleted)."""
        return time.monotonic() < self.deadlines.get(partition, 0.0)

    def live_members(self) -> list[str]:
        horizon = time.monotonic() - self.lease_s
        return sorted({self.member, *(m for m, seen in self._seen.items() if seen > horizon)})

    async def run(self) -> None:
        """Rounds until `stop()`: announce, renew, release what moved away, take what is ours.
        On the way out every partition is handed on (after `on_lost`) and the member leaves."""
        watching = asyncio.create_task(self._watch())
        try:
            with contextlib.suppress(TimeoutError):  # take nothing before knowing the others
                await asyncio.wait_for(self._known.wait(), self.round_s)
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    await self._round()
                except (nats.errors.Error, TimeoutError) as exc:
                    log.warning("partition round failed", member=self.member, error=repr(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._woken(), self.round_s)
        finally:
            watching.cancel()
            await asyncio.gather(*self._releasing.values(), return_exceptions=True)
            await asyncio.gather(*(self._release(p) for p in list(self.revisions)),
                                 return_exceptions=True)
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await self.kv.delete(f"member.{self.member}")

    def stop(self) -> None:
        """End `run()` after its current round."""
        self._stopping.set()
        self._wake.set()

    async def _woken(self) -> None:
        await self._wake.wait()

    async def _round(self) -> None:
        await self.kv.put(f"member.{self.member}", b"")
        members = self.live_members()
        for partition in range(self.partitions):
            mine = owner_of(partition, members) == self.member
            if partition in self._releasing:
                if partition in self.revisions:  # handing on: hold it until the turns are done
                    await self._renew(partition)
            elif partition in self.revisions:
                if not await self._renew(partition):
                    self._in_background(partition, self.on_lost(partition))
                elif not mine:
                    self._in_background(partition, self._hand_on(partition))
            elif mine:
                await self._take(partition)

    def _in_background(self, partition: int, work: Awaitable[None]) -> None:
        """Give a partition up without holding up the renewal of the others."""
        async def run() -> None:
            try:
                await work
            except Exception as exc:  # the partition is given up either way
                log.error("giving up a partition failed", partition=partition, error=repr(exc))
            finally:
                self._releasing.pop(partition, None)

        self._releasing[partition] = asyncio.create_task(run())

    async def _take(self, partition: int) -> None:
        sent = time.monotonic()
        try:
            revision = await self.kv.create(f"partition.{partition}", self.member.encode())
        except KeyWrongLastSequenceError:
            return  # still held (its owner hands it on, or its lease runs out)
        self.revisions[partition] = revision
        self.deadlines[partition] = sent + self.lease_s * SAFETY
        self.takeovers += 1
        log.info("partition taken", member=self.member, partition=partition)
        try:
            await self.on_gained(partition)
        except Exception as exc:  # let it go; the next round may take it again
            log.error("taking a partition failed", partition=partition, error=repr(exc))
            await self._release(partition)

    async def _renew(self, partition: int) -> bool:
        sent = time.monotonic()
        try:
            self.revisions[partition] = await self.kv.update(
                f"partition.{partition}", self.member.encode(), last=self.revisions[partition])
        except (KeyWrongLastSequenceError, KeyNotFoundError):
            log.warning("partition lost (lease ran out)", member=self.member,
                        partition=partition)
            self.deadlines.pop(partition, None)
            self.revisions.pop(partition, None)
            return False
        self.deadlines[partition] = sent + self.lease_s * SAFETY
        return True

    async def _hand_on(self, partition: int) -> None:
        """Another live member is this partition's owner now: finish its turns, then let go."""
        await self._release(partition)
        self.handovers += 1

    async def _release(self, partition: int) -> None:
        try:
            await self.on_lost(partition)
        finally:
            revision = self.revisions.pop(partition, None)
            self.deadlines.pop(partition, None)
            if revision is not None:
                with contextlib.suppress(KeyWrongLastSequenceError, nats.errors.Error,
                                         TimeoutError):
                    await self.kv.delete(f"partition.{partition}", last=revision)
                log.info("partition handed on", member=self.member, partition=partition)

    async def _watch(self) -> None:
        """Keep `_seen` current (every announcement of another member, and its leaving), and
        wake the rounds when a member comes or goes or a partition is let go, so a handover
        takes milliseconds rather than a round."""
        while True:
            try:
                watcher = await self.kv.watchall()
                async for entry in watcher:
                    if entry is None:
                        self._known.set()
                        continue
                    gone = entry.operation in (KV_DEL, KV_PURGE)
                    if entry.key.startswith("partition."):
                        if gone:
                            self._wake.set()
                        continue
                    member = entry.key.removeprefix("member.")
                    if member == self.member:
                        continue
                    if gone:
                        self._seen.pop(member, None)
                        self._wake.set()
                    else:
                        if member not in self._seen or time.monotonic() - self._seen[member] \
                                > self.lease_s:
                            self._wake.set()  # a new member (or one back from silence)
                        self._seen[member] = time.monotonic()
            except (nats.errors.Error, TimeoutError) as exc:
                log.warning("lease watch failed; watching again", error=repr(exc))
                await asyncio.sleep(self.round_s)
