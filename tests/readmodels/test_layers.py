"""The read models' pure functions stand on their own: the live projection, the rebuild and the
as-of replay share them, so they must not reach for the ledger or its database themselves."""

from __future__ import annotations

import subprocess
import sys

import pytest

PURE = [
    "ledger.readmodels.facts",
    "ledger.readmodels.timeline.evolve",
    "ledger.readmodels.casefiles.evolve",
    "ledger.readmodels.responsibility.evolve",
    "ledger.readmodels.sla.evolve",
    "ledger.readmodels.kpis.evolve",
    "ledger.readmodels.kpis.sums",
    "ledger.readmodels.kpis.report",
]
FORBIDDEN = ("ledger.application", "ledger.storage", "eventsourcing", "psycopg", "sqlite3")


@pytest.mark.parametrize("module", PURE)
def test_a_pure_read_model_module_imports_neither_the_application_nor_a_database(
    module: str,
) -> None:
    probe = f"import sys, {module}\nprint(' '.join(n for n in {FORBIDDEN!r} if n in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == [], f"{module} loads {', '.join(loaded)}"
