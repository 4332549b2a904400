"""Tenant isolation: every path by which tenant B (globex) might reach tenant A's (acme) flows,
state, sessions, secrets or packs, each refused. Two tenants on one deployment (the platform's
bundle gives acme `acme-pack` and globex `globex-pack`, each with its own channels).

This table is the list; a path tested elsewhere is named with its test, not repeated here
(admin API and tap paths are listed in their own modules).

| # | B attempts                                                  | refused by                                 | test |
|---|-------------------------------------------------------------|--------------------------------------------|------|
| 1 | bind a channel of B's to a flow of A's pack in the bundle   | bundle check: pack not given to the tenant | tests/unit/test_settings_and_bundle.py::test_a_broken_bundle_names_the_file_and_field ("which tenant 'acme' is not given") |
| 2 | a tenant id differing from A's only in case or `-`/`_`      | bundle check (secrets, keys would be shared) | here: test_tenant_ids_that_fold_to_the_same_name_are_refused |
| 3 | `flow.call`/`flow.goto` from B's pack to a flow it lacks    | loader: flow not in the pack (at build, sign, load) | tests/unit/test_flow_loader.py (flow.call refers to flow 'other', which is not in the pack) |
| 4 | … the same at run time (a flow in the index unchecked)      | resolver keyed by B's tenant + pack        | here: test_flow_call_and_goto_reach_only_the_callers_tenant_and_pack |
| 5 | a routed message on B's subject naming A's pack/flow        | executor looks flows up under B's tenant only: never run, dead-lettered | here: test_a_routed_message_naming_another_tenants_flow_is_never_run |
| 6 | an ingress envelope on B's subject naming A's flow          | router binds the flow from the bundle, ignoring the envelope's | here: test_the_router_binds_the_flow_of_the_subjects_tenant |
| 7 | an envelope claiming tenant A published on B's subject (ingress or routed) | read_envelope: ctx/subject mismatch → dead letter | here: test_an_envelope_claiming_another_tenant_than_its_subject_is_dead_lettered |
| 8 | B's component reads A's state with A's tenant-ctx           | host import: permission-denied             | tests/unit/test_component_host.py::TestNodeWorld::test_reading_another_tenants_state_through_the_import_is_denied; through the platform: tests/integration/test_components.py::test_reading_another_tenants_state_is_denied |
| 9 | B's component reads state under the same key/conversation id as A | state keys carry the calling tenant  | tests/unit/test_component_host.py::TestNodeWorld::test_orders_remembers_per_conversation_and_reads_its_tenants_secret |
| 10 | guest memory of A's instance seen by B                     | instances pooled per tenant + conversation | tests/unit/test_component_host.py::TestIsolation |
| 10b | B's flow calls a component of a pack only A is given      | component index keyed by tenant: not-found | tests/integration/test_components.py::test_a_component_of_a_pack_the_tenant_lacks_is_not_found |
| 11 | B's session key addressing A's session: tokens with `.`, `>`, `*` | SessionKey tokens validated          | tests/integration/test_store_contract.py::TestContract::test_a_key_token_that_could_escape_its_namespace_is_refused, ::test_tenants_are_isolated_even_with_the_same_conversation_id |
| 12 | a provider/WebChat conversation id of B's crafted as A's key (`acme.support.webchat.c1`, `>`) | conversation_token: hashed into one token under B's key | here: test_a_crafted_conversation_id_stays_in_its_own_tenants_namespace |
| 13 | B's component reads A's secret                              | providers look only in the calling tenant's place | tests/unit/test_secrets.py; tests/unit/test_component_host.py (orders reads …9999 for globex) |
| 14 | … through an ambiguous variable (tenant `a` + secret `b__c` = tenant `a__b` + `c`) | secret_variable refuses `__` and edge `_` | here: test_secret_names_that_would_share_another_tenants_variable_are_refused |
| 15 | a WebChat token of B's opening A's conversation or channel | token claims bind tenant/channel/conversation | tests/integration/test_webchat_api_bad_input.py::test_a_token_opens_only_its_own_conversation, tests/unit/test_webchat_tokens_and_activities.py |
| 16 | a webhook for A's channel signed with B's secret            | each channel verifies with its own secret  | tests/integration/test_channels.py::test_bad_webhook_requests_are_refused_and_nothing_is_published |
| 17 | B's component burning every wasm thread so A's calls wait   | wasm threads handed to waiting tenants in turn | tests/unit/test_component_hostile.py::TestOneTenantBurningItsBudget; through the platform: tests/integration/test_noisy_tenant.py |
"""  # noqa: E501

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import msgspec
import nats
import pytest

from greentic.bus import headers as h
from greentic.bus.subjects import conversation_token, message_subject, routed_subject
from greentic.bus.topology import DEFAULT_PARTITIONS
from greentic.config.bundle import load_bundle
from greentic.errors import ConfigError, FlowError
from greentic.flow.engine import FlowEngine
from greentic.pack.index import FlowDocument, encode_flow_document, flow_key
from greentic.runner.flow_registry import FlowRegistry
from greentic.secrets import EnvSecretsProvider, secret_variable
from greentic.session.model import SessionKey
from greentic.types import Envelope, FlowRef, TenantCtx, encode_envelope
from tests.integration.platform import Platform, make_platform
from tests.integration.test_message_path import (
    collect_replies,
    dead_letters,
    deadletter_seq,
    open_client,
)

ACME = TenantCtx("dev", "acme", "support")
GLOBEX = TenantCtx("dev", "globex", "sales")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The two-tenant platform; two deliveries before a message is dead-lettered."""
    running = make_platform(Path(tmp_path_factory.mktemp("isolation")), GREENTIC_MAX_DELIVER="2")
    yield running
    running.stop()


# --- configuration -------------------------------------------------------------------------

def test_tenant_ids_that_fold_to_the_same_name_are_refused(tmp_path: Path) -> None:
    (tmp_path / "bundle.yaml").write_text(
        "packs: {}\ntenants:\n  acme-corp: {}\n  ACME_corp: {}\n")
    with pytest.raises(ConfigError, match=r"tenants 'acme-corp' and 'ACME_corp' differ only in "
                                          r"case or '-'/'_'"):
        load_bundle(tmp_path / "bundle.yaml")


def test_secret_names_that_would_share_another_tenants_variable_are_refused() -> None:
    """Tenant `a` declaring secret `b__c` would read tenant `a__b`'s secret `c`."""
    provider = EnvSecretsProvider({"GREENTIC_SECRET__A__B__C": "b's secret"})
    assert provider.get(TenantCtx("dev", "a", "t"), "b-c") is None
    for tenant, name in (("a", "b__c"), ("a__b", "c"), ("a", "_b"), ("a_", "b"), ("a", "")):
        with pytest.raises(ConfigError, match=r"cannot be an environment variable part"):
            provider.get(TenantCtx("dev", tenant, "t"), name)
    assert secret_variable("globex", "api-key") == "GREENTIC_SECRET__GLOBEX__API_KEY"


def test_a_crafted_conversation_id_stays_in_its_own_tenants_namespace() -> None:
    for crafted in ("acme.support.webchat.c1", ">", "c1.>", "*", "a b"):
        token = conversation_token(crafted)
        path = SessionKey(GLOBEX, "webchat", token).path()
        assert path.startswith("dev.globex.sales.webchat.") and path.count(".") == 4
    assert conversation_token("c1") == "c1", "safe ids are kept as they are"


# --- flows ----------------------------------------------------------------------------------

CALLER = """\
id: caller
type: messaging
schema_version: 2
start: call
nodes:
  call:
    flow.call: {{flow: {target}}}
    routing:
      - to: failed
        status: error
      - to: done
  done:
    templating.handlebars: {{text: "reached {{{{prev.text}}}}"}}
    routing: reply
  failed:
    templating.handlebars: {{text: "refused: {{{{node.call.error.message}}}}"}}
    routing: reply
"""
GOTO = """\
id: jumper
type: messaging
schema_version: 2
start: jump
nodes:
  jump:
    flow.goto: {{flow: {target}}}
    routing: out
"""
SECRET_FLOW = """\
id: secret
type: messaging
schema_version: 2
start: tell
nodes:
  tell:
    templating.handlebars: {text: "acme's secret flow"}
    routing: out
"""


def publish(registry: FlowRegistry, tenant: str, pack: str, flow: str, source: str) -> None:
    document = FlowDocument(tenant=tenant, pack=pack, pack_version="0.1.0", flow=flow,
                            file=f"{pack}/{flow}.ygtc", version=flow, source=source)
    registry._apply(flow_key("dev", tenant, pack, flow), None, encode_flow_document(document))


async def test_flow_call_and_goto_reach_only_the_callers_tenant_and_pack() -> None:
    """Flows put into the index without the loader's pack check (the index is the executor's
    only source): globex's caller names acme's flow in every way it could."""
    engine = FlowEngine()
    registry = FlowRegistry(engine)
    publish(registry, "acme", "acme-pack", "secret", SECRET_FLOW)
    for target in ("secret", "acme-pack/secret", "acme.acme-pack.secret", ">"):
        publish(registry, "globex", "globex-pack", "caller",
                CALLER.format(target=f'"{target}"'))
        prepared = registry.get(GLOBEX, FlowRef("globex-pack", "caller"))
        assert prepared is not None
        inbound = Envelope(id="m1", ctx=GLOBEX, channel="webchat", provider="webchat",
                           conversation="c1", text="hi")
        result = await engine.run_turn(prepared, inbound,
                                       resolve=registry.resolver(GLOBEX, "globex-pack"))
        assert [r.text for r in result.replies] == [
            f"refused: flow '{target}' is not available in this pack"], target
        publish(registry, "globex", "globex-pack", "jumper", GOTO.format(target=f'"{target}"'))
        jumper = registry.get(GLOBEX, FlowRef("globex-pack", "jumper"))
        assert jumper is not None
        with pytest.raises(FlowError, match=f"flow '{re.escape(target)}' is not available in "
                                            "this pack"):
            await engine.run_turn(jumper, inbound, resolve=registry.resolver(GLOBEX,
                                                                             "globex-pack"))
    assert registry.resolver(GLOBEX, "acme-pack")("secret") is None
    assert registry.resolver(ACME, "acme-pack")("secret") is not None


# --- the running platform -------------------------------------------------------------------

async def test_a_routed_message_naming_another_tenants_flow_is_never_run(
        platform: Platform, js: nats.js.JetStreamContext) -> None:
    before = await deadletter_seq(js)
    forged = Envelope(id="iso-routed-1", ctx=GLOBEX, channel="webchat", provider="webchat",
                      conversation="iso1", text="run acme's flow", flow=FlowRef("acme-pack",
                                                                                 "echo"))
    await js.publish(routed_subject(GLOBEX, "webchat", "iso1", DEFAULT_PARTITIONS),
                     encode_envelope(forged), headers={h.MSG_ID: forged.id})
    dead = await wait_for_dead_letters(js, before, 1)
    assert dead[0].headers[h.DEAD_STAGE] == "routed"
    assert "acme-pack/echo is not loaded for tenant 'globex'" in dead[0].headers[h.DEAD_REASON]


async def test_the_router_binds_the_flow_of_the_subjects_tenant(
        platform: Platform, http: aiohttp.ClientSession, js: nats.js.JetStreamContext) -> None:
    client = await open_client(platform, http, "globex", "sales", "webchat")
    forged = Envelope(id="iso-ingress-1", ctx=GLOBEX, channel="webchat", provider="webchat",
                      conversation=client.conversation, text="whose flow?",
                      flow=FlowRef("acme-pack", "echo"))
    await js.publish(message_subject("ingress", GLOBEX, "webchat"), encode_envelope(forged),
                     headers={h.MSG_ID: forged.id})
    assert [r.text for r in await collect_replies(client, 1)] == ["globex heard: whose flow?"]


@pytest.mark.parametrize("stage", ["ingress", "routed"])
async def test_an_envelope_claiming_another_tenant_than_its_subject_is_dead_lettered(
        platform: Platform, js: nats.js.JetStreamContext, stage: str) -> None:
    before = await deadletter_seq(js)
    forged = Envelope(id=f"iso-claim-{stage}", ctx=ACME, channel="webchat", provider="webchat",
                      conversation="c1", text="let me in",
                      flow=FlowRef("acme-pack", "echo") if stage == "routed" else None)
    subject = routed_subject(GLOBEX, "webchat", "c1", DEFAULT_PARTITIONS) \
        if stage == "routed" else message_subject("ingress", GLOBEX, "webchat")
    await js.publish(subject, encode_envelope(forged), headers={h.MSG_ID: forged.id})
    dead = await wait_for_dead_letters(js, before, 1)
    assert [(d.headers[h.DEAD_STAGE], d.headers[h.DEAD_REASON]) for d in dead] == [
        (stage, "envelope tenant/channel does not match its subject")]


async def wait_for_dead_letters(js: nats.js.JetStreamContext, since: int, count: int,
                                within_s: float = 30) -> list:
    deadline = time.monotonic() + within_s
    found: list = []
    while len(found) < count and time.monotonic() < deadline:
        found = await dead_letters(js, since)
        if len(found) < count:
            await asyncio.sleep(0.2)
    assert len(found) == count, [msgspec.json.decode(d.data) for d in found]
    return found
