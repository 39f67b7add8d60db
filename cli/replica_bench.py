"""`rmn bench server --replicas N`: the same loopback load as `rmn bench server` (each plan
brief -> approval question -> approve -> final, concurrent SDK clients of several tenants),
served first by one `rmn serve` process and then by N, all on one PostgreSQL database
(`--database-url`, else a throwaway cluster started with the distribution's `initdb`, as the
tests do). Prints throughput and p95 latency to the approval question for 1 vs N replicas, and
the machine (cores, CPU flags): on one machine the replicas share its cores, so the figure says
what the lease and polling machinery costs and what another process's GIL buys, not what N
machines would.

    from cli.replica_bench import run_replica_bench
    run_replica_bench(replicas=2, clients=4, runs=8)

The default model is `none` (the graph's own work, no generation): with a model each replica
loads its own copy, and on 2 shared cores the first full run took over 5 minutes.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
from langgraph_sdk import get_sync_client

from cli.common import machine
from cli.server_bench import BRIEFS, NO_SEPARATION, BenchConfigError, Tally, drive, one_plan
from tools.paths import PROJECT_ROOT
from tools.storage import ENV_URL, is_postgres_url
from tools.world import WorldSpec, ensure_world

MAX_REPLICAS = 4
START_TIMEOUT_S = 120.0

__all__ = ["run_replica_bench"]


@contextmanager
def _database(url: str | None) -> Iterator[str]:
    """The given Postgres URL (a fresh database is not made in it: its tables are reused), or a
    throwaway cluster; a clear error when neither is there."""
    if url:
        if not is_postgres_url(url):
            raise BenchConfigError(f"--database-url must be a postgresql:// URL, got {url[:32]!r}")
        yield url
        return
    from tools.storage.throwaway import new_database, temporary_postgres

    try:
        with temporary_postgres(port=54339) as cluster:
            yield new_database(cluster, "bench")
    except RuntimeError as err:
        raise BenchConfigError(
            f"--replicas needs PostgreSQL: pass --database-url postgresql://..., or install "
            f"the postgresql package for a throwaway cluster ({err})"
        ) from None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _replica(root: Path, name: str, args: list[str], env: Mapping[str, str]) -> Iterator[str]:
    """One `rmn serve` on a free loopback port, its own state folder; its URL once it answers.
    Stopped with SIGTERM (its runs are released to the others) on exit."""
    port = _free_port()
    log = root / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1", "--port",
             str(port), "--log-level", "warning", "--state-dir", str(root / name), *args],
            cwd=PROJECT_ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ok(proc, url, log)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _start_all(stack: ExitStack, replicas: list[AbstractContextManager[str]]) -> list[str]:
    """Start the replicas at once (each start loads the graph, seconds on 2 cores); each one
    that started is stopped by `stack`, also when another did not start."""
    with ThreadPoolExecutor(len(replicas)) as pool:
        futures = [pool.submit(replica.__enter__) for replica in replicas]
        wait(futures)
    for replica, future in zip(replicas, futures, strict=True):
        if future.exception() is None:
            stack.push(replica.__exit__)
    return [future.result() for future in futures]


def _wait_ok(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise BenchConfigError(f"rmn serve did not start: {log.read_text()[-1500:]}")
        try:
            if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.25)


def _warm(url: str, keys: Mapping[str, str], timeout_s: float) -> float:
    """One untimed plan on a replica (model load, policy index, first curves); its seconds."""
    started = time.perf_counter()
    key, tenant = next(iter(keys.items()))
    client = get_sync_client(url=url, api_key=key, timeout=timeout_s + 30)
    one_plan(client, "rmn", BRIEFS[tenant], Tally(1), time.perf_counter() + timeout_s)
    return round(time.perf_counter() - started, 2)


def _figures(result: dict[str, Any]) -> dict[str, Any]:
    lat = result["latency_to_approval_s"]
    return {
        "plans_per_min": result["plans_per_min"],
        "p50_to_approval_s": lat["p50"],
        "p95_to_approval_s": lat["p95"],
        "completed": result["completed"],
        "errors": result["errors"],
        "lost": result["lost"],
        "seconds": result["seconds"],
        "error_samples": result["error_samples"],
    }


def run_replica_bench(
    *,
    replicas: int = 2,
    clients: int = 4,
    runs: int = 8,
    model: str = "none",
    workers: int = 2,
    timeout_s: float = 45.0,
    database_url: str | None = None,
    data_dir: Path | None = None,
) -> dict[str, Any]:
    """The load on 1 replica, then on `replicas`, on one Postgres; each replica is warmed up
    (untimed) before it takes load."""
    if not 2 <= replicas <= MAX_REPLICAS:
        raise BenchConfigError(f"replicas must be 2..{MAX_REPLICAS}, got {replicas}")
    keys = {f"bench-{t}-{secrets.token_hex(12)}": t for t in ("acme", "globex")}
    with _database(database_url) as url, tempfile.TemporaryDirectory(prefix="rmn-rb-") as tmp:
        root = Path(tmp)
        if data_dir is None:
            data_dir = root / "data"
            ensure_world(data_dir, WorldSpec(days=60, events=50_000))
        policy = root / "policy.json"
        policy.write_text(NO_SEPARATION.model_dump_json())
        env = {ENV_URL: url, "RMN_API_KEYS": ",".join(f"{k}:{t}" for k, t in keys.items())}
        args = ["--data-dir", str(data_dir), "--model", model, "--workers", str(workers),
                "--policy", str(policy), "--rate", "1000", "--burst", "10000"]  # fmt: skip
        figures = {}
        with ExitStack() as stack:
            urls = _start_all(stack, [_replica(root, f"r{i}", args, env) for i in range(replicas)])
            with ThreadPoolExecutor(len(urls)) as pool:  # both at once: the bench stays short
                warmups = list(pool.map(lambda url: _warm(url, keys, timeout_s), urls))
            for n in (1, replicas):  # the others stay idle while one takes the load
                load = drive(urls[:n], keys, BRIEFS, clients=clients, runs=runs,
                             timeout_s=timeout_s)  # fmt: skip
                figures[str(n)] = _figures(load)
    one, many = figures["1"], figures[str(replicas)]
    ratio = many["plans_per_min"] / one["plans_per_min"] if one["plans_per_min"] else None
    return {
        "mode": "replicas",
        "replicas": replicas,
        "clients": clients,
        "runs": runs,
        "model": model,
        "workers_per_replica": workers,
        "database": "given" if database_url else "throwaway cluster",
        "by_replicas": figures,
        "throughput_ratio": round(ratio, 2) if ratio else None,
        "warmup_s": warmups,
        "machine": machine(),
    }
