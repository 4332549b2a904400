"""A real OCI registry for tests: Debian's `docker-registry` (CNCF distribution) on loopback."""

import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from greentic.hosting.launcher import free_port, stop_processes

BINARY = "docker-registry"
CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog: {{disabled: true}}
storage:
  filesystem: {{rootdirectory: {root}}}
  delete: {{enabled: true}}
http:
  addr: 127.0.0.1:{port}
"""


@dataclass
class Registry:
    host: str
    """`127.0.0.1:<port>`"""
    root: Path
    """Its filesystem storage."""
    process: subprocess.Popen

    def locator(self, repository: str, tag: str) -> str:
        return f"oci://{self.host}/{repository}:{tag}"

    def blob_file(self, digest: str) -> Path:
        """Where the registry keeps blob `digest` on disk (distribution's filesystem layout)."""
        hexdigest = digest.removeprefix("sha256:")
        return self.root / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"


def start_registry(directory: Path, *, auth: str = "", timeout: float = 20) -> Registry:
    """`docker-registry serve` with filesystem storage in `directory`, once `/v2/` answers
    (200, or 401 when `auth`, an `auth:` config section, asks for credentials)."""
    binary = shutil.which(BINARY) or (f"/usr/bin/{BINARY}"
                                      if Path(f"/usr/bin/{BINARY}").exists() else None)
    if binary is None:
        pytest.fail(f"{BINARY} is not installed: run `apt-get install docker-registry` "
                    "(or `make test`, which installs it)", pytrace=False)
    port = free_port()
    (directory / "storage").mkdir(parents=True)
    config = directory / "config.yml"
    config.write_text(CONFIG.format(root=directory / "storage", port=port) + auth)
    log = (directory / "registry.log").open("ab")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    registry = Registry(host=f"127.0.0.1:{port}", root=directory / "storage", process=process)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://{registry.host}/v2/", timeout=1) as response:
                if response.status == 200:
                    return registry
        except urllib.error.HTTPError as exc:
            if exc.code == 401 and auth:
                return registry
        except (urllib.error.URLError, OSError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_processes([process], timeout=5)
            raise RuntimeError(f"{BINARY} did not answer on {registry.host}/v2/:\n"
                               f"{(directory / 'registry.log').read_text()[-2000:]}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    running = start_registry(Path(tmp_path_factory.mktemp("registry")))
    yield running
    stop_processes([running.process], timeout=10)
