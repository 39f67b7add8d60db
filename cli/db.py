"""`rmn db`: where the product's stores live and which schema migrations they are at.

    rmn db status  [--data-dir DIR] [--state-dir DIR] [--json]
    rmn db upgrade [--data-dir DIR] [--state-dir DIR] [--json]

Each store (privacy ledger, clean-room audit log, decisions, feedback, the server's threads and
runs) lives in its own SQLite file under the data directory by default, or in the database
`RMN_DATABASE_URL` names (tools/storage). A SQLite file not there yet is reported as absent,
never created; a password in a URL is never printed. Stores apply their own migrations when
they first open; `upgrade` applies them all at once, explicitly (before replicas of a new
version start, say), and prints the result as `status` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cli.common import JsonOption, emit, user_errors
from cli.plan import DataOption
from tools import paths

app = typer.Typer(help="The product's own databases: where they are, which migrations ran.",
                  no_args_is_help=True)  # fmt: skip
StateOption = typer.Option(
    None, "--state-dir", help="The server's state folder (as `rmn serve`); default <data>/server."
)


def _sqlite_stores(data: Path, state: Path) -> list[tuple[str, Path]]:
    """(store name, its SQLite file when no database URL is set), in the order printed."""
    from tools.cleanroom.ledger import STORE as LEDGER
    from tools.cleanroom.ledger import ledger_path
    from tools.plan.decisions import STORE as DECISIONS
    from tools.plan.decisions import decisions_path
    from tools.plan.feedback import STORE as FEEDBACK
    from tools.plan.feedback import feedback_path

    return [
        (LEDGER, ledger_path(data)),
        (DECISIONS, decisions_path(data)),
        (FEEDBACK, feedback_path(data)),
        # graph/serving/store.py registers its migrations under "server" (server.sqlite).
        ("server", state / "server.sqlite"),
    ]


def _store_status(name: str, sqlite_path: Path) -> dict[str, Any]:
    from tools.storage import applied, open_database
    from tools.storage.stores import store_exists

    if not store_exists(sqlite_path):
        return {"store": name, "engine": "sqlite", "where": str(sqlite_path), "present": False,
                "migrations": []}  # fmt: skip
    db = open_database(sqlite_path)
    steps = [{"version": v, "name": n, "applied_at": at} for v, n, at in applied(db, name)]
    # A file by its path, as when absent; a server by its URL with the password hidden.
    where = db.describe() if db.dialect == "postgres" else str(getattr(db, "path", sqlite_path))
    return {"store": name, "engine": db.dialect, "where": where, "present": True,
            "migrations": steps}  # fmt: skip


def _audit_status(data: Path) -> dict[str, Any]:
    from tools.cleanroom.audit import STORE, audit_path
    from tools.storage.stores import configured_url

    path = audit_path(data)
    if configured_url() is not None:
        return _store_status(STORE, path)
    # The embedded default is a JSON Lines file, which has no schema to migrate.
    return {"store": STORE, "engine": "jsonl", "where": str(path), "present": path.is_file(),
            "migrations": []}  # fmt: skip


def db_status(data: Path, state: Path) -> list[dict[str, Any]]:
    """Every store's engine, location and applied migrations."""
    stores = _sqlite_stores(data, state)
    rows = [_store_status(*stores[0]), _audit_status(data)]
    return rows + [_store_status(name, path) for name, path in stores[1:]]


def _render(rows: list[dict[str, Any]]) -> str:
    lines = []
    for r in rows:
        if not r["present"]:
            steps = "not created yet"
        elif r["migrations"]:
            steps = ", ".join(f"v{m['version']} {m['name']}" for m in r["migrations"])
        else:
            steps = "a file, no migrations" if r["engine"] == "jsonl" else "no migrations yet"
        lines.append(f"{r['store']:<10} {r['engine']:<8} {r['where']}\n{'':<19} {steps}")
    return "\n".join(lines)


@app.command("status")
def status(
    data_dir: Path | None = DataOption,
    state_dir: Path | None = StateOption,
    json_out: bool = JsonOption,
) -> None:
    """Each store's engine (a SQLite file or the PostgreSQL URL, password hidden) and the
    schema migrations applied to it."""
    with user_errors(json_out):
        data = data_dir or paths.data_dir()
        rows = db_status(data, state_dir or data / "server")
        emit({"stores": rows}, json_out, lambda result: _render(result["stores"]))


def _migrations(data: Path, state: Path) -> list[tuple[str, Path, Any]]:
    """(store, its SQLite file, its migrations) of every store with a schema; the audit log
    has one only in a database (its embedded default is a JSON Lines file)."""
    from graph.serving import store as server
    from tools.cleanroom import audit, ledger
    from tools.plan import decisions, feedback
    from tools.storage.stores import configured_url

    out = [(ledger.STORE, ledger.ledger_path(data), ledger.MIGRATIONS)]
    if configured_url() is not None:
        out.append((audit.STORE, audit.audit_path(data), audit.MIGRATIONS))
    out += [
        (decisions.STORE, decisions.decisions_path(data), decisions.MIGRATIONS),
        (feedback.STORE, feedback.feedback_path(data), feedback.MIGRATIONS),
        (server.STORE, state / "server.sqlite", server.MIGRATIONS),
    ]
    return out


@app.command("upgrade")
def upgrade(
    data_dir: Path | None = DataOption,
    state_dir: Path | None = StateOption,
    json_out: bool = JsonOption,
) -> None:
    """Apply every store's schema migrations that its database lacks (each once, under a lock,
    also with replicas starting), creating the stores where they are not yet; then print
    their status."""
    from tools.storage.stores import open_store

    with user_errors(json_out):
        data = data_dir or paths.data_dir()
        state = state_dir or data / "server"
        for name, path, migrations in _migrations(data, state):
            open_store(path, name, migrations)
        rows = db_status(data, state)
        emit({"stores": rows}, json_out, lambda result: _render(result["stores"]))
