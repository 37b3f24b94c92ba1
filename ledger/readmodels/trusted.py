"""Whose events count at their `occurred_at` for SLAs: admin keys and the ledger's own paths."""

from __future__ import annotations

from ledger.application import Ledger
from ledger.domain.access import RESERVED_SOURCES
from ledger.storage.keys import KeyStore

# Sources whose events count at their occurred_at for SLAs besides admin keys: the ledger itself
# and the administrative command-line paths (the demo, bulk imports of old records). Key names
# are never reused, so a source keeps its role for the life of the ledger: replays agree.
TRUSTED_SOURCES = RESERVED_SOURCES  # no key may take these names


def trusted_sources(ledger: Ledger) -> frozenset[str]:
    """Sources whose events count at their occurred_at: admin keys and the ledger's own paths."""
    keys = KeyStore.of(ledger.store, ledger.database.kind)
    return TRUSTED_SOURCES | frozenset(k.name for k in keys.list() if k.role == "admin")
