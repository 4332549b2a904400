"""The flow index in KV: what pack-loader publishes and executors watch."""

import msgspec

from greentic.bus.subjects import validate_token
from greentic.types.component import ComponentManifest


class FlowDocument(msgspec.Struct, kw_only=True):
    """One flow of one pack, as made available to one tenant."""

    tenant: str
    pack: str
    pack_version: str
    flow: str
    file: str
    version: str
    """sha256 of `source`."""
    source: str


def flow_key(env: str, tenant: str, pack: str, flow: str) -> str:
    """KV key of a tenant's flow: `{env}.{tenant}.{pack}.{flow}` (tokens validated)."""
    return ".".join(validate_token(name, value) for name, value in
                    (("env", env), ("tenant", tenant), ("pack", pack), ("flow", flow)))


encode_flow_document = msgspec.json.Encoder().encode
decode_flow_document = msgspec.json.Decoder(FlowDocument).decode


class ComponentDocument(msgspec.Struct, kw_only=True):
    """One component of one pack, as made available to one tenant; bytes are in the object
    store under `digest`."""

    tenant: str
    pack: str
    pack_version: str
    digest: str
    """sha256 of the component bytes (their object name)."""
    size: int
    manifest: ComponentManifest


def component_key(env: str, tenant: str, pack: str, component: str) -> str:
    """KV key of a tenant's component: `{env}.{tenant}.{pack}.{component}`."""
    return ".".join(validate_token(name, value) for name, value in
                    (("env", env), ("tenant", tenant), ("pack", pack), ("component", component)))


encode_component_document = msgspec.json.Encoder().encode
decode_component_document = msgspec.json.Decoder(ComponentDocument).decode
