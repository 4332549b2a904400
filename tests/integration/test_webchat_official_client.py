"""Microsoft's official Web Chat (botframework-webchat from npm, with botframework-directlinejs
inside) holds a conversation with us in headless Chromium, embedded on another origin."""

import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Page, async_playwright

from greentic.hosting.launcher import free_port
from tests.integration.platform import Platform, make_platform

REPO = Path(__file__).parents[2]
WEBCHAT_VERSION = "4.18.1"
CLIENT_DIR = REPO / ".greentic" / "webchat-client" / WEBCHAT_VERSION
ARTIFACTS = REPO / ".greentic" / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Embedded Web Chat</title></head>
<body style="margin:0"><div id="webchat" style="height:100vh"></div>
<script src="webchat.js"></script>
<script>
(async () => {
  const ingress = "%(ingress)s";
  const granted = await (await fetch(ingress + "/webchat/api/token", {method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({tenant: "acme", team: "support", channel: "demo"})})).json();
  window.WebChat.renderWebChat({
    directLine: window.WebChat.createDirectLine({token: granted.token,
                                                 domain: ingress + "/v3/directline"}),
    userID: "user-ada", username: "Ada"}, document.getElementById("webchat"));
})();
</script></body></html>
"""


def official_client() -> Path:
    """webchat.js of botframework-webchat, fetched once with `npm pack` (integrity-checked)."""
    bundle = CLIENT_DIR / "webchat.js"
    if not bundle.exists():
        CLIENT_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "pack", f"botframework-webchat@{WEBCHAT_VERSION}", "--silent",
                        "--pack-destination", str(CLIENT_DIR)], check=True, timeout=300)
        with tarfile.open(CLIENT_DIR / f"botframework-webchat-{WEBCHAT_VERSION}.tgz") as tar:
            bundle.write_bytes(tar.extractfile("package/dist/webchat.js").read())
    return bundle


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    channels = {"demo": {"provider": "webchat", "flow": "demo/main",
                         "config": {"anonymous": True}}}
    running = make_platform(Path(tmp_path_factory.mktemp("webchat")), channels,
                            {"demo": str(REPO / "examples" / "demo" / "pack")})
    yield running
    running.stop()


async def bot_says(page: Page, text: str) -> None:
    """Wait for a visible bot bubble containing `text` (Web Chat renders text in <p>)."""
    await page.locator("p", has_text=text).last.wait_for(timeout=30_000)


async def test_the_official_web_chat_client_holds_a_multi_turn_conversation_with_buttons(
        platform: Platform, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    (site_dir / "webchat.js").write_bytes(official_client().read_bytes())
    (site_dir / "index.html").write_text(PAGE % {"ingress": platform.url})
    app = web.Application()
    app.router.add_static("/", site_dir)
    runner = web.AppRunner(app)
    await runner.setup()
    site_port = free_port()  # another origin than ingress: CORS is exercised too
    await web.TCPSite(runner, "127.0.0.1", site_port).start()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = await browser.new_page(viewport={"width": 480, "height": 720})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(f"http://127.0.0.1:{site_port}/index.html")
            send_box = page.get_by_role("textbox")

            async def say(text: str) -> None:
                await send_box.fill(text)
                await send_box.press("Enter")

            async def click(button: str) -> None:
                await page.get_by_role("button", name=button).last.click()

            await say("hello from Chromium")
            await bot_says(page, "What would you like to do?")
            await click("Sign up")
            await bot_says(page, "What is your name?")
            await say("Ada")
            await bot_says(page, "Nice to meet you, Ada. How old are you?")
            await say("36")
            await bot_says(page, "Which plan would you like?")
            await click("Team")
            await bot_says(page, "Ada, 36 years, plan Team. Shall I register you?")
            await click("Yes")
            await bot_says(page, "Done! Welcome aboard, Ada.")
            await page.screenshot(path=str(ARTIFACTS / "webchat-official-client.png"))
            assert errors == []
        finally:
            await browser.close()
            await runner.cleanup()
