"""Where the ledger is stored: one URL gives the library's settings and the migration target."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


class DatabaseURLError(ValueError):
    """LEDGER_DATABASE_URL names no database the ledger can use."""


class DurabilityError(RuntimeError):
    """The database would not keep what it acknowledges."""


@dataclass(frozen=True)
class Database:
    """A parsed `sqlite:///PATH` or `postgresql://USER@HOST:PORT/DB[?schema=S]`."""

    kind: str
    path: str = ""
    host: str = ""
    port: int = 5432
    user: str = ""
    password: str = ""
    name: str = ""
    schema: str = ""

    @classmethod
    def from_url(cls, url: str) -> Database:
        parts = urlsplit(url)
        if parts.scheme == "sqlite":
            path = unquote(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else ""
            if not path:
                raise DatabaseURLError(f"expected sqlite:///PATH, got {url!r}")
            return cls(kind="sqlite", path=path)
        if parts.scheme in ("postgresql", "postgres"):
            name = parts.path.lstrip("/")
            if not name:
                raise DatabaseURLError(f"the PostgreSQL URL names no database: {url!r}")
            query = parse_qs(parts.query)
            return cls(
                kind="postgresql",
                host=parts.hostname or "127.0.0.1",
                port=parts.port or 5432,
                user=unquote(parts.username or "postgres"),
                password=unquote(parts.password or ""),
                name=name,
                schema=query.get("schema", [""])[0],
            )
        raise DatabaseURLError(
            f"LEDGER_DATABASE_URL must start with sqlite:/// or postgresql://, got {url!r}"
        )

    def library_env(self, pool_size: int = 10) -> dict[str, str]:
        """Settings for the eventsourcing application (passed as env, never os.environ)."""
        if self.kind == "sqlite":
            return {
                "PERSISTENCE_MODULE": "ledger.storage.sqlite:LedgerSQLiteFactory",
                "SQLITE_DBNAME": self.path,
                "SQLITE_LOCK_TIMEOUT": "10",
                "CREATE_TABLE": "false",
            }
        return {
            "PERSISTENCE_MODULE": "ledger.storage.postgres:LedgerPostgresFactory",
            "POSTGRES_DBNAME": self.name,
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_SCHEMA": self.schema,
            "POSTGRES_POOL_SIZE": str(pool_size),
            "POSTGRES_MAX_OVERFLOW": str(pool_size),
            # How long a request waits for a pooled connection: during an outage, how soon it
            # gets its 503 (the recorder does not retry a pool timeout, see postgres.py), and
            # short enough for a load balancer's health check, often 5 s, to see that 503.
            "POSTGRES_CONNECT_TIMEOUT": "3",
            "POSTGRES_MAX_WAITING": "200",
            "POSTGRES_LOCK_TIMEOUT": "10",
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "30",
            "POSTGRES_PRE_PING": "y",
            "CREATE_TABLE": "false",
        }

    def yoyo_url(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.path}"
        auth = self.user + (f":{self.password}" if self.password else "")
        url = f"postgresql+psycopg://{auth}@{self.host}:{self.port}/{self.name}"
        return url + (f"?schema={self.schema}" if self.schema else "")

    @property
    def migrations(self) -> Path:
        return MIGRATIONS / self.kind
