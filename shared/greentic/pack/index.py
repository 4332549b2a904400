"""The flow index in KV: what pack-loader publishes and executors watch."""

import msgspec

from greentic.bus.subjects import validate_token


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
