"""The planning graph's wiring: planner -> clean_room -> optimizer -> measurement -> creative
-> governance -> reflection -> human_approval -> finalize, with the human's detours (confirm a
doubtful brief, relax an infeasible one, edit a plan) and governance's loop back to creative.

`graph` is compiled without a checkpointer, for `langgraph dev` and the LangGraph server,
which bring their own; `graph.build_graph()` compiles it with the durable default.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from graph.context import Context
from graph.state import InputState, State, redact_on_entry
from nodes.clean_room import clean_room
from nodes.confirm_brief import confirm_brief
from nodes.creative import creative
from nodes.finalize import finalize
from nodes.governance import governance
from nodes.human_approval import human_approval
from nodes.measurement import measurement
from nodes.optimizer import optimizer
from nodes.planner import planner
from nodes.reflection import reflection
from nodes.relax_constraints import relax_constraints


def _failed(state: State) -> bool:
    return state.status == "failed"


def after_planner(state: State) -> str:
    if _failed(state):
        return END
    return "confirm_brief" if state.status == "awaiting_brief_confirmation" else "clean_room"


def after_confirm(state: State) -> str:
    return END if _failed(state) else state.next_step or "clean_room"


def after_clean_room(state: State) -> str:
    return END if _failed(state) else "optimizer"


def after_optimizer(state: State) -> str:
    if _failed(state):
        return END
    return "relax_constraints" if state.status == "infeasible" else "measurement"


def after_relax(state: State) -> str:
    return END if _failed(state) else state.next_step or "optimizer"


def after_measurement(state: State) -> str:
    return END if _failed(state) else "creative"


def after_creative(state: State) -> str:
    return END if _failed(state) else "governance"


def after_governance(state: State) -> str:
    return END if _failed(state) else state.next_step or "reflection"


def after_reflection(state: State) -> str:
    return END if _failed(state) else "human_approval"


def after_review(state: State) -> str:
    return END if _failed(state) else state.next_step or "finalize"


def build_builder() -> StateGraph[Any, Any, Any, Any]:
    builder = StateGraph(State, context_schema=Context, input_schema=InputState)
    for node in (
        planner,
        confirm_brief,
        clean_room,
        optimizer,
        relax_constraints,
        measurement,
        creative,
        governance,
        reflection,
        human_approval,
        finalize,
    ):
        builder.add_node(node.__name__, node)
    builder.add_edge(START, "planner")
    builder.add_conditional_edges("planner", after_planner, ["confirm_brief", "clean_room", END])
    builder.add_conditional_edges("confirm_brief", after_confirm, ["clean_room", "finalize", END])
    builder.add_conditional_edges("clean_room", after_clean_room, ["optimizer", END])
    builder.add_conditional_edges(
        "optimizer", after_optimizer, ["relax_constraints", "measurement", END]
    )
    builder.add_conditional_edges(
        "relax_constraints", after_relax, ["optimizer", "clean_room", "finalize", END]
    )
    builder.add_conditional_edges("measurement", after_measurement, ["creative", END])
    builder.add_conditional_edges("creative", after_creative, ["governance", END])
    builder.add_conditional_edges("governance", after_governance, ["creative", "reflection", END])
    builder.add_conditional_edges("reflection", after_reflection, ["human_approval", END])
    builder.add_conditional_edges(
        "human_approval", after_review, ["finalize", "optimizer", "clean_room", END]
    )
    builder.add_edge("finalize", END)
    return builder


# The input channel redacts the brief's PII before LangGraph checkpoints the input.
graph = redact_on_entry(build_builder().compile(name="rmn-copilot"))
