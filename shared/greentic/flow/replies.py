"""What a node's or a flow's output says to send back: our `{text, buttons}` and every shape
Greentic's messaging host turns into replies.

Greentic's rules are greentic-start's `parse_envelopes` (src/messaging_app.rs): a typed
`{type: text, text}`; a list, or `messages` / `events` lists, of envelopes (each `{text, …}`)
or nested outputs; a `message` envelope; else the first text found in `messages[].text`,
`result.content[].text`, `result.structured_content`, `payload.text`, `text`, or the output
itself when it is a string. An output with none of these sends nothing.
"""

import json
from typing import Any

from greentic.flow.turn import Reply
from greentic.types.envelope import Button

MAX_NESTING = 8


def _buttons(output: dict[str, Any]) -> list[Button]:
    return [Button(title=str(b), value=str(b)) if not isinstance(b, dict)
            else Button(title=str(b.get("title", b.get("value", ""))),
                        value=str(b.get("value", b.get("title", ""))))
            for b in output.get("buttons") or [] if b is not None]


def _text_reply(output: dict[str, Any], text: Any) -> list[Reply]:
    buttons = _buttons(output)
    if not (isinstance(text, str) and text) and not buttons:
        return []
    return [Reply(text=text if isinstance(text, str) else "", buttons=buttons)]


def _first_text(items: Any) -> str | None:
    if not isinstance(items, list):
        return None
    return next((item["text"] for item in items if isinstance(item, dict) and
                 isinstance(item.get("text"), str)), None)


def replies_from(output: Any, depth: int = 0) -> list[Reply]:
    """The replies an output stands for, in order (duplicates dropped)."""
    if depth > MAX_NESTING:
        return []
    if isinstance(output, str):
        return [Reply(text=output)] if output else []
    if isinstance(output, list):
        return _unique([r for item in output for r in replies_from(item, depth + 1)])
    if not isinstance(output, dict):
        return []
    if output.get("type") == "text" and isinstance(output.get("text"), str):
        return _text_reply(output, output["text"])
    for key in ("messages", "events"):
        if isinstance(output.get(key), list):
            return replies_from(output[key], depth + 1)
    if isinstance(output.get("message"), dict):
        return replies_from(output["message"], depth + 1)
    result = output.get("result") if isinstance(output.get("result"), dict) else {}
    payload = output.get("payload") if isinstance(output.get("payload"), dict) else {}
    structured = result.get("structured_content")
    for text in (_first_text(result.get("content")),
                 json.dumps(structured) if structured is not None else None,
                 payload.get("text")):
        if isinstance(text, str) and text:
            return _text_reply(output, text)
    return _text_reply(output, output.get("text"))


def _unique(replies: list[Reply]) -> list[Reply]:
    seen: list[Reply] = []
    for reply in replies:
        if reply not in seen:
            seen.append(reply)
    return seen
