"""JSON responses serialized with orjson."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class ORJSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def raw_events(key: str, rows: list[bytes], **extra: Any) -> Response:
    """`{"<key>": [...stored JSON...], **extra}` without decoding what is stored."""
    head = b'{"' + key.encode() + b'":[' + b",".join(rows) + b"]"
    for name, value in extra.items():
        head += b',"' + name.encode() + b'":' + orjson.dumps(value)
    return Response(head + b"}", media_type="application/json")
