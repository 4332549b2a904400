"""Which outputs send which replies: ours and the shapes Greentic's messaging host reads."""

import pytest

from greentic.flow.replies import replies_from
from greentic.flow.turn import Reply
from greentic.types.envelope import Button


@pytest.mark.parametrize(("output", "texts"), [
    ("hi", ["hi"]),
    ({"text": "hi", "buttons": ["Yes", {"title": "No", "value": "n"}]}, ["hi"]),
    ({"type": "text", "text": "typed"}, ["typed"]),
    ({"messages": [{"type": "text", "text": "a"}, {"text": "b"}, {"text": "a"}]}, ["a", "b"]),
    ([{"text": "one"}, "two"], ["one", "two"]),
    ({"events": [{"text": "e"}]}, ["e"]),
    ({"message": {"id": "m", "text": "enveloped"}}, ["enveloped"]),
    ({"result": {"content": [{"type": "text", "text": "from mcp"}]}}, ["from mcp"]),
    ({"payload": {"text": "inner"}}, ["inner"]),
    # what Greentic's echo component answers: payload is bytes (a number array), no text
    ({"op": "messaging.send", "payload": [123, 125], "metadata": [123, 125]}, []),
    ({"value": 1}, []), (None, []), ("", []), ({"messages": []}, []),
])
def test_outputs_become_the_replies_greentic_would_send(output: object, texts: list[str]) -> None:
    assert [reply.text for reply in replies_from(output)] == texts


def test_buttons_alone_are_a_reply() -> None:
    assert replies_from({"buttons": ["Go"]}) == [Reply(text="", buttons=[Button("Go", "Go")])]


def test_deeply_nested_output_stops_instead_of_recursing_without_end() -> None:
    nested: object = {"text": "deep"}
    for _ in range(50):
        nested = [nested]
    assert replies_from(nested) == []
