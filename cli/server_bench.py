"""Load on the HTTP graph API: the planning graph served on a loopback port, driven by
concurrent `langgraph-sdk` clients of several tenants. Each plan goes brief -> (brief
confirmation, answered "approve") -> approval interrupt -> approve -> final; the figures are the
throughput, the latency from the request to the approval interrupt, and every plan that did not
end approved (an error) or did not end before the deadline (lost).

    from cli.server_bench import run_server_bench
    run_server_bench(clients=20, runs=40, model="tiny")
"""

from __future__ import annotations

import secrets
import statistics
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tools.errors import RMNError

# One brief per tenant, sized well inside what its brand's lines can absorb in the bench's
# market, so every plan can reach an approval.
BRIEFS: dict[str, str] = {
    "acme": "Allocate $800k across Alpha and Beta to maximize incremental margin",
    "globex": "Spend $500k on Alpha and Gamma to maximize incremental revenue",
    "initech": "Plan $400k across Alpha and Delta to maximize incremental margin",
    "brand_x": "Put $700k on Alpha, Beta and Gamma for incremental revenue, 10% for experiments",
}
MAX_CLIENTS = 64
MAX_RUNS = 400
# Interrupts a bench client answers on its way to the approval: the brief as read is right.
PASS_THROUGH = frozenset({"confirm_brief"})
MAX_ANSWERS = 6  # a brief confirmation, then the approval; a plan never loops for ever


class BenchConfigError(RMNError):
    kind = "bench_config"


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (1..99) with linear interpolation; None without values."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[min(max(round(q) - 1, 0), 98)]


class Tally:
    """What the clients saw, shared between their threads."""

    def __init__(self, runs: int) -> None:
        self.lock = threading.Lock()
        self.runs = runs
        self.taken = 0
        self.completed = 0
        self.to_approval: list[float] = []
        self.to_final: list[float] = []
        self.errors: list[str] = []
        self.node_seconds: dict[str, list[float]] = {}

    def take(self) -> int | None:
        with self.lock:
            if self.taken >= self.runs:
                return None
            self.taken += 1
            return self.taken - 1

    def summary(self, seconds: float) -> dict[str, Any]:
        lat = sorted(self.to_approval)
        fin = sorted(self.to_final)

        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 3)

        return {
            "seconds": round(seconds, 2),
            "completed": self.completed,
            "errors": len(self.errors),
            "lost": self.runs - self.completed - len(self.errors),
            "plans_per_min": round(60 * self.completed / seconds, 2) if seconds > 0 else 0.0,
            "latency_to_approval_s": {
                "p50": r(percentile(lat, 50)),
                "p95": r(percentile(lat, 95)),
                "max": r(lat[-1] if lat else None),
                "n": len(lat),
            },
            "latency_to_final_s": {"p50": r(percentile(fin, 50)), "p95": r(percentile(fin, 95))},
            # Where a plan's time goes: the graph's own per-node timings, mean over plans.
            "node_seconds_mean": {
                node: round(statistics.fmean(v), 2) for node, v in sorted(self.node_seconds.items())
            },
            "error_samples": self.errors[:5],
        }


def one_plan(client: Any, assistant: str, brief: str, tally: Tally, deadline: float) -> None:
    """One plan from brief to approval and on to its end; one that does not end approved, or
    ends after the deadline, raises."""
    started = time.perf_counter()
    thread_id = client.threads.create()["thread_id"]
    out = client.runs.wait(thread_id, assistant, input={"brief": brief, "brand_id": None})
    for _ in range(MAX_ANSWERS):
        pending = out.get("__interrupt__") or []
        kind = pending[0]["value"].get("kind") if pending else None
        if kind == "approval":
            with tally.lock:
                tally.to_approval.append(time.perf_counter() - started)
        elif kind not in PASS_THROUGH:
            break
        out = client.runs.wait(thread_id, assistant, command={"resume": {"action": "approve"}})
    if out.get("status") != "approved" or out.get("__interrupt__"):
        problem = out.get("__error__") or out.get("error") or out.get("__interrupt__")
        raise RuntimeError(f"plan ended {out.get('status')!r}: {str(problem)[:200]}")
    if time.perf_counter() > deadline:
        raise TimeoutError("plan finished after the deadline")
    with tally.lock:
        tally.to_final.append(time.perf_counter() - started)
        tally.completed += 1
        for node, seconds in (out.get("timings") or {}).items():
            tally.node_seconds.setdefault(node, []).append(float(seconds))


def drive(
    url: str,
    keys: Mapping[str, str],
    briefs: Mapping[str, str],
    *,
    clients: int,
    runs: int,
    timeout_s: float,
    assistant: str = "rmn",
) -> dict[str, Any]:
    """`clients` threads share `runs` plans; plan i is for the i-th tenant of `keys`
    (key -> tenant) in turn, with that tenant's brief. Every failure is counted, none stops
    the others; plans not started or not finished by the deadline are lost."""
    import httpx
    from langgraph_sdk import get_sync_client

    tenants = sorted(set(keys.values()))
    key_of = {tenant: key for key, tenant in keys.items()}
    tally = Tally(runs)
    started = time.perf_counter()
    deadline = started + timeout_s
    timeout = httpx.Timeout(timeout_s + 30, connect=10)

    def client_loop() -> None:
        sdk = {t: get_sync_client(url=url, api_key=key_of[t], timeout=timeout) for t in tenants}
        while time.perf_counter() < deadline:
            index = tally.take()
            if index is None:
                return
            tenant = tenants[index % len(tenants)]
            try:
                one_plan(sdk[tenant], assistant, briefs[tenant], tally, deadline)
            except Exception as err:
                with tally.lock:
                    tally.errors.append(f"{tenant}: {type(err).__name__}: {str(err)[:300]}")

    pool = [threading.Thread(target=client_loop, daemon=True) for _ in range(clients)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(max(0.0, deadline - time.perf_counter()) + 60)
    return tally.summary(time.perf_counter() - started)


def run_server_bench(
    *,
    clients: int = 20,
    runs: int = 40,
    model: str = "tiny",
    workers: int = 4,
    timeout_s: float = 600.0,
    data_dir: Path | None = None,
    world_days: int = 90,
    world_events: int = 200_000,
) -> dict[str, Any]:
    """Serve the planning graph on 127.0.0.1 (a free port), run one untimed warm-up plan, then
    `runs` plans from `clients` concurrent clients, and report. `data_dir` None: a seeded
    market (`world_days`, `world_events`) is built in a temp dir and removed afterwards."""
    if not 1 <= clients <= MAX_CLIENTS:
        raise BenchConfigError(f"clients must be 1..{MAX_CLIENTS}, got {clients}")
    if not 1 <= runs <= MAX_RUNS:
        raise BenchConfigError(f"runs must be 1..{MAX_RUNS}, got {runs}")
    if timeout_s <= 0:
        raise BenchConfigError(f"timeout must be positive, got {timeout_s}")
    from langgraph_sdk import get_sync_client

    from server import create_rmn_app, rmn_settings, serve_in_thread
    from tools.tenants import KeyRing

    with tempfile.TemporaryDirectory(prefix="rmn-server-bench-") as tmp:
        root = Path(tmp)
        if data_dir is None:
            from tools.pipeline import WorldSpec, ensure_world

            data_dir = root / "data"
            ensure_world(data_dir, WorldSpec(days=world_days, events=world_events))
        keys = {f"bench-{t}-{secrets.token_hex(12)}": t for t in BRIEFS}
        settings = rmn_settings(
            root / "server",
            workers=workers,
            # A tenant's clients share one key; the bench measures the graph, not the limiter.
            rate_per_s=1000.0,
            rate_burst=10_000,
            max_queued_runs=max(256, 2 * clients),
            server_context={"model": model, "data_dir": str(data_dir)},
        )
        with serve_in_thread(create_rmn_app(KeyRing.from_keys(keys), settings)) as url:
            # Untimed: loading the model, opening the policy index and fitting the first
            # curves are one-time costs, not the steady state the figures describe.
            warm = time.perf_counter()
            key = next(iter(keys))
            client = get_sync_client(url=url, api_key=key, timeout=timeout_s + 30)
            one_plan(client, "rmn", BRIEFS[keys[key]], Tally(1), warm + timeout_s)
            warmup_s = time.perf_counter() - warm
            result = drive(url, keys, BRIEFS, clients=clients, runs=runs, timeout_s=timeout_s)
    return {
        "clients": clients,
        "runs": runs,
        "workers": workers,
        "model": model,
        "warmup_s": round(warmup_s, 2),
        **result,
    }
