"""MCP tools served by components (`list-tools`, `call-tool` with JSON arguments)."""

from greentic.mcp.tools import call_tool, describe_tools, list_tools

__all__ = ["call_tool", "describe_tools", "list_tools"]
