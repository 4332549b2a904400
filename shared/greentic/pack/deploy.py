"""`greentic pack deploy` on the wire: a JSON request to pack-loader on
`greentic.admin.pack.deploy` and its reply; and the deployment record pack-loader keeps in the
`greentic-pack-deployments` bucket so that a restart serves the deployed version again."""

import msgspec
from nats.aio.client import Client
from nats.errors import NoRespondersError

from greentic.bus.subjects import PACK_DEPLOY_SUBJECT, validate_token
from greentic.errors import GreenticError


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


encode_deploy_request = msgspec.json.Encoder().encode
decode_deploy_request = msgspec.json.Decoder(DeployRequest).decode
encode_deploy_reply = msgspec.json.Encoder().encode
decode_deploy_reply = msgspec.json.Decoder(DeployReply).decode
encode_deployment = msgspec.json.Encoder().encode
decode_deployment = msgspec.json.Decoder(Deployment).decode


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
