"""The built-in Telegram channel's end-to-end tests, run again with the channel served by the
Telegram provider component (`examples/providers/telegram`, from a pack) instead of the
built-in code: the same updates in, the same exact requests to the same Bot API double out,
the same retries, refusals and dead letters."""

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from greentic.component.engine import ComponentEngine
from tests.guests import COMPILE_CACHE, build_provider
from tests.integration import test_channels as built_in
from tests.integration.platform import Platform, make_platform
from tests.integration.provider_double import ProviderDouble, provider_double

CHANNELS = {"telegram": {**built_in.CHANNELS["telegram"], "provider": "tg/telegram"}}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    root = Path(tmp_path_factory.mktemp("telegram-component"))
    wasm = build_provider("telegram", root / "built")
    ComponentEngine.shared(COMPILE_CACHE).compile(wasm.stem, wasm.read_bytes())
    pack = root / "tg"
    pack.mkdir()
    (pack / "telegram.wasm").write_bytes(wasm.read_bytes())
    (pack / "pack.yaml").write_text(
        "pack_id: tg\nversion: 0.1.0\nkind: provider\ncomponents:\n"
        "- {id: telegram, version: 0.1.0, world: provider, wasm: telegram.wasm, capabilities: "
        "{host: [secrets], secrets: [secret_token, bot_token], http_hosts: [127.0.0.1]}}\n")
    running = make_platform(root, CHANNELS, {"tg": str(pack)},
                            GREENTIC_COMPONENT_CACHE_DIR=str(COMPILE_CACHE))
    deadline = time.monotonic() + 60
    while loading(running):  # ingress and egress load the component pack-loader publishes
        assert time.monotonic() < deadline, "the Telegram provider component never loaded"
        time.sleep(0.2)
    yield running
    running.stop()


def loading(platform: Platform) -> bool:
    """True while the channel answers 503 (its component not loaded in ingress or egress)."""
    request = urllib.request.Request(f"{platform.url}/webhooks/acme/support/telegram",
                                     data=b"{}", method="POST")
    try:
        urllib.request.urlopen(request, timeout=5)
    except urllib.error.HTTPError as refused:
        if refused.code == 503:
            return True
    return not all(platform.health(service).get("provider_components", 1)
                   for service in ("ingress", "egress"))


double = provider_double(built_in.DOUBLE_PORT)

test_a_telegram_update_is_answered_with_send_message = \
    built_in.test_a_telegram_update_is_answered_with_send_message
test_a_telegram_button_click_is_answered_in_the_webhook_response_and_the_flow_runs = \
    built_in.test_a_telegram_button_click_is_answered_in_the_webhook_response_and_the_flow_runs
test_a_telegram_duplicate_delivery_gets_one_reply = \
    built_in.test_a_telegram_duplicate_delivery_gets_one_reply
test_egress_honours_retry_after_and_retries_5xx_then_delivers_exactly_once = \
    built_in.test_egress_honours_retry_after_and_retries_5xx_then_delivers_exactly_once
test_a_permanent_provider_refusal_is_dead_lettered_with_the_reason = \
    built_in.test_a_permanent_provider_refusal_is_dead_lettered_with_the_reason


@pytest.mark.parametrize(("body", "headers", "status"), [
    (built_in.telegram_update(3, "x"), {}, 401),
    (built_in.telegram_update(3, "x"), {"X-Telegram-Bot-Api-Secret-Token": "wrong"}, 401),
    (b"{garbage", {"X-Telegram-Bot-Api-Secret-Token": built_in.TELEGRAM_SECRET}, 400),
    (b'{"no": "update_id"}', {"X-Telegram-Bot-Api-Secret-Token": built_in.TELEGRAM_SECRET},
     400),
    (b"x" * 300_000, {"X-Telegram-Bot-Api-Secret-Token": built_in.TELEGRAM_SECRET}, 413),
])
async def test_bad_webhook_requests_are_refused_and_nothing_is_published(
        platform: Platform, http: aiohttp.ClientSession, double: ProviderDouble, body: bytes,
        headers: dict[str, str], status: int) -> None:
    # the built-in channel's test, with its Telegram rows
    await built_in.test_bad_webhook_requests_are_refused_and_nothing_is_published(
        platform, http, double, "telegram", body, headers, status)
