"""Request limits: the body size (counting the bytes actually received, not the Content-Length
claim) and the per-key rate."""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.api.problems import HTTP_TITLES, ProblemResponse

log = logging.getLogger("ledger.api")


class BodyLimit:
    """413 problem JSON for a body over `max_bytes`.

    The rest of a refused body is read and thrown away by the server (ledger/api/server.py), so
    a client still sending it reads the 413 instead of a reset connection.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"the request body is larger than {self.max_bytes} bytes"
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                response = ProblemResponse(413, *HTTP_TITLES[413], detail)
                await response(scope, receive, send)
                return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI re-raises an HTTPException from body reading to our handler.
                    raise HTTPException(413, detail)
            return message

        try:
            await self.app(scope, counted, send)
        except ClientDisconnect:
            # The client left, or the server stopped waiting for it (408), before the body was
            # all sent: the request was never whole, so it changed nothing, and no one is there.
            log.info("%s %s: the client stopped sending its body", scope["method"], scope["path"])


class RateLimit:
    """At most `LEDGER_RATE_LIMIT` requests per second per key, counted in this process.

    A moving window from the `limits` library. With `ledger serve --workers N` each worker counts
    on its own, so a key may reach N times the rate in total.
    """

    def __init__(self, per_second: float) -> None:
        # A rate below 1/s becomes one request per window of ceil(1/rate) seconds.
        window = 1 if per_second >= 1 else math.ceil(1 / per_second)
        self.item = RateLimitItemPerSecond(max(1, round(per_second * window)), window)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.per_second = per_second

    @classmethod
    def from_setting(cls, per_second: float) -> RateLimit | None:
        """The limit for `LEDGER_RATE_LIMIT`; None when it is 0 (off)."""
        return cls(per_second) if per_second > 0 else None

    def hit(self, key_name: str) -> None:
        """Count one request of the key; 429 with Retry-After past the limit."""
        if self.limiter.hit(self.item, key_name):
            return
        reset_at = self.limiter.get_window_stats(self.item, key_name).reset_time
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise HTTPException(
            429,
            f"this key may make {self.per_second:g} requests per second; retry after "
            f"{retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )
