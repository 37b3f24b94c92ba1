"""The projection worker that `ledger serve` runs beside its server processes on PostgreSQL.

The read models' catch-up is CPU work; in the server's own process it shares one interpreter
lock with the requests, and an append waits behind each page (append p99 4× that of a server
without catch-up, docs/BENCHMARKS.md). On PostgreSQL `ledger serve` therefore runs `ledger
projections run` as a child process, restarts it if it dies, and stops it (SIGTERM: it finishes
the page it is writing) when the server stops; its server processes only wait for the positions
the worker stores (`ProjectionRunner.watch`). On SQLite the catch-up stays in the server's
process: there the database has one writer, writers of one process take turns on a lock that
hands over at once, and those of two processes on SQLite's busy handler, which sleeps (up to
100 ms) between tries — a worker process made append p99 worse, not better.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

log = logging.getLogger("uvicorn.error")

# How long the worker has to finish its pages when the server stops, before it is killed.
STOP_SECONDS = 30.0
# Waits before a worker that died is started again: growing, reset by one that lived long.
RESTART_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)
LIVED_SECONDS = 60.0
PR_SET_PDEATHSIG = 1
PARENT_VARIABLE = "LEDGER_WORKER_PARENT"  # the server's process id, in its worker's environment


def die_with_parent() -> None:
    """In a worker `ledger serve` started (PARENT_VARIABLE set): end by SIGTERM, like a server
    stopping it, when the server ends without stopping it (killed), on Linux; at once if it
    already has."""
    parent = os.environ.pop(PARENT_VARIABLE, None)
    if parent is None:
        return
    with contextlib.suppress(OSError, AttributeError):  # not Linux: it outlives a killed server
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(parent):
        os.kill(os.getpid(), signal.SIGTERM)


class WorkerProcess:
    """`ledger projections run` as a supervised child process."""

    def __init__(self, command: Sequence[str] | None = None) -> None:
        self.command = list(command or [sys.executable, "-m", "ledger.cli", "projections", "run"])
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="projection-worker")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the worker to finish its page and end, and wait for it (killed after
        STOP_SECONDS); once."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _supervise(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            began = time.monotonic()
            # A session of its own: a Ctrl+C in the terminal stops the server, which stops it.
            process = self.process = subprocess.Popen(
                self.command,
                env={**os.environ, PARENT_VARIABLE: str(os.getpid())},
                start_new_session=True,
            )
            self.starts += 1
            while process.poll() is None and not self._stopping.wait(0.2):
                pass
            if self._stopping.is_set():
                self._end(process)
                return
            failures = 0 if time.monotonic() - began >= LIVED_SECONDS else failures + 1
            pause = RESTART_SECONDS[min(failures, len(RESTART_SECONDS) - 1)]
            log.warning(
                "the projection worker ended (exit %s); starting it again in %g s",
                process.returncode,
                pause,
            )
            self._stopping.wait(pause)

    @staticmethod
    def _end(process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("the projection worker did not stop in %g s: killing it", STOP_SECONDS)
            process.kill()
            process.wait()
