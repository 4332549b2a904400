"""The flow index in KV: what pack-loader publishes and executors watch; and the immutable
per-revision documents executors load on demand for conversations paused in an older one."""

import hashlib
import re

import msgspec

from greentic.bus.subjects import token_key
from greentic.errors import SubjectError
from greentic.types.codec import json_codec
from greentic.types.component import ComponentManifest


class TenantPackDocument(msgspec.Struct, kw_only=True):
    """What every document of the index names: whose pack, which version and revision."""

    tenant: str
    pack: str
    pack_version: str
    revision: str = ""
    """The pack revision the document belongs to (see `pack_revision`); empty in documents
    written before revisions existed."""


class FlowDocument(TenantPackDocument, kw_only=True):
    """One flow of one pack, as made available to one tenant."""

    flow: str
    file: str
    version: str
    """sha256 of `source`."""
    source: str
    bindings: dict[str, str] = {}
    """node id → component, for nodes calling a component by name (resolved against the
    pack's components when pack-loader checked the pack)."""


class ComponentDocument(TenantPackDocument, kw_only=True):
    """One component of one pack, as made available to one tenant; bytes are in the object
    store under `digest`."""

    digest: str
    """sha256 of the component bytes (their object name)."""
    size: int
    manifest: ComponentManifest


class PackVersionDocument(TenantPackDocument, kw_only=True):
    """Everything one revision of a pack gave one tenant: written once, never changed, purged
    when it falls out of the kept revisions."""

    published_ms: int
    flows: list[FlowDocument]
    components: list[ComponentDocument]


class PackHistory(msgspec.Struct, kw_only=True):
    """The kept revisions of one tenant's pack, oldest first; the last one is current."""

    revisions: list[str] = []


HISTORY_TOKEN = "history"
"""Last token of the history key; never a revision (those are hex)."""
REVISION_CHARS = 24


def pack_revision(pack: str, pack_version: str, flows: list[tuple[str, str]],
                  components: list[tuple[str, str, bytes]]) -> str:
    """A short content id of a pack: its version, every flow's (id, sha256) and every
    component's (id, digest, encoded manifest); the same content always gives the same id."""
    encoded = msgspec.json.encode([pack, pack_version, sorted(flows),
                                   sorted((i, d, m.decode()) for i, d, m in components)])
    return hashlib.sha256(encoded).hexdigest()[:REVISION_CHARS]


def flow_key(env: str, tenant: str, pack: str, flow: str) -> str:
    """KV key of a tenant's flow: `{env}.{tenant}.{pack}.{flow}` (tokens validated)."""
    return token_key(env=env, tenant=tenant, pack=pack, flow=flow)


COMPONENT_ID = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
"""Ours (one token) and Greentic's (dotted, `ai.greentic.component-echo`)."""


def component_key(env: str, tenant: str, pack: str, component: str) -> str:
    """KV key of a tenant's component: `{env}.{tenant}.{pack}.{component}`; a dotted id
    (Greentic's `ai.greentic.component-echo`) is one token with `=` for each `.`."""
    if not isinstance(component, str) or not COMPONENT_ID.fullmatch(component):
        raise SubjectError("component", component, "a component id is tokens of letters, "
                           "digits, '_' and '-', joined by '.'")
    return f"{token_key(env=env, tenant=tenant, pack=pack)}.{component.replace('.', '=')}"


def pack_version_key(env: str, tenant: str, pack: str, revision: str) -> str:
    """KV key of a tenant's pack revision: `{env}.{tenant}.{pack}.{revision}`."""
    return token_key(env=env, tenant=tenant, pack=pack, revision=revision)


def pack_history_key(env: str, tenant: str, pack: str) -> str:
    """KV key of a tenant's pack history: `{env}.{tenant}.{pack}.history`."""
    return pack_version_key(env, tenant, pack, HISTORY_TOKEN)


# the documents as JSON (readable with `nats kv get`), and back
encode_flow_document, decode_flow_document = json_codec(FlowDocument)
encode_component_document, decode_component_document = json_codec(ComponentDocument)
encode_pack_version, decode_pack_version = json_codec(PackVersionDocument)
encode_pack_history, decode_pack_history = json_codec(PackHistory)
