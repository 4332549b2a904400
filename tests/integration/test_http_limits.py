"""Every HTTP server (public ingress, admin API, health) refuses oversized bodies and headers
and cuts off a client that trickles its body, and keeps serving afterwards."""

import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.integration.inprocess import InProcessIngress
from tests.integration.platform import BUNDLE

TOKEN = "limits-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def ingress(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessIngress]:
    running = InProcessIngress(Path(tmp_path_factory.mktemp("limits")), BUNDLE, env={
        "GREENTIC_ADMIN_TOKENS": TOKEN, "GREENTIC_HTTP_BODY_TIMEOUT_S": "1",
        "GREENTIC_MAX_BODY_BYTES": "65536"}).start()
    yield running
    running.stop()


def targets(ingress: InProcessIngress) -> dict[str, tuple[str, dict[str, str], int]]:
    """server → (URL of an endpoint taking a POST, headers it needs, body limit)."""
    return {
        "public": (ingress.url + "/webhooks/acme/support/webchat", {}, 65536),
        "admin": (ingress.admin_url + "/admin/packs/deploy", AUTH, 65536),
        "health": (ingress.health_url + "/healthz", {}, 1024),
    }


SERVERS = ["public", "admin", "health"]


@pytest.mark.parametrize("server", SERVERS)
async def test_a_body_over_the_limit_is_refused_with_413(
        ingress: InProcessIngress, http: aiohttp.ClientSession, server: str) -> None:
    url, headers, limit = targets(ingress)[server]
    async with http.post(url, data=b"{" + b" " * limit + b"}", headers=headers) as response:
        assert response.status == 413
        assert "error" in await response.json()
    async with http.get(ingress.health_url + "/healthz") as response:
        assert response.status == 200, "still serving"


@pytest.mark.parametrize("server", SERVERS)
async def test_an_oversized_header_is_refused_with_400(
        ingress: InProcessIngress, http: aiohttp.ClientSession, server: str) -> None:
    url, headers, _ = targets(ingress)[server]
    async with http.post(url, data=b"{}", headers={**headers, "X-Big": "a" * 9000}) as response:
        assert response.status == 400


def raw_request(url: str, head: bytes, first_body_bytes: bytes, wait_s: float = 15) -> bytes:
    """Send a request head and the first bytes of a longer body, then nothing more; return
    whatever the server sends back until it closes the connection (or `wait_s` passes)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=wait_s) as sock:
        sock.sendall(head + first_body_bytes)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            pytest.fail(f"the server held a trickled request for {wait_s} s: {received!r}")
        return received


@pytest.mark.parametrize("server", SERVERS)
def test_a_trickled_body_is_cut_off_with_408_and_a_closed_connection(
        ingress: InProcessIngress, server: str) -> None:
    url, headers, _ = targets(ingress)[server]
    path = urlsplit(url).path
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: 500\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
    answer = raw_request(url, head, b'{"partial": ')
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"did not arrive within 1 s" in answer
