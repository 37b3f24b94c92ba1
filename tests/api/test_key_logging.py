"""No key material ever reaches a log: not on success, refusal, revocation or rate limit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger.api.app import create_app
from ledger.application import Ledger
from ledger.settings import Settings
from ledger.storage.keys import hash_key
from tests.conftest import bearer, envelope


def test_no_key_or_its_hash_appears_in_any_log_record(
    ledger: Ledger,
    make_key: Callable[..., str],
    keys: Any,
    clock: Any,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    app = create_app(Settings(database_url="sqlite:///unused", rate_limit=5), ledger=ledger)
    admin = make_key("admin")
    mes = make_key("integrator", departments=["production"])
    hr = make_key("hr")
    revoked = make_key("auditor", name="old-auditor")
    keys.revoke("old-auditor", clock())
    tampered = mes[:-2] + "zz"
    with TestClient(app, raise_server_exceptions=False) as c:
        c.post("/v1/events", json=envelope(), headers=bearer(mes))
        c.post("/v1/events", json=envelope(department="sales"), headers=bearer(mes))
        c.get("/v1/events", headers=bearer(hr))
        c.get("/v1/events", headers=bearer(revoked))
        c.get("/v1/events", headers=bearer(tampered))
        c.get("/v1/events", headers={"Authorization": f"Basic {admin}"})
        for _ in range(8):
            c.get("/v1/streams/batch/B-2026-0142", headers=bearer(admin))
    captured = capsys.readouterr()
    logged = caplog.text + " ".join(repr(r.args) for r in caplog.records)
    assert caplog.records, "the scan saw no log at all"
    for key in (admin, mes, hr, revoked, tampered):
        secret = key.split("_", 2)[2]  # the token itself may hold "_"
        for material in (key, secret, hash_key(key)):
            assert material not in logged
            assert material not in captured.out + captured.err
