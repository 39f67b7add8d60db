"""The planning graph's nodes, one module each (`nodes/<node>.py`, wired in `graph/graph.py`),
and what they share (`graph/steps.py`). A node reads the state, calls a tool (or the chat
model), and returns a partial update; no node imports another."""
