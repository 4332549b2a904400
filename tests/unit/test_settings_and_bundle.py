"""Configuration fails at start, naming the variable or the bundle field."""

from pathlib import Path

import pytest

from greentic.config.bundle import load_bundle
from greentic.config.settings import Settings, load_settings
from greentic.errors import ConfigError
from greentic.types import FlowRef, TenantCtx

DEMO = Path(__file__).parents[2] / "examples" / "demo" / "greentic.demo.yaml"


def test_settings_come_from_greentic_variables_with_types() -> None:
    settings = load_settings({"GREENTIC_NATS_URL": "nats://x:1", "GREENTIC_ACK_WAIT_S": "2.5",
                              "GREENTIC_HEALTH_PORT": "9000", "OTHER": "ignored"})
    assert settings == Settings(nats_url="nats://x:1", ack_wait_s=2.5, health_port=9000)


@pytest.mark.parametrize(("environ", "named"), [
    ({"GREENTIC_HEALTH_PORT": "eighty"}, "GREENTIC_HEALTH_PORT='eighty'"),
    ({"GREENTIC_HTTP_PORT": "70000"}, "GREENTIC_HTTP_PORT='70000'"),
    ({"GREENTIC_ACK_WAIT_S": "-1"}, "GREENTIC_ACK_WAIT_S='-1'"),
    ({"GREENTIC_LOG_LEVEL": "loud"}, "GREENTIC_LOG_LEVEL='loud'"),
    ({"GREENTIC_ENV": "prod.eu"}, "GREENTIC_ENV"),
])
def test_a_bad_value_names_its_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_settings(environ)


def test_the_demo_bundle_loads_and_binds_its_channel() -> None:
    bundle = load_bundle(DEMO)
    ctx = TenantCtx("dev", "demo", "default")
    assert bundle.flow_for(ctx, "webchat") == FlowRef("demo", "main")
    assert bundle.flow_for(ctx, "slack") is None
    assert bundle.pack_dir("demo") == DEMO.parent / "pack"


@pytest.mark.parametrize(("text", "message"), [
    ("tenants: [", "not valid YAML"),
    ("tenants:\n  acme:\n    packs: [nope]\n", "tenants.acme.packs names unknown pack 'nope'"),
    ("tenants:\n  acme:\n    teams:\n      t:\n        channels:\n          c:\n"
     "            provider: webchat\n            flow: noslash\n",
     "tenants.acme.teams.t.channels.c.flow must be '<pack>/<flow>'"),
    ("packs:\n  p:\n    path: x\ntenants:\n  acme:\n    teams:\n      t:\n        channels:\n"
     "          c:\n            provider: webchat\n            flow: p/f\n",
     "uses pack 'p', which tenant 'acme' is not given"),
    ("tenants:\n  'a.b': {}\n", "tenant 'a.b' is not a valid subject token"),
    ("tenants:\n  acme:\n    colour: red\n", "`colour`"),
])
def test_a_broken_bundle_names_the_file_and_field(tmp_path: Path, text: str,
                                                  message: str) -> None:
    path = tmp_path / "bundle.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_bundle(path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_a_missing_bundle_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read bundle"):
        load_bundle(tmp_path / "absent.yaml")
