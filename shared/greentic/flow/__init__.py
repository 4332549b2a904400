"""Flows (`.ygtc`): loader → typed IR → engine."""

from greentic.flow.engine import FlowEngine, Reply, TurnResult
from greentic.flow.loader import load_flow
from greentic.flow.model import Flow, Node, Route

__all__ = ["Flow", "FlowEngine", "Node", "Reply", "Route", "TurnResult", "load_flow"]
