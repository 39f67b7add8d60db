"""A throwaway PostgreSQL: a cluster made with the distribution's `initdb` and `pg_ctl`
(Debian's `postgresql` package; `.ci/run` installs it when missing), listening only on a Unix
socket in a temporary folder, stopped and removed afterwards. The tests' Postgres
(tests/postgres_support.py) and `rmn bench server --replicas` without `--database-url` use it.

PostgreSQL refuses to run as root; as root, the cluster is made and run as the `postgres`
system user (which the package creates), through `runuser`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BIN_DIRS = (Path("/usr/lib/postgresql"), Path("/usr/local/bin"), Path("/usr/bin"))
PORT = 54329


def pg_bin(name: str) -> Path | None:
    """The PostgreSQL program `name` (initdb, pg_ctl): newest version under
    /usr/lib/postgresql/<v>/bin, else on PATH."""
    versions = sorted(BIN_DIRS[0].glob("*/bin"), key=lambda p: p.parent.name, reverse=True)
    for folder in (*versions, *BIN_DIRS[1:]):
        if (folder / name).is_file():
            return folder / name
    found = shutil.which(name)
    return Path(found) if found else None


def _as_owner(args: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *args] if owner else args


@contextmanager
def temporary_postgres(port: int = PORT) -> Iterator[str]:
    """A running PostgreSQL cluster's URL (`postgresql://…?host=<socket dir>`); raises
    RuntimeError with the reason when one cannot start here."""
    initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise RuntimeError(
            "PostgreSQL's initdb/pg_ctl are not installed (apt-get install postgresql)"
        )
    owner = None
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            raise RuntimeError("running as root without runuser: PostgreSQL cannot start as root")
        owner = "postgres"
    root = Path(tempfile.mkdtemp(prefix="rmn-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if owner:
        shutil.chown(root, owner)
        shutil.chown(sock, owner)
        root.chmod(0o755)
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    try:
        subprocess.run(_as_owner([str(initdb), "-D", str(data), "-U", "rmn", "-A", "trust",
                                  "-E", "UTF8", "--no-sync"], owner),
                       check=True, capture_output=True, env=env, timeout=120)  # fmt: skip
        options = f"-k {sock} -p {port} -c listen_addresses='' -c fsync=off"
        subprocess.run(_as_owner([str(pg_ctl), "-D", str(data), "-o", options, "-w",
                                  "-l", str(root / "server.log"), "start"], owner),
                       check=True, capture_output=True, env=env, timeout=120)  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as err:
        detail = getattr(err, "stderr", b"") or b""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {err} {detail.decode()[-300:]}") from None
    try:
        yield f"postgresql://rmn@/postgres?host={sock}&port={port}"
    finally:
        subprocess.run(_as_owner([str(pg_ctl), "-D", str(data), "-m", "immediate", "stop"], owner),
                       capture_output=True, timeout=60)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def new_database(url: str, name: str) -> str:
    """A new, empty database on the cluster at `url`; its URL."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.replace("/postgres?", f"/{name}?", 1)
