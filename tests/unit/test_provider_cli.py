"""`greentic provider test`: a provider component on a recorded webhook, as a user runs it."""

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from greentic.cli.main import cli
from tests.guests import build_provider

BODY = {"event_id": "ev-1", "conversation": "room-7", "user": "ada", "text": "hello"}


@pytest.fixture(scope="module")
def signed_webhook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_provider("signed-webhook", tmp_path_factory.mktemp("providers"))


def run(*args: str | Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, ["provider", "test", *map(str, args)])
    return result.exit_code, result.output.splitlines()


def test_a_recorded_webhook_prints_its_messages_and_the_requests_replies_would_send(
        signed_webhook: Path, tmp_path: Path) -> None:
    recording = tmp_path / "hook.json"
    recording.write_text(json.dumps({"headers": {"Content-Type": "application/json"},
                                     "body": BODY}))
    signature = "sha256=" + hmac.new(b"s3", json.dumps(BODY).encode(), hashlib.sha256).hexdigest()
    code, lines = run(signed_webhook, recording, "--secret", "signing_secret=s3", "--header",
                      f"X-Signature:{signature}", "--config",
                      '{"reply_url": "http://127.0.0.1:9/reply"}', "--reply", "hi Ada")
    assert code == 0, lines
    assert lines[0] == 'webhook     200 {"ok": true}'
    message = json.loads(lines[1].removeprefix("message     "))
    assert (message["conversation"], message["sender"], message["text"]) == ("room-7", "ada",
                                                                             "hello")
    request = json.loads(lines[2].removeprefix("would send  "))
    assert (request["method"], request["url"]) == ("POST", "http://127.0.0.1:9/reply")
    assert json.loads(request["body"])["text"] == "hi Ada"


def test_a_webhook_the_provider_refuses_says_why_and_exits_1(signed_webhook: Path,
                                                              tmp_path: Path) -> None:
    recording = tmp_path / "body.json"
    recording.write_text(json.dumps(BODY))  # a bare body: a POST without a signature
    code, lines = run(signed_webhook, recording, "--secret", "signing_secret=s3")
    assert code == 1
    assert lines == ["refused     401 unauthorized: X-Signature missing or wrong"]
