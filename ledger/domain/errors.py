"""Domain errors: each maps to one problem type at the HTTP edge."""

from __future__ import annotations


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


class UnavailableError(LedgerError):
    """The database cannot be reached right now (503)."""


class ReadModelBehindError(UnavailableError):
    """A read model could not catch up with the appends before the read's deadline (503)."""
