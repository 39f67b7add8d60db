"""`rmn serve`: the planning graph over HTTP (LangGraph Server API: server.py, graph/serving/);
`rmn keys add|list`: API keys (with roles) in a keys file; `rmn bench server`: load on a
loopback server, and the noisy-neighbour figure (`--flood`).

The serving modules load inside the commands, after `ensure_project_importable`, and keep
`rmn --help` fast."""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import JsonOption, emit, user_errors
from tools.errors import RMNError
from tools.paths import PROJECT_ROOT
from tools.paths import data_dir as default_data_dir

LOOPBACK = "127.0.0.1"
ROLES = ("planner", "approver", "admin")


class ServeOptionError(RMNError):
    kind = "bad_option"


def finite(name: str, value: float) -> float:
    """Click reads `inf` as a float, and a range with only a lower bound lets it through."""
    if not math.isfinite(value):
        raise ServeOptionError(f"{name} must be a finite number, got {value}", option=name)
    return value


keys_app = typer.Typer(help="API keys for `rmn serve` (stored hashed).", no_args_is_help=True)


def ensure_project_importable() -> None:
    """`server.py`, `graph/` and `nodes/` sit at the repository root; an install made before
    they existed does not map them, so put the root on the path when they are missing."""
    if importlib.util.find_spec("server") is None or importlib.util.find_spec("graph") is None:
        sys.path.insert(0, str(PROJECT_ROOT))


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = LOOPBACK,
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8123,
    keys: Annotated[
        Path | None,
        typer.Option(help="Keys file (see `rmn keys add`); RMN_API_KEYS adds 'key:tenant,...'."),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(help="Threads, runs and checkpoints (SQLite); default <data>/server."),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Market data the graph plans on; default RMN_DATA_DIR.")
    ] = None,
    model: Annotated[
        str, typer.Option(help="smollm2 (bundled model), tiny (random, for tests) or none.")
    ] = "smollm2",
    workers: Annotated[int, typer.Option(min=1, max=32, help="Runs executed at once.")] = 4,
    tenant: Annotated[
        str, typer.Option(help="With no keys configured: the tenant every request acts as.")
    ] = "acme",
    rate: Annotated[
        float, typer.Option(min=0.01, help="Requests per second per tenant (all its keys).")
    ] = 20.0,
    burst: Annotated[int, typer.Option(min=1, help="Requests a tenant may burst.")] = 60,
    queue_per_tenant: Annotated[
        int, typer.Option(min=1, help="Runs a tenant may have queued or running (then 429).")
    ] = 32,
    running_per_tenant: Annotated[
        int | None,
        typer.Option(min=1, help="Runs a tenant may have running at once; default workers/2."),
    ] = None,
    threads_per_tenant: Annotated[
        int, typer.Option(min=1, help="Threads a tenant may keep (then 429).")
    ] = 10_000,
    policy: Annotated[
        Path | None,
        typer.Option(
            help="Tenant policy file (JSON): separation of duties and its budget threshold, "
            "auto-approval and its confidence; default: separation above $100,000, no "
            "auto-approval."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the planning graph over HTTP for `langgraph-sdk`, RemoteGraph and curl."""
    with user_errors(False):
        import uvicorn

        ensure_project_importable()
        from graph.serving.auth import ENV_VAR, KeyRing
        from graph.serving.policy import TenantPolicies, load_policies
        from server import create_rmn_app, rmn_settings

        finite("--rate", rate)
        policies = load_policies(policy) if policy is not None else TenantPolicies()
        ring = KeyRing.load(env=os.environ.get(ENV_VAR), path=keys)
        host = _announce_keys(ring, host, tenant)
        data = data_dir or default_data_dir()
        settings = rmn_settings(
            state_dir or data / "server",
            workers=workers,
            rate_per_s=rate,
            rate_burst=burst,
            max_queued_per_tenant=queue_per_tenant,
            max_running_per_tenant=running_per_tenant,
            max_threads_per_tenant=threads_per_tenant,
            policies=policies,
            open_tenant=tenant,
            server_context=rmn_server_context(model, data),
        )
        app = create_rmn_app(ring, settings)
        typer.echo(f"serving on http://{host}:{port} (API docs at /docs)", err=True)
        uvicorn.run(app, host=host, port=port, log_level=log_level)


def _announce_keys(ring: Any, host: str, tenant: str) -> str:
    """Say which keys serve; with none, the host to listen on is loopback whatever was asked."""
    from graph.serving.auth import ENV_VAR, is_loopback

    if ring:
        typer.echo(f"{len(ring)} API key(s) for tenants {', '.join(ring.tenants())}", err=True)
        return host
    if not is_loopback(host):
        typer.echo(
            f"no API keys configured ({ENV_VAR} or --keys): listening on {LOOPBACK} only, "
            f"not {host}",
            err=True,
        )
        host = LOOPBACK
    typer.echo(f"no API keys configured: loopback clients only, all as tenant {tenant!r}", err=True)
    return host


def rmn_server_context(model: str, data: Path) -> dict[str, Any]:
    """Context fields the server decides for every run (a client cannot set them)."""
    return {"model": model, "data_dir": str(data)}


@keys_app.command("add")
def keys_add(
    tenant: Annotated[str, typer.Argument(help="Tenant id the key acts for, e.g. acme.")],
    keys: Annotated[Path, typer.Option(help="Keys file; created if missing.")] = Path(
        "rmn-keys.json"
    ),
    label: Annotated[str | None, typer.Option(help="A note to tell keys apart.")] = None,
    role: Annotated[
        str,
        typer.Option(
            help="planner (plans), approver (approves), admin (everything, deletes threads)."
        ),
    ] = "admin",
    data_dir: Annotated[
        Path | None, typer.Option(help="The data directory whose catalog names the brands.")
    ] = None,
    as_json: bool = JsonOption,
) -> None:
    """Make a new key for TENANT with ROLE, store its digest, and print the key (shown only
    now). TENANT must own a brand (`owner_tenant` in a brand.yaml of the catalog)."""
    with user_errors(as_json):
        ensure_project_importable()
        from graph.serving.auth import add_key, check_tenant
        from tools.catalog import catalog_root
        from tools.paths import use_catalog
        from tools.policy.ownership import tenant_brands

        with use_catalog(catalog_root(data_dir or default_data_dir())):
            owned = tenant_brands(tenant)

        check_tenant(tenant, "rmn keys add")
        if role not in ROLES:
            raise ServeOptionError(f"--role must be one of {', '.join(ROLES)}, got {role!r}")
        if not owned:
            raise ServeOptionError(
                f"tenant {tenant!r} owns no brand, so its key could plan nothing; tenants are "
                "the owners named in the catalog's brands/*/brand.yaml (owner_tenant)",
                tenant=tenant,
            )
        key = add_key(keys, tenant, label=label, role=role)
        emit(
            {"tenant": tenant, "role": role, "key": key, "file": str(keys)},
            as_json,
            lambda r: (
                f"{r['key']}\n(key for tenant {r['tenant']}, role {r['role']}, digest stored "
                f"in {r['file']})"
            ),
        )


@keys_app.command("list")
def keys_list(
    keys: Annotated[Path, typer.Option(help="Keys file.")] = Path("rmn-keys.json"),
    as_json: bool = JsonOption,
) -> None:
    """The keys in a keys file: tenant, hint and label (never the key)."""
    with user_errors(as_json):
        ensure_project_importable()
        from graph.serving.auth import key_id, read_keys_file

        rows = [
            {
                "tenant": e.tenant,
                "role": e.role,
                "key_id": key_id(e.digest),
                "hint": e.hint,
                "label": e.label,
                "created_at": e.created_at,
            }
            for e in read_keys_file(keys).keys
        ]
        emit(
            rows,
            as_json,
            lambda rs: (
                "\n".join(
                    f"{r['tenant']:<12} {r['role']:<9} {r['key_id']}  {r['hint']}…  "
                    f"{r['label'] or ''}"
                    for r in rs
                )
                or "no keys"
            ),
        )


def bench_server(
    clients: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Concurrent clients; default 20, 4 with --replicas."),
    ] = None,
    runs: Annotated[
        int | None,
        typer.Option(min=1, max=400, help="Plans in all; default 40, 8 with --replicas."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="tiny (random model, fast), smollm2 (the real one) or none; default tiny, "
            "none with --flood or --replicas."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=32, help="Server run workers; default 4, 2 with --flood."),
    ] = None,
    timeout: Annotated[
        float, typer.Option(min=1, help="Stop after this many seconds (unfinished plans count).")
    ] = 600.0,
    data_dir: Annotated[
        Path | None, typer.Option(help="Market data; default: a small world made in a temp dir.")
    ] = None,
    flood: Annotated[
        bool,
        typer.Option(
            "--flood",
            help="Noisy neighbour: one tenant floods while another plans; prints the other "
            "tenant's p50 under the flood vs idle (target: within 2x) and the flood's 429/503.",
        ),
    ] = False,
    neighbour_runs: Annotated[
        int, typer.Option(min=1, max=50, help="--flood: the other tenant's plans (each way).")
    ] = 5,
    flood_rps: Annotated[
        float, typer.Option(min=0.1, max=500, help="--flood: the flood's requests per second.")
    ] = 40.0,
    flood_clients: Annotated[
        int, typer.Option(min=1, max=64, help="--flood: threads sending the flood.")
    ] = 4,
    replicas: Annotated[
        int,
        typer.Option(
            min=1,
            max=4,
            help="N > 1: the load on 1 `rmn serve` replica, then on N, all on one PostgreSQL; "
            "prints throughput and p95 for each (this mode: 4 clients, 8 plans, model none).",
        ),
    ] = 1,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="--replicas: the PostgreSQL to share (postgresql://...); default: a throwaway "
            "cluster made with the postgresql package's initdb."
        ),
    ] = None,
    as_json: bool = JsonOption,
) -> None:
    """Serve the planning graph on loopback and drive it with concurrent SDK clients: each plan
    goes brief -> approval interrupt -> approve -> final. Prints throughput, p50/p95 latency to
    the approval interrupt, and errors (target: none, and no plan lost). With --flood: the
    noisy-neighbour figure instead (--model none and 2 workers unless given)."""
    with user_errors(as_json):
        ensure_project_importable()
        from cli.server_bench import run_flood_bench, run_server_bench

        finite("--timeout", timeout)
        if replicas > 1:
            from cli.replica_bench import run_replica_bench

            scaled = run_replica_bench(
                replicas=replicas,
                clients=clients or 4,
                runs=runs or 8,
                model=model or "none",
                workers=workers or 2,
                timeout_s=min(timeout, 45.0),  # per load: the bench stays within 2 min
                database_url=database_url,
                data_dir=data_dir,
            )
            emit(scaled, as_json, _human_replicas)
            return
        if flood:
            flooded = run_flood_bench(
                neighbour_runs=neighbour_runs,
                flood_clients=flood_clients,
                flood_rps=finite("--flood-rps", flood_rps),
                model=model or "none",
                workers=workers or 2,
                timeout_s=timeout,
                data_dir=data_dir,
            )
            emit(flooded, as_json, _human_flood)
            return
        result = run_server_bench(
            clients=clients or 20,
            runs=runs or 40,
            model=model or "tiny",
            workers=workers or 4,
            timeout_s=timeout,
            data_dir=data_dir,
        )
        emit(result, as_json, _human_bench)


def _human_flood(r: dict[str, Any]) -> str:
    n, f = r["neighbour"], r["flood"]
    verdict = "met" if r["met"] else "MISSED"
    return "\n".join(
        [
            f"noisy neighbour ({r['model']} model, {r['workers']} workers, at most "
            f"{r['running_per_tenant']} running and {r['queued_per_tenant']} queued per tenant):",
            f"  {n['tenant']}'s p50 to the approval question: idle {n['idle_p50_s']} s, under "
            f"{f['tenant']}'s flood {n['flood_p50_s']} s = {r['p50_ratio']}x "
            f"(target <= {r['target_ratio']}x: {verdict})",
            f"  flood: {f['sent']} requests at {f['rps']}/s: {f['accepted']} accepted, "
            f"{f['refused_429']} refused 429, {f['refused_503']} refused 503, "
            f"{f['other_errors']} other errors",
            f"  {n['errors']} errors in {n['tenant']}'s plans; machine: {r['machine']['cpus']} "
            f"cores, {', '.join(r['machine']['cpu_flags']) or 'no SIMD flags read'}",
        ]
    )


def _human_replicas(r: dict[str, Any]) -> str:
    lines = [
        f"{r['runs']} plans, {r['clients']} clients, model {r['model']}, "
        f"{r['workers_per_replica']} workers per replica, one PostgreSQL ({r['database']}):"
    ]
    for n, f in r["by_replicas"].items():
        lines.append(
            f"  {n} replica(s): {f['plans_per_min']} plans/min, p50 {f['p50_to_approval_s']} s, "
            f"p95 {f['p95_to_approval_s']} s to the approval question; errors {f['errors']}, "
            f"lost {f['lost']}"
        )
    lines.append(f"  throughput {r['replicas']} vs 1: {r['throughput_ratio']}x on "
                 f"{r['machine']['cpus']} cores")  # fmt: skip
    return "\n".join(lines)


def _human_bench(r: dict[str, Any]) -> str:
    lat = r["latency_to_approval_s"]
    return "\n".join(
        [
            f"{r['completed']}/{r['runs']} plans approved with {r['clients']} clients, "
            f"{r['workers']} workers, model {r['model']}, in {r['seconds']} s "
            f"= {r['plans_per_min']} plans/min (after a {r['warmup_s']} s warm-up plan)",
            f"latency to the approval interrupt: p50 {lat['p50']} s, p95 {lat['p95']} s, "
            f"max {lat['max']} s",
            f"errors: {r['errors']}  lost: {r['lost']}",
        ]
        + [f"  {e}" for e in r["error_samples"]]
    )
