"""Run the SQLite half of the suite with the system clock moved by `faketime`.

    python -m tests.support.shifted '+400 days' [pytest args…]

PostgreSQL's own clock does not move under faketime, so its tests are left out. Under faketime
the interpreter can hang at exit on a timed thread join after pytest's summary is printed, so
the process ends with `os._exit` and pytest's exit code.
"""

from __future__ import annotations

import os
import shutil
import sys

SHIFT_VARIABLE = "LEDGER_TEST_SHIFTED"


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m tests.support.shifted SHIFT [pytest args…]", file=sys.stderr)
        return 2
    shift, *args = argv
    if os.environ.get(SHIFT_VARIABLE) != shift:
        faketime = shutil.which("faketime")
        if faketime is None:
            print("faketime is not installed (Debian package `faketime`)", file=sys.stderr)
            return 2
        env = {**os.environ, SHIFT_VARIABLE: shift}
        command = [faketime, shift, sys.executable, "-m", "tests.support.shifted", shift, *args]
        os.execve(faketime, command, env)
    import pytest

    code = pytest.main(["-m", "not postgres", "-k", "not postgresql", "-p", "no:cacheprovider",
                        *args])  # fmt: skip
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(code))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
