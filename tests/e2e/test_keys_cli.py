"""`ledger keys …` and the first admin key of `ledger serve`, as an operator runs them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from ledger.cli import app

LEDGER = [sys.executable, "-c", "from ledger.cli import main; main()"]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    url = f"sqlite:///{tmp_path}/ledger.sqlite"
    monkeypatch.setenv("LEDGER_DATABASE_URL", url)
    return {**os.environ, "LEDGER_DATABASE_URL": url}


def test_keys_are_made_listed_and_revoked_from_the_command_line(env: dict[str, str]) -> None:
    runner = CliRunner()
    made = runner.invoke(
        app,
        [
            "keys",
            "create",
            "--role",
            "integrator",
            "--name",
            "mes-1",
            "--departments",
            "production,quality",
        ],
    )
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("ql_") and " " not in key
    listed = runner.invoke(app, ["keys", "list"])
    assert "mes-1" in listed.stdout and "production,quality" in listed.stdout
    assert key not in listed.stdout and key.split("_", 2)[2] not in listed.stdout
    assert runner.invoke(app, ["keys", "revoke", "mes-1"]).exit_code == 0
    assert "revoked" in runner.invoke(app, ["keys", "list"]).stdout
    assert runner.invoke(app, ["keys", "revoke", "mes-1"]).exit_code == 1
    again = runner.invoke(app, ["keys", "create", "--role", "hr", "--name", "mes-1"])
    assert again.exit_code == 2


@pytest.mark.parametrize(
    "args, says",
    [
        (["--role", "boss", "--name", "x"], "--role"),
        (["--role", "hr", "--name", "no spaces"], "--name"),
        (["--role", "integrator", "--name", "mes"], "--departments"),  # needs departments
        (["--role", "integrator", "--name", "mes", "--departments", "Not A Slug"], "slug"),
        (["--role", "integrator", "--name", "mes", "--departments", "sales,Quality"], "slug"),
        (["--role", "hr", "--name", "payroll", "--departments", "production"], "integrator"),
        (["--role", "director", "--name", "qd", "--departments", "quality"], "integrator"),
        (["--role", "admin", "--name", "import"], "reserved"),
        (["--role", "admin", "--name", "ledger"], "reserved"),
        (["--role", "integrator", "--name", "demo", "--departments", "sales"], "reserved"),
    ],
)
def test_keys_create_refuses_bad_roles_names_and_departments(
    env: dict[str, str], args: list[str], says: str
) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["keys", "create", *args])
    assert result.exit_code == 2, (args, result.output)
    assert "ql_" not in result.stdout
    assert says in " ".join(result.stderr.split()), result.stderr
    listed = runner.invoke(app, ["keys", "list"]).stdout.strip().splitlines()
    assert len(listed) == 1, listed  # the header alone: nothing was stored


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*LEDGER, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_until_up(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "ledger serve stopped"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("ledger serve did not come up in 30 s")


def stop(process: subprocess.Popen[str]) -> str:
    process.terminate()
    try:
        out, _ = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
    return out


def test_serve_prints_a_first_admin_key_once_and_logs_no_key(env: dict[str, str]) -> None:
    port = free_port()
    first = serve(env, port)
    try:
        wait_until_up(port, first)
        other = (
            subprocess.run(
                [*LEDGER, "keys", "create", "--role", "hr", "--name", "hr-1"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        base = f"http://127.0.0.1:{port}"
        # The server printed the key before it started: read it from the output so far.
        time.sleep(0.5)
    finally:
        out = stop(first)
    lines = out.splitlines()
    marker = next(i for i, line in enumerate(lines) if "admin key" in line.lower())
    admin = next(line for line in lines[marker:] if line.startswith("ql_"))
    assert out.count(admin) == 1

    second = serve(env, port)
    try:
        wait_until_up(port, second)
        with httpx.Client(base_url=base) as http:
            assert (
                http.get("/v1/events", headers={"Authorization": f"Bearer {admin}"}).status_code
                == 200
            )
            assert (
                http.get("/v1/events", headers={"Authorization": f"Bearer {other}"}).status_code
                == 403
            )
            assert (
                http.get("/v1/events", headers={"Authorization": f"Bearer {admin}x"}).status_code
                == 401
            )
            assert (
                http.get("/v1/sla", headers={"Authorization": f"Bearer {other}"}).status_code == 200
            )
    finally:
        out = stop(second)
    assert "admin key" not in out.lower()  # made once, on the empty table only
    assert "GET /v1/events" in out  # uvicorn's access log was captured...
    for key in (admin, other):  # ...and holds no key material
        # ql_<id>_<secret>: the secret may itself hold "_", so it is all after the second one
        # (the last "_"-separated piece alone can be a single letter found anywhere in a log)
        secret = key.split("_", 2)[2]
        assert key not in out and secret not in out


def test_a_key_revoked_from_the_command_line_is_refused_by_a_running_server_at_once(
    env: dict[str, str],
) -> None:
    runner = CliRunner()
    made = runner.invoke(app, ["keys", "create", "--role", "director", "--name", "qd"])
    key = made.stdout.strip().splitlines()[-1]
    port = free_port()
    server = serve(env, port)
    try:
        wait_until_up(port, server)
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}
        ) as http:
            for _ in range(3):  # the server has just looked the key up, and holds it
                assert http.get("/v1/events").status_code == 200
            # Another process: this test's own, writing the same database file.
            assert runner.invoke(app, ["keys", "revoke", "qd"]).exit_code == 0
            assert http.get("/v1/events").status_code == 401
    finally:
        stop(server)


@pytest.mark.parametrize(
    ("variable", "value"), [("LEDGER_PORT", "abc"), ("LEDGER_CHECKPOINT_ORIGIN", "two words")]
)
def test_a_setting_the_ledger_refuses_is_named_without_a_traceback(
    tmp_path: Path, variable: str, value: str
) -> None:
    env = {**os.environ, "LEDGER_DATABASE_URL": f"sqlite:///{tmp_path}/l.sqlite", variable: value}
    done = subprocess.run(
        [sys.executable, "-c", "from ledger.cli import main; main()", "keys", "list"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"{variable}: "), done.stderr
    assert "Traceback" not in done.stderr
