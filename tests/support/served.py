"""A real `ledger serve` in a subprocess, for the tests that drive the ledger from outside: the
command line, a free port, and a server started on a database until SIGTERM."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

LEDGER = [sys.executable, "-c", "from ledger.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(env: dict[str, str], log: Path, timeout: float = 60) -> Iterator[str]:
    """`ledger serve` with `env` on a free port, its output in `log`: its base URL once
    /healthz answers 200 (an assertion with the log if it stops or does not come up in
    `timeout` s). Stopped with SIGTERM afterwards, killed if it does not stop in 15 s."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*LEDGER, "serve", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert process.poll() is None, f"ledger serve stopped:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"ledger serve did not come up:\n{log.read_text()}"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()  # uvicorn ends by the signal it got: no exit status to check
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
