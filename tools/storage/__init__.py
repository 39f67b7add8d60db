"""The product's own tables on SQLite (embedded default) or PostgreSQL (`RMN_DATABASE_URL`)."""

from tools.storage.database import (
    ENV_URL,
    Connection,
    Database,
    DatabaseConfigError,
    Row,
    database_url,
    is_postgres_url,
    open_database,
)
from tools.storage.migrations import Migration, applied, migrate

__all__ = [
    "ENV_URL",
    "Connection",
    "Database",
    "DatabaseConfigError",
    "Migration",
    "Row",
    "applied",
    "database_url",
    "is_postgres_url",
    "migrate",
    "open_database",
]
