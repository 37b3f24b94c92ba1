"""Validation errors in the sender's words: pydantic's errors without pydantic's internals.

Every problem message about invalid input passes through `readable`, both at the HTTP edge (the
request's validation errors) and in the domain (a correction's data checked against the corrected
event's model), so no message shows a regular expression, a validator's wrapper name or a union
member's label.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ledger.domain.events import (
    AMOUNT_PATTERN,
    CURRENCY_PATTERN,
    DEPARTMENT_PATTERN,
    EVENT_TYPES,
    KPI_PATTERN,
    PERIOD_PATTERN,
    STREAM_ID_PATTERN,
)

# pattern → what a value of it looks like, completing "Input should be …"
PATTERN_MEANINGS = {
    PERIOD_PATTERN: "YYYY, YYYY-Qn or YYYY-MM (ASCII digits), e.g. 2026, 2026-Q4 or 2026-11",
    DEPARTMENT_PATTERN: "a department slug: a lowercase letter, then up to 31 lowercase letters, "
    "digits, '_' or '-'",
    STREAM_ID_PATTERN: "an id of 1 to 64 ASCII letters, digits, '.', '_' or '-', "
    "starting with a letter or digit",
    AMOUNT_PATTERN: "a decimal string with at most 15 digits before the point and 6 after it, "
    "e.g. 1250.00",
    CURRENCY_PATTERN: "a three-letter currency code in capitals, e.g. EUR",
    KPI_PATTERN: "a name of lowercase letters, digits and '_', starting with a letter",
}
# How pydantic prefixes the message of an error raised in a validator.
_PREFIXES = ("Value error, ", "Assertion failed, ")
# The label pydantic puts in `loc` for each member of a plain union that failed: `int`,
# `function-after[_finite(), float]`, …
_MEMBER = re.compile(r"int|float|str|bool|bytes|decimal|list|dict|[a-z][a-z-]*\[.*\]", re.DOTALL)

Loc = tuple[str | int, ...]


def message_of(error: Mapping[str, Any]) -> str:
    """One error's message, without regular expressions or validator prefixes."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        return "Input should be " + PATTERN_MEANINGS.get(
            str(ctx.get("pattern")), "in the documented form"
        )
    if kind == "union_tag_invalid":
        return f"Input should be one of {ctx.get('expected_tags')}; got {ctx.get('tag')!r}"
    if kind == "union_tag_not_found":
        return "Field required"
    text = str(error["msg"])
    for prefix in _PREFIXES:
        text = text.removeprefix(prefix)
    return text.replace(" after validation", "")


def readable(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The errors with readable messages (`msg`) and locations (`loc`): a value that fits no
    member of a union (a number that is neither an integer nor a float) is one error at the
    value, with the last member's message."""
    errors = list(errors)
    members: dict[Loc, set[Any]] = {}
    for e in errors:
        loc = tuple(e["loc"])
        if loc and isinstance(loc[-1], str) and _MEMBER.fullmatch(loc[-1]):
            members.setdefault(loc[:-1], set()).add(loc[-1])
    merged: dict[Loc, dict[str, Any]] = {}
    for e in errors:
        loc = tuple(e["loc"])
        if len(members.get(loc[:-1], ())) > 1 and loc[-1] in members[loc[:-1]]:
            loc = loc[:-1]
        merged.pop(loc, None)  # the later message wins, in the later place
        merged[loc] = {**e, "loc": loc, "msg": message_of(e)}
    return list(merged.values())


def field_of(error: Any) -> str:
    """A pydantic error's location as the sender wrote it: `events[2].data.sample_size`."""
    loc = tuple(error["loc"])
    if error["type"] in ("union_tag_invalid", "union_tag_not_found") and loc[-1:] != ("type",):
        # An unknown event type is reported at the union, not at the field that chose it.
        loc = (*loc, "type") if "events" in loc or loc[-1:] != ("single",) else ("type",)
    parts = [p for p in loc if p not in ("body", "single", "batch") and p not in EVENT_TYPES]
    text = ""
    for p in parts:
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else str(p))
    return text or "body"
