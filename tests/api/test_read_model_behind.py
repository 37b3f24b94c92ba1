"""A read whose read model is behind says so: which read model, how far behind, when to come back
(from the measured rate), within its wait bound; and the read model keeps counting meanwhile."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from ledger.application import Ledger
from ledger.domain.errors import ReadModelBehindError
from ledger.domain.events import Envelope, EnvelopeBase
from ledger.readmodels.projections import Projections
from ledger.readmodels.runner import PageSize, ProjectionRunner
from tests.conftest import envelope
from tests.support.shifted import SHIFT_VARIABLE

# These tests are about how long a read waits, not about dates. Under faketime (the suite's
# shifted runs) a timed wait on a condition never times out: libfaketime moves the clock Python
# computes the deadline from, not the one the kernel waits on, so the read waits for a page.
pytestmark = pytest.mark.skipif(
    SHIFT_VARIABLE in os.environ, reason="timed waits do not time out under faketime"
)

ADAPTER: TypeAdapter[EnvelopeBase] = TypeAdapter(Envelope)
BEHIND = 3000
WAIT = 0.2  # the read's wait bound in these tests (5 s when served)
PAGE_SECONDS = 0.3  # each page of the slowed read models takes at least this long


def append_directly(ledger: Ledger, count: int) -> None:
    """`count` events appended with no read model counting them (1,000 per append)."""
    for start in range(0, count, 1000):
        models = [
            ADAPTER.validate_python(envelope(stream_id=f"B-{i:05d}"))
            for i in range(start, min(count, start + 1000))
        ]
        ledger.append(models, source="test")


def slowed(runner: ProjectionRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every page of `runner`'s read model take PAGE_SECONDS more (outside its write, so
    pages keep growing to their most on a loaded machine, whose writes are slow too)."""
    runner.pages = PageSize(60.0)
    gather: Callable[[Any], Any] = runner.projector.gather

    def slow_gather(facts: Any) -> Any:
        time.sleep(PAGE_SECONDS)
        return gather(facts)

    monkeypatch.setattr(runner.projector, "gather", slow_gather)


@pytest.fixture
def projections(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> Projections:
    """The served read models, far behind, slowed, and read with a WAIT-second bound."""
    app: Any = client.app
    projections: Projections = app.state.projections
    projections.read_wait = WAIT
    append_directly(projections.ledger, BEHIND)
    for runner in projections.runners.values():
        slowed(runner, monkeypatch)
    return projections


@pytest.mark.parametrize(
    ("path", "read_model"),
    [
        ("/v1/kpis?period=2026", "kpis"),
        ("/v1/sla", "sla_board"),
        ("/v1/batches/B-00000/timeline", "casefiles"),
    ],
)
def test_a_read_of_a_read_model_far_behind_says_how_far_within_its_wait_bound(
    client: TestClient, projections: Projections, path: str, read_model: str
) -> None:
    began = time.monotonic()
    r = client.get(path)
    took = time.monotonic() - began
    assert r.status_code == 503, r.text
    assert took < WAIT + 1.0, took
    problem = r.json()
    assert problem["type"].endswith("/read-model-behind")
    assert problem["detail"] == f"read model `{read_model}` is {BEHIND} events behind"
    assert "database" not in problem["title"].lower()
    assert int(r.headers["Retry-After"]) >= 1


def test_a_read_model_behind_goes_on_counting_after_the_read_gave_up(
    client: TestClient, projections: Projections
) -> None:
    assert client.get("/v1/kpis?period=2026").status_code == 503
    deadline = time.monotonic() + 60
    while (r := client.get("/v1/kpis?period=2026")).status_code == 503:
        assert time.monotonic() < deadline, r.text
        time.sleep(0.2)
    assert r.status_code == 200, r.text
    assert r.json()["position"] == BEHIND


def test_retry_after_is_how_long_the_measured_rate_takes_to_count_what_is_behind(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    projections = Projections(ledger, read_wait=WAIT)
    try:
        append_directly(ledger, BEHIND)
        runner = projections.kpis
        slowed(runner, monkeypatch)
        runner.rate = 120.0  # events/s, as measured on earlier pages
        began = time.monotonic()
        with pytest.raises(ReadModelBehindError) as caught:
            projections.wait_for(runner, ledger.last_position())
        assert time.monotonic() - began < WAIT + 1.0
        assert caught.value.behind == BEHIND
        assert caught.value.retry_after == 25  # 3,000 events at 120 events/s
    finally:
        projections.close()
