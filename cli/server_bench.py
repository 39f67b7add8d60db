"""Load on the HTTP graph API: the planning graph served on a loopback port, driven by
concurrent `langgraph-sdk` clients of several tenants. Each plan goes brief -> (brief
confirmation, answered "approve") -> approval interrupt -> approve -> final; the figures are the
throughput, the latency from the request to the approval interrupt, and every plan that did not
end approved (an error) or did not end before the deadline (lost).

The noisy-neighbour mode (`run_flood_bench`, `rmn bench server --flood`): one tenant floods the
server with runs at a fixed request rate while another tenant makes a few plans one after the
other; the figures are the other tenant's p50 latency to the approval interrupt under the flood
against the same plans on an idle server (target: within 2x), and how the flood's requests were
answered (accepted, 429, 503).

    from cli.server_bench import run_server_bench, run_flood_bench
    run_server_bench(clients=20, runs=40, model="tiny")
    run_flood_bench(neighbour_runs=5, model="none")
"""

from __future__ import annotations

import secrets
import statistics
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
from langgraph_sdk import get_sync_client

from cli.common import machine
from graph.serving.auth import KeyRing
from server import TenantPolicies, TenantPolicy, create_rmn_app, rmn_settings, serve_in_thread
from tools.errors import RMNError
from tools.plan.questions import question_of
from tools.world import WorldSpec, ensure_world

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
# A bench client both starts and approves its plans: separation of duties (one key may not
# approve the plan it started) is a policy under test elsewhere, not the load measured here.
NO_SEPARATION = TenantPolicies(default=TenantPolicy(separation_of_duties=False))
MAX_FLOOD_RPS = 500.0
# (the tenant that floods, the tenant whose latency is measured)
FLOOD_TENANTS = ("acme", "globex")


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
        kind = (question_of(pending[0]["value"]) or {}).get("kind") if pending else None
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
    url: str | Sequence[str],
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
    the others; plans not started or not finished by the deadline are lost. Several URLs
    (replicas): client j talks to URL j modulo their number."""
    urls = [url] if isinstance(url, str) else list(url)
    tenants = sorted(set(keys.values()))
    key_of = {tenant: key for key, tenant in keys.items()}
    tally = Tally(runs)
    started = time.perf_counter()
    deadline = started + timeout_s
    timeout = httpx.Timeout(timeout_s + 30, connect=10)

    def client_loop(base: str) -> None:
        sdk = {t: get_sync_client(url=base, api_key=key_of[t], timeout=timeout) for t in tenants}
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

    pool = [
        threading.Thread(target=client_loop, args=(urls[j % len(urls)],), daemon=True)
        for j in range(clients)
    ]
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
    with tempfile.TemporaryDirectory(prefix="rmn-server-bench-") as tmp:
        root = Path(tmp)
        if data_dir is None:
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
            max_queued_per_tenant=max(32, 2 * clients),
            policies=NO_SEPARATION,
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
        "machine": machine(),
    }


# --- noisy neighbour ----------------------------------------------------------------------------


class FloodTally:
    """How the flood's requests were answered, shared between its threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.codes: dict[int, int] = {}
        self.other_errors: list[str] = []

    def count(self, code: int) -> None:
        with self.lock:
            self.codes[code] = self.codes.get(code, 0) + 1

    def summary(self) -> dict[str, Any]:
        accepted = sum(n for c, n in self.codes.items() if 200 <= c < 300)
        refused_429, refused_503 = self.codes.get(429, 0), self.codes.get(503, 0)
        others = sum(self.codes.values()) - accepted - refused_429 - refused_503
        return {
            "sent": sum(self.codes.values()) + len(self.other_errors),
            "accepted": accepted,
            "refused_429": refused_429,
            "refused_503": refused_503,
            "other_errors": others + len(self.other_errors),
            "error_samples": self.other_errors[:5],
        }


def _flood(
    url: str, key: str, brief: str, assistant: str, rps: float, stop: threading.Event,
    tally: FloodTally,
) -> None:  # fmt: skip
    """Send background runs at `rps` requests per second until `stop`, whatever the answers:
    a flood does not back off on 429 or 503."""
    body = {"assistant_id": assistant, "input": {"brief": brief, "brand_id": None}}
    with httpx.Client(base_url=url, headers={"x-api-key": key}, timeout=30) as http:
        due = time.perf_counter()
        while not stop.is_set():
            try:
                tally.count(http.post("/runs", json=body).status_code)
            except httpx.HTTPError as err:
                with tally.lock:
                    tally.other_errors.append(f"{type(err).__name__}: {str(err)[:200]}")
            due += 1.0 / rps
            stop.wait(max(0.0, due - time.perf_counter()))


def _neighbour(url: str, key: str, brief: str, runs: int, deadline: float, assistant: str) -> Tally:
    """`runs` plans one after the other, each to the approval and on to its end."""
    tally = Tally(runs)
    client = get_sync_client(url=url, api_key=key, timeout=max(1.0, deadline - time.time()) + 30)
    for _ in range(runs):
        try:
            one_plan(client, assistant, brief, tally, time.perf_counter() + deadline - time.time())
        except Exception as err:
            tally.errors.append(f"{type(err).__name__}: {str(err)[:300]}")
    return tally


def drive_flood(
    url: str,
    *,
    flood_key: str,
    flood_brief: str,
    neighbour_key: str,
    neighbour_brief: str,
    neighbour_runs: int,
    flood_clients: int = 4,
    flood_rps: float = 40.0,
    timeout_s: float = 600.0,
    assistant: str = "rmn",
) -> dict[str, Any]:
    """The neighbour's plans while `flood_clients` threads send the flood tenant's runs at
    `flood_rps` in all; the flood stops when the neighbour is done (or at the deadline)."""
    if not 0 < flood_rps <= MAX_FLOOD_RPS:
        raise BenchConfigError(f"flood rate must be in (0, {MAX_FLOOD_RPS}], got {flood_rps}")
    tally, stop = FloodTally(), threading.Event()
    floods = [
        threading.Thread(
            target=_flood,
            args=(url, flood_key, flood_brief, assistant, flood_rps / flood_clients, stop, tally),
            daemon=True,
        )
        for _ in range(flood_clients)
    ]
    for thread in floods:
        thread.start()
    time.sleep(min(2.0, timeout_s / 10))  # the flood first fills its queue
    started = time.perf_counter()
    try:
        neighbour = _neighbour(
            url, neighbour_key, neighbour_brief, neighbour_runs, time.time() + timeout_s, assistant
        )
    finally:
        stop.set()
        for thread in floods:
            thread.join(60)
    summary = neighbour.summary(time.perf_counter() - started)
    return {
        "neighbour": {
            "completed": summary["completed"],
            "errors": summary["errors"],
            "latency_s": summary["latency_to_approval_s"],
            "error_samples": summary["error_samples"],
        },
        "flood": tally.summary(),
    }


def run_flood_bench(
    *,
    neighbour_runs: int = 5,
    flood_clients: int = 4,
    flood_rps: float = 40.0,
    model: str = "none",
    workers: int = 2,
    timeout_s: float = 600.0,
    data_dir: Path | None = None,
    world_days: int = 90,
    world_events: int = 200_000,
) -> dict[str, Any]:
    """Serve the planning graph on 127.0.0.1 with the server's default limits (rate, queue per
    tenant, running per tenant), warm it up, time the neighbour's plans on the idle server,
    then again under acme's flood; report both p50s, their ratio and the flood's answers."""
    if not 1 <= neighbour_runs <= 50:
        raise BenchConfigError(f"neighbour runs must be 1..50, got {neighbour_runs}")
    if not 1 <= flood_clients <= MAX_CLIENTS:
        raise BenchConfigError(f"flood clients must be 1..{MAX_CLIENTS}, got {flood_clients}")
    flood_tenant, neighbour_tenant = FLOOD_TENANTS
    with tempfile.TemporaryDirectory(prefix="rmn-flood-bench-") as tmp:
        root = Path(tmp)
        if data_dir is None:
            data_dir = root / "data"
            ensure_world(data_dir, WorldSpec(days=world_days, events=world_events))
        keys = {f"bench-{t}-{secrets.token_hex(12)}": t for t in (flood_tenant, neighbour_tenant)}
        key_of = {t: k for k, t in keys.items()}
        settings = rmn_settings(
            root / "server",
            workers=workers,
            policies=NO_SEPARATION,
            server_context={"model": model, "data_dir": str(data_dir)},
        )
        app = create_rmn_app(KeyRing.from_keys(keys), settings)
        with serve_in_thread(app) as url:
            deadline = time.time() + timeout_s
            warm = time.perf_counter()
            for tenant in (flood_tenant, neighbour_tenant):  # fit both tenants' curves first
                _neighbour(url, key_of[tenant], BRIEFS[tenant], 1, deadline, "rmn")
            warmup_s = time.perf_counter() - warm
            idle = _neighbour(
                url, key_of[neighbour_tenant], BRIEFS[neighbour_tenant], neighbour_runs,
                deadline, "rmn",
            ).summary(1.0)  # fmt: skip
            flooded = drive_flood(
                url,
                flood_key=key_of[flood_tenant],
                flood_brief=BRIEFS[flood_tenant],
                neighbour_key=key_of[neighbour_tenant],
                neighbour_brief=BRIEFS[neighbour_tenant],
                neighbour_runs=neighbour_runs,
                flood_clients=flood_clients,
                flood_rps=flood_rps,
                timeout_s=max(1.0, deadline - time.time()),
            )
            flooded["flood"]["gave_way_s"] = round(app.state.server.yielded_s[flood_tenant], 2)
    return _flood_result(settings, idle, flooded, model, flood_clients, flood_rps, neighbour_runs,
                         warmup_s)  # fmt: skip


def _flood_result(
    settings: Any,
    idle: dict[str, Any],
    flooded: dict[str, Any],
    model: str,
    flood_clients: int,
    flood_rps: float,
    neighbour_runs: int,
    warmup_s: float,
) -> dict[str, Any]:
    """The flood bench's figures: both p50s and their ratio, the limits it ran under, how the
    flood was answered, and the machine."""
    flood_tenant, neighbour_tenant = FLOOD_TENANTS
    workers = settings.workers
    idle_p50 = idle["latency_to_approval_s"]["p50"]
    flood_p50 = flooded["neighbour"]["latency_s"]["p50"]
    ratio = round(flood_p50 / idle_p50, 2) if idle_p50 and flood_p50 else None
    return {
        "mode": "flood",
        "model": model,
        "workers": workers,
        "running_per_tenant": settings.running_cap(),
        "queued_per_tenant": settings.max_queued_per_tenant,
        "rate_per_tenant": {"per_s": settings.rate_per_s, "burst": settings.rate_burst},
        "flood": {
            "tenant": flood_tenant,
            "clients": flood_clients,
            "rps": flood_rps,
            **flooded["flood"],
        },  # fmt: skip
        "neighbour": {
            "tenant": neighbour_tenant,
            "runs": neighbour_runs,
            "idle_p50_s": idle_p50,
            "flood_p50_s": flood_p50,
            "idle_latency_s": idle["latency_to_approval_s"],
            "flood_latency_s": flooded["neighbour"]["latency_s"],
            "errors": idle["errors"] + flooded["neighbour"]["errors"],
            "error_samples": idle["error_samples"] + flooded["neighbour"]["error_samples"],
        },
        "p50_ratio": ratio,
        "target_ratio": 2.0,
        "met": ratio is not None and ratio <= 2.0,
        "warmup_s": round(warmup_s, 2),
        "machine": machine(),
    }
