"""`rmn serve`: the planning graph over HTTP (LangGraph Server API, see server.py);
`rmn keys add|list`: API keys in a keys file; `rmn bench server`: load on a loopback server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import JsonOption, emit, user_errors

LOOPBACK = "127.0.0.1"

keys_app = typer.Typer(help="API keys for `rmn serve` (stored hashed).", no_args_is_help=True)


def ensure_project_importable() -> None:
    """`server.py`, `graph/` and `nodes/` sit at the repository root; an install made before
    they existed does not map them, so put the root on the path when they are missing."""
    import importlib.util
    import sys

    from tools.paths import PROJECT_ROOT

    if importlib.util.find_spec("server") is None or importlib.util.find_spec("graph") is None:
        sys.path.insert(0, str(PROJECT_ROOT))


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
    rate: Annotated[float, typer.Option(min=0.01, help="Requests per second per key.")] = 20.0,
    burst: Annotated[int, typer.Option(min=1, help="Requests a key may burst.")] = 60,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the planning graph over HTTP for `langgraph-sdk`, RemoteGraph and curl."""
    with user_errors(False):
        import uvicorn

        ensure_project_importable()
        from server import create_rmn_app, rmn_settings
        from tools.paths import data_dir as default_data_dir
        from tools.tenants import ENV_VAR, KeyRing

        ring = KeyRing.load(env=os.environ.get(ENV_VAR), path=keys)
        if not ring:
            if not _is_loopback(host):
                typer.echo(
                    f"no API keys configured ({ENV_VAR} or --keys): listening on {LOOPBACK} "
                    f"only, not {host}",
                    err=True,
                )
                host = LOOPBACK
            typer.echo(
                f"no API keys configured: loopback clients only, all as tenant {tenant!r}",
                err=True,
            )
        else:
            typer.echo(f"{len(ring)} API key(s) for tenants {', '.join(ring.tenants())}", err=True)
        data = data_dir or default_data_dir()
        settings = rmn_settings(
            state_dir or data / "server",
            workers=workers,
            rate_per_s=rate,
            rate_burst=burst,
            open_tenant=tenant,
            server_context=rmn_server_context(model, data),
        )
        app = create_rmn_app(ring, settings)
        typer.echo(f"serving on http://{host}:{port} (API docs at /docs)", err=True)
        uvicorn.run(app, host=host, port=port, log_level=log_level)


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
    as_json: bool = JsonOption,
) -> None:
    """Make a new key for TENANT, store its digest, and print the key (shown only now)."""
    with user_errors(as_json):
        from tools.tenants import add_key

        key = add_key(keys, tenant, label=label)
        emit(
            {"tenant": tenant, "key": key, "file": str(keys)},
            as_json,
            lambda r: f"{r['key']}\n(key for tenant {r['tenant']}, digest stored in {r['file']})",
        )


@keys_app.command("list")
def keys_list(
    keys: Annotated[Path, typer.Option(help="Keys file.")] = Path("rmn-keys.json"),
    as_json: bool = JsonOption,
) -> None:
    """The keys in a keys file: tenant, hint and label (never the key)."""
    with user_errors(as_json):
        from tools.tenants import read_keys_file

        rows = [
            {"tenant": e.tenant, "hint": e.hint, "label": e.label, "created_at": e.created_at}
            for e in read_keys_file(keys).keys
        ]
        emit(
            rows,
            as_json,
            lambda rs: (
                "\n".join(f"{r['tenant']:<12} {r['hint']}…  {r['label'] or ''}" for r in rs)
                or "no keys"
            ),
        )


def bench_server(
    clients: Annotated[int, typer.Option(min=1, max=64, help="Concurrent clients.")] = 20,
    runs: Annotated[int, typer.Option(min=1, max=400, help="Plans in all.")] = 40,
    model: Annotated[
        str, typer.Option(help="tiny (random model, fast), smollm2 (the real one) or none.")
    ] = "tiny",
    workers: Annotated[int, typer.Option(min=1, max=32, help="Server run workers.")] = 4,
    timeout: Annotated[
        float, typer.Option(min=1, help="Stop after this many seconds (unfinished plans count).")
    ] = 600.0,
    data_dir: Annotated[
        Path | None, typer.Option(help="Market data; default: a small world made in a temp dir.")
    ] = None,
    as_json: bool = JsonOption,
) -> None:
    """Serve the planning graph on loopback and drive it with concurrent SDK clients: each plan
    goes brief -> approval interrupt -> approve -> final. Prints throughput, p50/p95 latency to
    the approval interrupt, and errors (target: none, and no plan lost)."""
    with user_errors(as_json):
        ensure_project_importable()
        from cli.server_bench import run_server_bench

        result = run_server_bench(
            clients=clients,
            runs=runs,
            model=model,
            workers=workers,
            timeout_s=timeout,
            data_dir=data_dir,
        )
        emit(result, as_json, _human_bench)


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
