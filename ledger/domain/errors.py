"""Domain errors: each maps to one problem type at the HTTP edge."""

from __future__ import annotations

from collections.abc import Sequence


class LedgerError(Exception):
    """Base class of every error the ledger reports to a caller."""


class InvalidEventError(LedgerError):
    """An envelope breaks a rule that does not depend on stored state (422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ConflictError(LedgerError):
    """The append conflicts with what is stored (409)."""


class VersionConflictError(ConflictError):
    """`expected_version` does not match the stream, or a concurrent writer won."""


class StreamRuleError(ConflictError):
    """The event breaks a stream rule of SPEC §6."""


class EventIdConflictError(ConflictError):
    """An `event_id` is already stored with other content."""


class StreamNotFoundError(LedgerError):
    """No event was ever appended to the stream (404)."""


class EventNotFoundError(LedgerError):
    """No stored event has this event_id (404)."""


class UnavailableError(LedgerError):
    """The database cannot be reached right now (503, with Retry-After)."""

    retry_after = 2  # seconds: how soon a retry may succeed

    @property
    def detail(self) -> str:
        """What the caller is told: the database's own message is logged, never shown."""
        return "retry shortly"


class StreamsBusyError(UnavailableError):
    """Other writers kept taking the streams' next versions until the append's deadline (503)."""

    retry_after = 1

    def __init__(self, streams: Sequence[tuple[str, str]]) -> None:
        names = ", ".join(f"{t} {i}" for t, i in streams[:3]) + (", …" if len(streams) > 3 else "")
        super().__init__(f"other writers kept appending to {names}; retry")

    @property
    def detail(self) -> str:
        return str(self)


class ReadModelBehindError(UnavailableError):
    """A read model could not count the appends before the read by its deadline (503)."""

    def __init__(self, read_model: str, behind: int, retry_after: int) -> None:
        super().__init__(f"read model `{read_model}` is {behind} events behind")
        self.read_model = read_model
        self.behind = behind
        self.retry_after = retry_after

    @property
    def detail(self) -> str:
        return str(self)
