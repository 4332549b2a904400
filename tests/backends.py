"""Real backends for tests: a nats-server from the wheel and a Redis 7 (never skipped)."""

import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import redis

from greentic.hosting.launcher import free_port, start_nats, stop_processes

HOW_TO_GET_REDIS = (
    "These tests need a real Redis. Either set GREENTIC_TEST_REDIS_URL=redis://host:port/db, "
    "run one on 127.0.0.1:6379, or install the `redis-server` binary (Debian: apt-get install "
    "redis-server) so the tests can start their own.")


def _answers(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


class RedisServer:
    """A Redis URL for this test run; a `redis-server` of our own when none is given/running."""

    def __init__(self, env_url: str | None) -> None:
        self.process: subprocess.Popen | None = None
        self.prefix = f"gt-{uuid.uuid4().hex[:8]}"
        """Distinct key prefix per test run, so parallel runs on one Redis never collide."""
        if env_url:
            if not _answers(env_url):
                raise RuntimeError(f"GREENTIC_TEST_REDIS_URL={env_url!r} does not answer PING. "
                                   + HOW_TO_GET_REDIS)
            self.url = env_url
            return
        if _answers("redis://127.0.0.1:6379/0"):
            self.url = "redis://127.0.0.1:6379/0"
            return
        binary = shutil.which("redis-server") or (
            "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
        if binary is None:
            raise RuntimeError("no Redis found. " + HOW_TO_GET_REDIS)
        port = free_port()
        self._dir = tempfile.mkdtemp(prefix="greentic-redis-")
        self.process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self._dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + 15
        while not _answers(self.url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server {binary} did not start. " + HOW_TO_GET_REDIS)
            time.sleep(0.05)

    def stop(self) -> None:
        client = redis.Redis.from_url(self.url)
        try:
            keys = list(client.scan_iter(match=f"{self.prefix}*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
        if self.process is not None:
            stop_processes([self.process], timeout=5)
            shutil.rmtree(self._dir, ignore_errors=True)


class NatsServer:
    """A JetStream nats-server on a free port with its data in a temp dir."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="greentic-nats-"))
        self.port = free_port()
        self.process = start_nats(self._dir / "data", self.port, self._dir / "nats.log")
        self.url = f"nats://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_processes([self.process], timeout=10)
        shutil.rmtree(self._dir, ignore_errors=True)
