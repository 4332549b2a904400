"""`greentic pack deploy` on the wire: a JSON request to pack-loader on
`greentic.admin.pack.deploy` and its reply; and the deployment record pack-loader keeps in the
`greentic-pack-deployments` bucket so that a restart serves the deployed version again."""

import time
from collections.abc import Iterable

import msgspec
import structlog
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from greentic.bus.subjects import PACK_DEPLOY_SUBJECT, validate_token
from greentic.errors import GreenticError
from greentic.pack.verify import PackContents
from greentic.types.codec import json_codec

log = structlog.get_logger(__name__)


class DeployRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Deploy pack `pack` (a pack of the bundle) from `locator`, or re-read its current
    source when `locator` is empty."""

    pack: str
    locator: str = ""
    """A pack source directory or a `.gtpack` file; a relative path is relative to the
    bundle's directory on the pack-loader's machine."""
    digest: str = ""
    """`sha256:<hex>` of the `.gtpack` file: anything else is refused."""


class DeployedFlow(msgspec.Struct):
    id: str
    version: str
    """sha256 of the flow source."""


class DeployedComponent(msgspec.Struct):
    id: str
    digest: str
    """`sha256:<hex>` of the component bytes."""
    size: int


class DeployReply(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What pack-loader did: `ok` with what now serves, or the refusal (`entry` names the
    archive entry, manifest field or request field at fault)."""

    ok: bool
    pack: str = ""
    version: str = ""
    revision: str = ""
    locator: str = ""
    flows: list[DeployedFlow] = []
    components: list[DeployedComponent] = []
    error: str = ""
    entry: str = ""


def unknown_pack_reply(pack: str, packs: Iterable[str]) -> DeployReply:
    """The refusal of a deploy of a pack the bundle (of `packs`) does not have."""
    return DeployReply(ok=False, pack=pack, entry="pack", error=(
        f"pack {pack!r} is not in the bundle (packs: {', '.join(sorted(packs)) or 'none'}); "
        "tenants and channels come from the bundle, so add the pack there first"))


def deployed_reply(pack: str, locator: str, contents: PackContents) -> DeployReply:
    """The reply to a deploy that serves `contents` of `pack` from `locator` now."""
    return DeployReply(
        ok=True, pack=pack, version=contents.version, revision=contents.revision,
        locator=locator,
        flows=[DeployedFlow(id, version) for id, version in contents.flow_versions.items()],
        components=[DeployedComponent(c.id, f"sha256:{d}", size)
                    for c, d, size, _ in contents.components])


class Deployment(msgspec.Struct, kw_only=True):
    """A deployed locator that replaces the bundle's path of `pack` (durable in KV)."""

    pack: str
    locator: str
    """The resolved absolute path pack-loader reads."""
    digest: str = ""
    deployed_ms: int = 0


def deployment_key(env: str, pack: str) -> str:
    """KV key of a pack's deployment: `{env}.{pack}`."""
    return f"{validate_token('env', env)}.{validate_token('pack', pack)}"


encode_deploy_request, decode_deploy_request = json_codec(DeployRequest)
encode_deploy_reply, decode_deploy_reply = json_codec(DeployReply)
encode_deployment, decode_deployment = json_codec(Deployment)


class DeploymentStore:
    """pack-loader's deployment records in KV, one per env and pack."""

    def __init__(self, kv: KeyValue, env: str) -> None:
        self.kv = kv
        self.env = env

    async def restore(self, packs: Iterable[str]) -> dict[str, Deployment]:
        """The recorded deployment of each of `packs` that has one; an unreadable record is
        logged and skipped (the bundle's path serves)."""
        found: dict[str, Deployment] = {}
        for pack_id in packs:
            try:
                entry = await self.kv.get(deployment_key(self.env, pack_id))
                deployment = decode_deployment(entry.value or b"")
            except KeyNotFoundError:
                continue
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                log.error("deployment record unreadable; using the bundle's path", pack=pack_id,
                          error=str(exc))
                continue
            found[pack_id] = deployment
            log.info("deployment restored", pack=pack_id, locator=deployment.locator,
                     digest=deployment.digest or None)
        return found

    async def save(self, pack: str, locator: str, digest: str) -> Deployment:
        """Record that `pack` is served from `locator` (pinned to `digest`) from now on."""
        deployment = Deployment(pack=pack, locator=locator, digest=digest,
                                deployed_ms=int(time.time() * 1000))
        await self.kv.put(deployment_key(self.env, pack), encode_deployment(deployment))
        return deployment


async def request_deploy(nc: Client, request: DeployRequest, timeout_s: float) -> DeployReply:
    """Send `request` to the pack-loader and wait for its reply; GreenticError when nobody
    answers in time."""
    try:
        msg = await nc.request(PACK_DEPLOY_SUBJECT, encode_deploy_request(request),
                               timeout=timeout_s)
    except NoRespondersError:
        raise GreenticError(f"no pack-loader answers on {PACK_DEPLOY_SUBJECT} (is the platform "
                            "running, and is this its NATS?)") from None
    except TimeoutError:  # nats.errors.TimeoutError is an asyncio.TimeoutError
        raise GreenticError(f"no reply from pack-loader within {timeout_s:g} s") from None
    return decode_deploy_reply(msg.data)
