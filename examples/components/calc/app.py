"""calc: an MCP-style tool component (list-tools / call-tool with JSON arguments)."""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.tools import Tool

TOOLS = [
    Tool(name="add", description="Add two numbers",
         input_schema=json.dumps({"type": "object", "properties": {
             "a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]})),
    Tool(name="shout", description="Uppercase a text",
         input_schema=json.dumps({"type": "object", "properties": {"text": {"type": "string"}},
                                  "required": ["text"]})),
]


class Tools(exports.Tools):
    def list_tools(self) -> list[Tool]:
        return TOOLS

    def call_tool(self, name: str, arguments_json: str) -> str:
        try:
            arguments = json.loads(arguments_json or "{}")
            if name == "add":
                total = float(arguments["a"]) + float(arguments["b"])
                return json.dumps({"text": f"{total:g}", "sum": total})
            if name == "shout":
                return json.dumps({"text": str(arguments["text"]).upper()})
        except (KeyError, TypeError, ValueError) as exc:
            raise Err(f"bad arguments for {name}: {exc}") from None
        raise Err(f"no tool named {name!r}")
