"""A NATS user limited (by `greentic nats-permissions`) to one tenant taps that tenant only;
NATS itself refuses the rest, and the tap says so."""

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import nats
import pytest
from click.testing import CliRunner

from greentic.cli.main import cli
from greentic.hosting.launcher import free_port, nats_server_binary, stop_processes, wait_for_port

ADMIN_PASSWORD, TAP_PASSWORD = "admin-pw-0123", "tap-pw-0123"


@pytest.fixture(scope="module")
def nats_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A nats-server whose config holds an unrestricted user and the printed tap-acme user."""
    printed = CliRunner().invoke(cli, ["nats-permissions", "--tenant", "acme", "--env", "dev"])
    assert printed.exit_code == 0, printed.output
    tap_user = printed.output.replace("<set a password>", TAP_PASSWORD)
    port = free_port()
    config = tmp_path_factory.mktemp("nats") / "nats.conf"
    config.write_text(f"listen: 127.0.0.1:{port}\nauthorization {{ users: [\n"
                      f'{{ user: "admin", password: "{ADMIN_PASSWORD}" }}\n{tap_user}\n] }}\n')
    server = subprocess.Popen([nats_server_binary(), "-c", str(config)],
                              stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, 15, server)
    yield port
    stop_processes([server], timeout=10)


@pytest.fixture
async def publisher(nats_port: int) -> AsyncIterator[nats.aio.client.Client]:
    nc = await nats.connect(f"nats://admin:{ADMIN_PASSWORD}@127.0.0.1:{nats_port}")
    yield nc
    await nc.close()


async def start_tap(nats_port: int, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "greentic", "tap", "--nats-url",
        f"nats://tap-acme:{TAP_PASSWORD}@127.0.0.1:{nats_port}", *args,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


async def publish_both_tenants(nc: nats.aio.client.Client) -> None:
    for tenant in ("globex", "acme"):
        for stage in ("ingress", "routed", "egress"):
            await nc.publish(f"greentic.messaging.{stage}.dev.{tenant}.support.webchat",
                             f"{tenant} {stage}".encode())
    await nc.flush()


async def test_a_tenant_scoped_user_taps_its_tenant_and_sees_nothing_else(
        nats_port: int, publisher: nats.aio.client.Client) -> None:
    tap = await start_tap(nats_port, "--tenant", "acme", "--count", "3")
    assert tap.stderr is not None and tap.stdout is not None
    assert b"tapping greentic.messaging.ingress.dev.acme.>" in \
        await asyncio.wait_for(tap.stderr.readline(), 15)
    await publish_both_tenants(publisher)
    out, _ = await asyncio.wait_for(tap.communicate(), 15)
    assert tap.returncode == 0
    lines = out.decode().splitlines()
    assert [line.split()[1] for line in lines] == [
        f"greentic.messaging.{stage}.dev.acme.support.webchat"
        for stage in ("ingress", "routed", "egress")]
    assert "globex" not in out.decode()


@pytest.mark.parametrize("args", [
    ("--tenant", "globex"),                          # another tenant
    (),                                              # every tenant (greentic.messaging.>)
    ("greentic.messaging.ingress.dev.globex.>",),    # another tenant's subject by hand
    ("greentic.messaging.*.dev.*.>",),               # a wildcard over tenants
])
async def test_anything_beyond_its_tenant_is_refused_by_nats_with_a_clear_error(
        nats_port: int, publisher: nats.aio.client.Client, args: tuple[str, ...]) -> None:
    tap = await start_tap(nats_port, *args)
    out, err = await asyncio.wait_for(tap.communicate(), 15)
    assert tap.returncode == 1
    assert "NATS refused the subscription" in err.decode()
    assert "permissions violation" in err.decode().lower()
    assert "--tenant" in err.decode()
    assert out == b""


def test_tenant_and_subject_together_are_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["tap", "--tenant", "acme", "greentic.messaging.>"])
    assert result.exit_code == 2
    assert "either SUBJECT or --tenant" in result.output


@pytest.mark.parametrize("tenant", ["a.b", "*", ">", "a b", "acme.>"])
def test_a_tenant_that_is_not_one_subject_token_is_refused(tenant: str) -> None:
    for command in (["tap", "--tenant", tenant], ["nats-permissions", "--tenant", tenant]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 2
        assert "is not a valid subject token" in result.output
