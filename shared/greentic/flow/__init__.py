"""Flows (`.ygtc`): loader → typed IR → engine."""

from greentic.flow.engine import (
    FlowEngine,
    FlowSnapshot,
    NodeOutcome,
    Operation,
    PreparedFlow,
    Reply,
    Turn,
    TurnResult,
)
from greentic.flow.loader import load_flow
from greentic.flow.model import Flow, Node, Route

__all__ = ["Flow", "FlowEngine", "FlowSnapshot", "Node", "NodeOutcome", "Operation",
           "PreparedFlow", "Reply", "Route", "Turn", "TurnResult", "load_flow"]
