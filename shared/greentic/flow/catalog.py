"""Names of the operations the platform runs (implementations live in flow, runner, component).

The validator uses this list to tell a built-in from a component reference that a pack
must bind.
"""

ENGINE_OPERATIONS = frozenset({
    "templating.handlebars", "session.wait", "emit.response", "flow.call", "flow.goto",
    "questions",
})
RUNNER_OPERATIONS = frozenset({"state.get", "state.set", "component.exec", "mcp", "run"})
KNOWN_OPERATIONS = ENGINE_OPERATIONS | RUNNER_OPERATIONS
FLOW_REFERENCE_OPERATIONS = frozenset({"flow.call", "flow.goto"})
