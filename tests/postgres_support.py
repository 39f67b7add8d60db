"""A real PostgreSQL for the tests: the throwaway cluster of tools/storage/throwaway.py (the
distribution's `initdb` and `pg_ctl`, on a Unix socket in a temporary folder; `.ci/run` installs
Debian's `postgresql` when missing), stopped and removed after the session. Never a mock: where
the server cannot start, the tests that need it skip and say why. `rmn bench server --replicas`
starts its database the same way."""

from __future__ import annotations

from tools.storage.throwaway import PORT, new_database, pg_bin, temporary_postgres

__all__ = ["PORT", "new_database", "pg_bin", "temporary_postgres"]
