"""The `questions` operation: asks its questions one per turn, validates each answer, and
continues with the answers as output (and in `input.<id>` for the nodes after it)."""

import re
from typing import Any

from greentic.flow.model import Node
from greentic.flow.shapes import question_list
from greentic.flow.turn import NodeOutcome, Turn

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_YES = {"yes", "y", "true", "1", "ja", "oui", "si"}
_NO = {"no", "n", "false", "0", "nein", "non"}


def parse_answer(question: dict[str, Any], text: str) -> tuple[Any, str | None]:
    """(value, None) for a valid answer, else (None, what to tell the user)."""
    kind = str(question.get("answer_type", "text"))
    text = text.strip()
    if not text:
        return None, "Please type an answer."
    if kind in ("number", "float"):
        try:
            return float(text.replace(",", ".")), None
        except ValueError:
            return None, "Please answer with a number."
    if kind in ("integer", "int"):
        return (int(text), None) if re.fullmatch(r"[+-]?\d+", text) else \
            (None, "Please answer with a whole number.")
    if kind in ("boolean", "bool", "yes_no"):
        lowered = text.lower()
        if lowered in _YES | _NO:
            return lowered in _YES, None
        return None, "Please answer yes or no."
    if kind == "email":
        return (text, None) if _EMAIL.fullmatch(text) else \
            (None, "Please give a valid e-mail address.")
    if kind == "choice":
        options = [str(o) for o in question.get("options", [])]
        for option in options:
            if option.lower() == text.lower():
                return option, None
        return None, f"Please choose one of: {', '.join(options)}."
    return text, None


def _prompt(question: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    output: dict[str, Any] = {"text": (prefix + "\n" if prefix else "") + str(question["prompt"])}
    if question.get("answer_type") == "choice":
        output["buttons"] = [str(o) for o in question.get("options", [])]
    return output


async def ask_questions(node: Node, rendered: Any, turn: Turn) -> NodeOutcome:
    questions: list[dict[str, Any]] = question_list(rendered)
    progress = turn.state.setdefault("questions", {}).setdefault(
        node.id, {"index": 0, "answers": {}})
    if turn.resumed_node == node.id and progress["index"] < len(questions):
        question = questions[progress["index"]]
        value, problem = parse_answer(question, str(turn.envelope.text or
                                                    turn.envelope.value or ""))
        if problem is not None:
            return NodeOutcome(_prompt(question, problem), wait=True, resume_at=node.id)
        progress["answers"][question["id"]] = value
        progress["index"] += 1
    if progress["index"] < len(questions):
        welcome = str(rendered.get("welcome") or "") if progress["index"] == 0 else ""
        return NodeOutcome(_prompt(questions[progress["index"]], welcome), wait=True,
                           resume_at=node.id)
    answers = turn.state["questions"].pop(node.id)["answers"]
    if not turn.state["questions"]:
        del turn.state["questions"]
    turn.state.setdefault("answers", {}).update(answers)
    turn.context["input"].update(answers)
    return NodeOutcome(answers)
