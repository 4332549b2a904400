"""The admin API: its own port, bearer tokens, tenant scoping, pack deploy over NATS."""

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import msgspec
import nats
import pytest

from greentic.admin.api import PACK_DEPLOY_SUBJECT, SCOPE_HEADER
from greentic.config.settings import load_settings
from greentic.pack.deploy import DeployReply, encode_deploy_reply
from greentic.runner.stores import open_stores
from greentic.session.model import Session, SessionKey
from greentic.types.tenant import TenantCtx
from tests.integration.inprocess import InProcessIngress
from tests.integration.platform import BUNDLE

ALL_TOKEN = "all-tenants-token-0123456789"
ACME_TOKEN = "acme-only-token-0123456789"
GLOBEX_TOKEN = "globex-only-token-0123456789"
ACME_KEY = SessionKey(TenantCtx("dev", "acme", "support"), "webchat", "conv-a")
GLOBEX_KEY = SessionKey(TenantCtx("dev", "globex", "sales"), "webchat", "conv-b")


@pytest.fixture(scope="module")
def ingress(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessIngress]:
    running = InProcessIngress(Path(tmp_path_factory.mktemp("admin")), BUNDLE, env={
        "GREENTIC_ADMIN_TOKENS": f"{ALL_TOKEN}, acme:{ACME_TOKEN}, globex:{GLOBEX_TOKEN}",
        "GREENTIC_ADMIN_DEPLOY_TIMEOUT_S": "1", "GREENTIC_HTTP_BODY_TIMEOUT_S": "1"}).start()
    yield running
    running.stop()


@pytest.fixture
async def nc(ingress: InProcessIngress) -> AsyncIterator[nats.aio.client.Client]:
    client = await nats.connect(ingress.nats_url)
    yield client
    await client.close()


@pytest.fixture
async def sessions(ingress: InProcessIngress, nc: nats.aio.client.Client) -> AsyncIterator:
    """One session of acme and one of globex, written as an executor would."""
    settings = load_settings({"GREENTIC_NATS_URL": ingress.nats_url})
    stores = await open_stores(settings, nc.jetstream())
    for key in (ACME_KEY, GLOBEX_KEY):
        found = await stores.sessions.get(key)
        if found is None:
            await stores.sessions.create(key, Session(turns=3, snapshot={"node": "ask"}))
    yield stores.sessions
    await stores.close()


async def call(http: aiohttp.ClientSession, method: str, url: str, token: str | None = None,
               **kwargs: object) -> tuple[int, dict, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, url, headers=headers, **kwargs) as response:
        return response.status, dict(response.headers), await response.json(content_type=None)


async def test_the_admin_api_is_not_served_on_the_public_port(
        ingress: InProcessIngress, http: aiohttp.ClientSession, sessions: object) -> None:
    status, _, _ = await call(http, "GET", ingress.url + "/admin/sessions", ALL_TOKEN)
    assert status == 404
    status, _, _ = await call(http, "GET", ingress.admin_url + "/admin/sessions", ALL_TOKEN)
    assert status == 200


@pytest.mark.parametrize("authorization", [
    None, "", "Bearer", "Bearer ", "Basic " + ALL_TOKEN, "Bearer wrong-token-0123456789",
    "Bearer " + ALL_TOKEN[:-1], "Bearer " + ALL_TOKEN + "x", "Bearer acme:" + ACME_TOKEN,
])
async def test_a_missing_or_wrong_token_gets_401_with_a_bearer_challenge(
        ingress: InProcessIngress, http: aiohttp.ClientSession, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    for method, path in (("GET", "/admin/sessions"), ("GET", f"/admin/sessions/{ACME_KEY.path()}"),
                         ("DELETE", f"/admin/sessions/{ACME_KEY.path()}"),
                         ("POST", "/admin/packs/deploy"), ("GET", "/admin/nothing-here")):
        async with http.request(method, ingress.admin_url + path, headers=headers,
                                json={}) as response:
            assert response.status == 401, (method, path)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert "error" in await response.json()


async def test_an_all_tenants_token_lists_every_tenants_sessions(
        ingress: InProcessIngress, http: aiohttp.ClientSession, sessions: object) -> None:
    status, _, body = await call(http, "GET", ingress.admin_url + "/admin/sessions", ALL_TOKEN)
    assert status == 200
    listed = {s["key"]: s for s in body["sessions"]}
    assert {ACME_KEY.path(), GLOBEX_KEY.path()} <= set(listed)
    assert listed[ACME_KEY.path()]["turns"] == 3
    assert listed[ACME_KEY.path()]["paused_at"] == "ask"


async def test_a_tenant_token_lists_only_its_own_tenant(
        ingress: InProcessIngress, http: aiohttp.ClientSession, sessions: object) -> None:
    status, _, body = await call(http, "GET", ingress.admin_url + "/admin/sessions", ACME_TOKEN)
    assert status == 200
    assert body["sessions"] and {s["key"].split(".")[1] for s in body["sessions"]} == {"acme"}
    for query in ("?tenant=globex", "?tenant=globex&team=sales"):
        status, _, body = await call(http, "GET", ingress.admin_url + "/admin/sessions" + query,
                                     ACME_TOKEN)
        assert status == 403
        assert "scoped to tenant 'acme'" in body["error"]["message"]


async def test_a_tenant_token_cannot_read_or_delete_another_tenants_session(
        ingress: InProcessIngress, http: aiohttp.ClientSession, sessions: object) -> None:
    url = f"{ingress.admin_url}/admin/sessions/{GLOBEX_KEY.path()}"
    assert (await call(http, "GET", url, ACME_TOKEN))[0] == 403
    assert (await call(http, "DELETE", url, ACME_TOKEN))[0] == 403
    status, _, body = await call(http, "GET", url, GLOBEX_TOKEN)
    assert status == 200, "still there"
    assert body["key"] == GLOBEX_KEY.path()
    assert body["revision"] >= 1
    assert body["turns"] == 3


async def test_a_tenant_token_deletes_its_own_session(
        ingress: InProcessIngress, http: aiohttp.ClientSession, sessions: object) -> None:
    url = f"{ingress.admin_url}/admin/sessions/{ACME_KEY.path()}"
    status, _, body = await call(http, "DELETE", url, ACME_TOKEN)
    assert (status, body) == (200, {"deleted": ACME_KEY.path()})
    assert (await call(http, "GET", url, ACME_TOKEN))[0] == 404
    assert (await call(http, "DELETE", url, ACME_TOKEN))[0] == 404


@pytest.mark.parametrize(("key", "status"), [
    ("dev.acme.support.webchat", 400),             # four tokens
    ("dev.acme.support.webchat.a.b", 400),         # six tokens
    ("dev.acme.support.webchat.%2A", 400),         # `*`
    ("dev.acme.support.webchat.%3E", 400),         # `>`
    ("dev.acme.sup%20port.webchat.c", 400),        # a space
    ("prod.acme.support.webchat.c", 404),          # another environment
])
async def test_malformed_session_keys_are_refused(ingress: InProcessIngress,
                                                  http: aiohttp.ClientSession, key: str,
                                                  status: int) -> None:
    answer = await call(http, "GET", f"{ingress.admin_url}/admin/sessions/{key}", ALL_TOKEN)
    assert answer[0] == status


async def test_pack_deploy_forwards_the_body_and_returns_the_pack_loaders_answer(
        ingress: InProcessIngress, http: aiohttp.ClientSession,
        nc: nats.aio.client.Client) -> None:
    received = []

    async def pack_loader(msg: nats.aio.msg.Msg) -> None:
        received.append((msg.data, msg.headers))
        await msg.respond(encode_deploy_reply(DeployReply(ok=True, pack="acme-pack",
                                                          version="1.2.0")))

    sub = await nc.subscribe(PACK_DEPLOY_SUBJECT, cb=pack_loader)
    await nc.flush()
    status, _, body = await call(http, "POST", ingress.admin_url + "/admin/packs/deploy",
                                 ALL_TOKEN, json={"pack": "acme-pack",
                                                  "locator": "oci://registry/acme:1.2.0"})
    await sub.unsubscribe()
    assert (status, body) == (200, {"ok": True, "pack": "acme-pack", "version": "1.2.0"})
    [(data, headers)] = received
    assert msgspec.json.decode(data) == {"pack": "acme-pack",
                                         "locator": "oci://registry/acme:1.2.0"}
    assert headers[SCOPE_HEADER] == "*"


async def test_a_refused_deploy_is_a_422_with_the_pack_loaders_reason(
        ingress: InProcessIngress, http: aiohttp.ClientSession,
        nc: nats.aio.client.Client) -> None:
    async def pack_loader(msg: nats.aio.msg.Msg) -> None:
        await msg.respond(encode_deploy_reply(DeployReply(
            ok=False, pack="acme-pack", error="signature does not verify",
            entry="signatures/pack.sig")))

    sub = await nc.subscribe(PACK_DEPLOY_SUBJECT, cb=pack_loader)
    await nc.flush()
    status, _, body = await call(http, "POST", ingress.admin_url + "/admin/packs/deploy",
                                 ALL_TOKEN, json={"pack": "acme-pack"})
    await sub.unsubscribe()
    assert status == 422
    assert (body["error"], body["entry"]) == ("signature does not verify", "signatures/pack.sig")


async def test_pack_deploy_times_out_with_504_when_the_pack_loader_is_silent(
        ingress: InProcessIngress, http: aiohttp.ClientSession,
        nc: nats.aio.client.Client) -> None:
    heard = asyncio.Event()

    async def silent(_msg: nats.aio.msg.Msg) -> None:
        heard.set()

    sub = await nc.subscribe(PACK_DEPLOY_SUBJECT, cb=silent)
    await nc.flush()
    status, _, body = await call(http, "POST", ingress.admin_url + "/admin/packs/deploy",
                                 ALL_TOKEN, json={"pack": "x"})
    await sub.unsubscribe()
    assert heard.is_set()
    assert status == 504
    assert "did not answer on greentic.admin.pack.deploy within 1 s" in body["error"]["message"]


async def test_pack_deploy_without_a_pack_loader_is_503(ingress: InProcessIngress,
                                                        http: aiohttp.ClientSession) -> None:
    status, headers, body = await call(http, "POST", ingress.admin_url + "/admin/packs/deploy",
                                       ALL_TOKEN, json={"pack": "x"})
    assert status == 503
    assert "no pack-loader listens" in body["error"]["message"]
    assert headers["Retry-After"]


@pytest.mark.parametrize(("token", "body", "status"), [
    (ACME_TOKEN, b'{"pack": "x"}', 403),     # packs are shared by tenants
    (ALL_TOKEN, b'{"source": "x"}', 400),    # not pack-loader's request schema
    (ALL_TOKEN, b"{not json", 400),
    (ALL_TOKEN, b"[1, 2]", 400),
    (ALL_TOKEN, b"\xff\xfe", 400),
])
async def test_pack_deploy_refuses_scoped_tokens_and_bad_bodies(
        ingress: InProcessIngress, http: aiohttp.ClientSession, nc: nats.aio.client.Client,
        token: str, body: bytes, status: int) -> None:
    forwarded = []

    async def pack_loader(msg: nats.aio.msg.Msg) -> None:
        forwarded.append(msg)

    sub = await nc.subscribe(PACK_DEPLOY_SUBJECT, cb=pack_loader)
    await nc.flush()
    answer = await call(http, "POST", ingress.admin_url + "/admin/packs/deploy", token,
                        data=body)
    await nc.flush()
    await sub.unsubscribe()
    assert answer[0] == status
    assert forwarded == []


def test_without_tokens_there_is_no_admin_api(tmp_path: Path) -> None:
    bare = InProcessIngress(tmp_path, BUNDLE).start()
    try:
        assert bare.service is not None and bare.service.admin is None
        with pytest.raises(OSError):  # nothing listens on the admin port
            socket.create_connection(("127.0.0.1", bare.admin_port), timeout=5).close()
    finally:
        bare.stop()
