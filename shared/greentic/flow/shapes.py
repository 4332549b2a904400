"""The argument shapes of built-in operations that come in more than one spelling."""

from typing import Any


def flow_reference(args: Any) -> Any:
    """The flow a flow.call / flow.goto names: `{flow: id}`, `{flow_id: id}` or a bare id."""
    if isinstance(args, dict):
        return args.get("flow", args.get("flow_id"))
    return args


def is_expression(target: str) -> bool:
    """A reference computed at run time (`{{…}}` or a dotted path such as `parameters.x`)."""
    return "{{" in target or "." in target


def question_list(args: Any) -> Any:
    """A questions node's list: `questions:` (ours) or `fields:` (Greentic's config flows,
    `type` for `answer_type`)."""
    if not isinstance(args, dict):
        return None
    if "questions" in args:
        return args["questions"]
    fields = args.get("fields")
    if not isinstance(fields, list):
        return None
    return [{**field, "answer_type": field.get("answer_type", field.get("type", "text"))}
            if isinstance(field, dict) else field for field in fields]
