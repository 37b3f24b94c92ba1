"""schemathesis runs against a real `ledger serve` on each back-end, with every check.

The server holds the demo's story, so the reads answer with data, and schemathesis takes its
complaint and batch ids from a dictionary half of the time. The coverage phase sends every edge
case the OpenAPI document defines (bounds, formats, missing and unexpected fields and parameters,
methods), the fuzzing phase a few seeded cases per operation, valid and invalid. Only the
coverage phase's invalid appends are left out unless LEDGER_SCHEMATHESIS_FULL=1: the 22 event
types make them 5,000 cases, a minute or two per back-end. LEDGER_SCHEMATHESIS_EXAMPLES sets the
fuzzing cases per operation (default 10), LEDGER_SCHEMATHESIS_SEED the seed (default 1).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.served import LEDGER, serving

SCHEMATHESIS = [sys.executable, "-m", "schemathesis.cli"]
EXAMPLES = int(os.environ.get("LEDGER_SCHEMATHESIS_EXAMPLES", "10"))
SEED = int(os.environ.get("LEDGER_SCHEMATHESIS_SEED", "1"))
FULL = os.environ.get("LEDGER_SCHEMATHESIS_FULL", "") == "1"
CHECKS = Path(__file__).with_name("schemathesis_checks.py")
# The demo's streams (ledger/demo.py).
COMPLAINTS = ["C-2026-0031"]
BATCHES = ["B-2026-0142", "M-2026-0107"]

CONFIG = """
hooks = "{checks}"
warnings = false

[checks]
# Replaced on POST /v1/events by schema_valid_appends_are_refused_only_for_ledger_rules.
positive_data_acceptance.enabled = true

[[operations]]
include-name = "POST /v1/events"
checks.positive_data_acceptance.enabled = false
phases.coverage.generation.mode = "{append_mode}"

# Replaced on the paged reads by schema_valid_paged_reads_are_refused_only_for_their_cursor.
[[operations]]
include-name = [
    "GET /v1/sla",
    "GET /v1/complaints/{{complaint_id}}/timeline",
    "GET /v1/batches/{{batch_id}}/timeline",
]
checks.positive_data_acceptance.enabled = false

# Replaced on the proofs by schema_valid_proofs_are_refused_only_for_sizes_the_tree_lacks.
[[operations]]
include-name = ["GET /v1/digest/proof", "GET /v1/digest/consistency"]
checks.positive_data_acceptance.enabled = false

[dictionaries.complaints]
values = {complaints}

[dictionaries.batches]
values = {batches}

[dictionaries.streams]
values = {streams}

[parameters]
"path.complaint_id" = {{ dictionary = "complaints", probability = 0.5 }}
"path.batch_id" = {{ dictionary = "batches", probability = 0.5 }}
"path.stream_id" = {{ dictionary = "streams", probability = 0.5 }}
"""


@dataclass
class Served:
    url: str
    key: str
    log: Path


def ledger_command(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([*LEDGER, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"ledger {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[Served]:
    """`ledger serve` on a free port, holding the demo, with an admin key of its own."""
    env = {**os.environ, "LEDGER_DATABASE_URL": database_url, "LEDGER_SLA_TICK_SECONDS": "3600"}
    ledger_command(env, "demo")
    key = ledger_command(env, "keys", "create", "--role", "admin", "--name", "fuzzer")
    key = key.strip().splitlines()[-1]
    log = tmp_path / "serve.log"
    with serving(env, log) as url:
        yield Served(url, key, log)


def test_every_operation_passes_every_check_against_a_served_ledger(
    served: Served, tmp_path: Path
) -> None:
    config = tmp_path / "schemathesis.toml"
    append_mode = "all" if FULL else "positive"
    config.write_text(
        CONFIG.format(
            checks=CHECKS,
            append_mode=append_mode,
            complaints=COMPLAINTS,
            batches=BATCHES,
            streams=COMPLAINTS + BATCHES,
        )
    )
    command = [
        *SCHEMATHESIS,
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{served.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {served.key}",
        "--phases",
        "coverage,fuzzing",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        # One worker: hypothesis parses lambdas' source with ast.parse, which is not thread-safe
        # on Python 3.11 before 3.11.8 (SystemError: AST constructor recursion depth mismatch).
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--generation-database",
        "none",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    output = done.stdout + done.stderr
    server_errors = [line for line in served.log.read_text().splitlines() if "Traceback" in line]
    assert done.returncode == 0, output
    assert " passed" in output, output
    assert not server_errors, served.log.read_text()
