"""Flows (`.ygtc`): loader → typed IR → engine."""

from greentic.flow.engine import FlowEngine, PreparedFlow
from greentic.flow.loader import Diagnostic, FlowValidationError, check_flow, load_flow
from greentic.flow.model import Flow, Node, Route
from greentic.flow.turn import (
    FlowSnapshot,
    NodeError,
    NodeOutcome,
    Operation,
    Reply,
    Turn,
    TurnResult,
)

__all__ = ["Diagnostic", "Flow", "FlowEngine", "FlowSnapshot", "FlowValidationError", "Node",
           "NodeError", "NodeOutcome", "Operation", "PreparedFlow", "Reply", "Route", "Turn",
           "TurnResult", "check_flow", "load_flow"]
