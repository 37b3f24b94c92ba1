"""Configuration from the environment (SPEC §3)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every LEDGER_* variable, with its default."""

    model_config = SettingsConfigDict(env_prefix="LEDGER_", extra="ignore")

    database_url: str = "sqlite:///./var/ledger.sqlite"
    # The signed checkpoints of the ledger digest: the log's name (the checkpoint's origin line
    # and its key's name: make it unique, e.g. your plant's domain) and the file of the signing
    # key, made with mode 0600 on first use, never kept in the database.
    checkpoint_origin: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9./_-]{0,199}$")] = (
        "quality-ledger"
    )
    checkpoint_key_file: str = "./var/checkpoint.key"
    timezone: str = "UTC"
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    sla_tick_seconds: Annotated[float, Field(gt=0)] = 10.0
    rate_limit: Annotated[float, Field(ge=0)] = 0.0
    pool_size: Annotated[int, Field(ge=1, le=200)] = 10
    # How long an append without expected_version that another process beat to the stream's
    # next version decides again (then 503 streams-busy), and how long a read waits for its
    # read model to count the appends before it (then 503 read-model-behind).
    append_wait_seconds: Annotated[float, Field(gt=0)] = 5.0
    read_wait_seconds: Annotated[float, Field(gt=0)] = 5.0
    # Read models: how long one page's write transaction may take (on SQLite it holds the only
    # write lock, so an append waits at most about this long for a catch-up), how often a
    # catch-up running in the background looks for new events, and whether `ledger serve` runs
    # one (false when a `ledger projections run` worker keeps the read models caught up).
    projection_txn_ms: Annotated[float, Field(gt=0)] = 50.0
    projection_poll_seconds: Annotated[float, Field(gt=0)] = 0.2
    serve_projections: bool = True
    # HTTP limits of `ledger serve`, per server process (ledger/api/server.py).
    max_header_bytes: Annotated[int, Field(ge=1024)] = 16 * 1024  # request line + headers → 431
    max_headers: Annotated[int, Field(ge=8)] = 100  # header fields of one request → 431
    read_timeout_seconds: Annotated[float, Field(gt=0)] = 30.0  # a whole request, first byte on
    keep_alive_seconds: Annotated[int, Field(ge=1)] = 5  # an open connection with no request
    max_connections: Annotated[int, Field(ge=1)] = 1000  # beyond it a request gets 503
    # Who may set X-Forwarded-For/-Proto: comma-separated addresses or networks, "*" for any;
    # empty (the default) trusts no one and ignores the headers.
    forwarded_allow_ips: str = ""
