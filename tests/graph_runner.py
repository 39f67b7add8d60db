"""Runs the planning graph in its own process for the kill-and-resume test.

    python tests/graph_runner.py CONFIG.json start    # a new thread with the config's brief
    python tests/graph_runner.py CONFIG.json resume   # continue from the last checkpoint
    python tests/graph_runner.py CONFIG.json approve  # answer the approval interrupt

CONFIG.json holds the thread id, the brief and the run context. Each node update is printed
as `node <name>` the moment it is streamed, so the parent can SIGKILL this process mid-run;
the last line is `done <json>` with the thread's status. With `"die_in_finalize": true` the
process SIGKILLs itself inside finalize, after the report is written and before the first
decision is recorded: the worst moment for a side effect to be repeated.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(config_path: str, mode: str) -> int:
    from langgraph.types import Command

    from graph import Context, build_graph, run_config, thread_status

    cfg = json.loads(Path(config_path).read_text())
    if cfg.get("die_in_finalize"):
        import tools.plan.decisions

        def die(*args: Any, **kwargs: Any) -> bool:
            os.kill(os.getpid(), signal.SIGKILL)
            return False

        tools.plan.decisions.DecisionStore.record = die  # type: ignore[method-assign]
    context = Context(**cfg["context"])
    app = build_graph(data_dir=Path(cfg["context"]["data_dir"]))
    config = run_config(cfg["thread_id"], context.tenant)
    if mode == "start":
        payload: Any = {"brief": cfg["brief"]}
    elif mode == "resume":
        payload = None
    elif mode == "approve":
        payload = Command(resume={"action": "approve"})
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    for update in app.stream(payload, config, context=context, stream_mode="updates"):
        for node in update:
            print(f"node {node}", flush=True)
    snapshot = app.get_state(config)
    print("done " + json.dumps({"status": thread_status(snapshot)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2]))
