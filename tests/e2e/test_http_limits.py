"""`ledger serve` against what a port scan or a careless client sends: floods of headers, slow
and idle connections, too many connections, refused bodies, proxy headers and a busy port.

Each test talks to a real server process over raw sockets. The server runs with small limits set
through the environment, so the tests are quick.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

LEDGER = [sys.executable, "-c", "from ledger.cli import main; main()"]
MAX_HEADER_BYTES = 8192
MAX_HEADERS = 20
READ_TIMEOUT = 3.0
KEEP_ALIVE = 1
MAX_CONNECTIONS = 8
SMALL_LIMITS = {
    "LEDGER_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
    "LEDGER_MAX_HEADERS": str(MAX_HEADERS),
    "LEDGER_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT),
    "LEDGER_KEEP_ALIVE_SECONDS": str(KEEP_ALIVE),
    "LEDGER_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
    "LEDGER_SLA_TICK_SECONDS": "3600",
}
ONE_MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def admin_key(self) -> str:
        return next(line for line in self.output().splitlines() if line.startswith("ql_"))

    def rss_bytes(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1]) * 1024

    def connect(self) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return s

    def wait_for_log(self, text: str, seconds: float = 10) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if text in self.output():
                return True
            time.sleep(0.1)
        return False


def start(directory: Path, **env: str) -> Served:
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = directory / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*LEDGER, "serve", "--port", str(port)],
            env={
                **os.environ,
                "LEDGER_DATABASE_URL": f"sqlite:///{directory}/ledger.sqlite",
                **env,
            },
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    served = Served(port, process, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, f"ledger serve stopped:\n{served.output()}"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return served
        except httpx.HTTPError:
            time.sleep(0.2)
    stop(served)
    raise AssertionError("ledger serve did not come up in 60 s")


def stop(served: Served) -> None:
    served.process.terminate()
    try:
        served.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        served.process.kill()
        served.process.wait()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One `ledger serve` with small limits for the whole module."""
    served = start(tmp_path_factory.mktemp("limits"), **SMALL_LIMITS)
    try:
        yield served
    finally:
        stop(served)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def problem(self) -> dict[str, object]:
        assert self.headers["content-type"] == "application/problem+json"
        document = orjson.loads(self.body)
        assert isinstance(document, dict) and document["status"] == self.status
        return document


def read_response(s: socket.socket) -> Response:
    """One whole HTTP/1.1 response framed by Content-Length, or an AssertionError."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, f"the server closed before a whole response head: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    length = int(headers["content-length"])
    while len(body) < length:
        chunk = s.recv(65536)
        assert chunk, "the server closed before the whole response body"
        body += chunk
    return Response(int(status_line.split()[1]), headers, body[:length])


def closed_by_server(s: socket.socket, within: float) -> float | None:
    """Seconds until the server closes `s` (all it sends is thrown away), or None."""
    began = time.monotonic()
    s.settimeout(within)
    try:
        while s.recv(65536):
            pass
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - began


def send_until_answered(s: socket.socket, head: bytes, pieces: Iterator[bytes]) -> None:
    """Send the head, then pieces until the server answers or stops reading."""
    s.sendall(head)
    for piece in pieces:
        if select.select([s], [], [], 0)[0]:
            return
        try:
            s.sendall(piece)
        except OSError:
            return


def repeat(piece: bytes, total: int) -> Iterator[bytes]:
    for _ in range(total // len(piece)):
        yield piece


# Header size and count


def test_an_8_mb_header_gets_431_after_a_few_kilobytes(served: Served) -> None:
    with served.connect() as s:
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
        send_until_answered(s, head, repeat(b"a" * 4096, 8 * ONE_MIB))
        r = read_response(s)
        assert r.status == 431
        assert f"larger than {MAX_HEADER_BYTES} bytes" in str(r.problem()["detail"])
        assert r.headers["connection"] == "close"
        assert closed_by_server(s, within=10) is not None


def test_a_hundred_thousand_headers_get_431_after_the_first_few(served: Served) -> None:
    lines = (b"X-H%d: v\r\n" % i for i in range(100_000))
    with served.connect() as s:
        send_until_answered(s, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", lines)
        r = read_response(s)
        assert r.status == 431
        assert f"more than {MAX_HEADERS} header fields" in str(r.problem()["detail"])


def test_headers_within_the_limits_are_served(served: Served) -> None:
    # httpx adds five headers of its own (host, accept, …)
    headers = {f"X-H{i}": "v" * 400 for i in range(MAX_HEADERS - 5)}
    r = httpx.get(f"http://127.0.0.1:{served.port}/healthz", headers=headers)
    assert r.status_code == 200


def test_a_large_body_is_no_header_and_is_read_whole(served: Served) -> None:
    """A body under 1 MiB is judged by the API (422 here), not by the head or time limits."""
    body = b'{"pad": "' + b"x" * (ONE_MIB - 100) + b'"}'
    r = httpx.post(
        f"http://127.0.0.1:{served.port}/v1/events",
        content=body,
        headers={
            "Authorization": f"Bearer {served.admin_key()}",
            "Content-Type": "application/json",
        },
    )
    assert r.status_code == 422, r.text


def test_unfinished_header_blocks_do_not_grow_the_servers_memory(served: Served) -> None:
    """Four connections each begin a 64 MiB header and never finish it: each is cut off with a
    431 after a few kilobytes, so the server's memory stays flat (it grew by 216 MB before)."""
    before = served.rss_bytes()
    sockets = [served.connect() for _ in range(4)]
    try:
        for s in sockets:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Block: ")
        sent = [0] * 4
        piece = b"b" * 65536
        for _ in range(4 * ONE_MIB // len(piece)):  # up to 4 MiB each, 16 MiB in all
            for i, s in enumerate(sockets):
                if sent[i] < 0 or select.select([s], [], [], 0)[0]:
                    sent[i] = -1
                    continue
                try:
                    s.sendall(piece)
                    sent[i] += len(piece)
                except OSError:
                    sent[i] = -1
        grown = served.rss_bytes() - before
        for s in sockets:
            assert read_response(s).status == 431
        assert grown < 8 * ONE_MIB, f"the server grew by {grown / ONE_MIB:.1f} MiB"
    finally:
        for s in sockets:
            s.close()


def test_a_malformed_request_gets_a_400_problem(served: Served) -> None:
    with served.connect() as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        r = read_response(s)
        assert r.status == 400
        assert str(r.problem()["detail"]).startswith("invalid HTTP")
        assert closed_by_server(s, within=10) is not None


# Timeouts


def test_a_connection_that_sends_nothing_is_closed_after_the_keep_alive_time(
    served: Served,
) -> None:
    with served.connect() as s:
        after = closed_by_server(s, within=KEEP_ALIVE + 5)
    assert after is not None and after >= KEEP_ALIVE * 0.5


def test_an_idle_connection_after_a_response_is_closed_after_the_keep_alive_time(
    served: Served,
) -> None:
    with served.connect() as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(s).status == 200
        after = closed_by_server(s, within=KEEP_ALIVE + 5)
    assert after is not None and after >= KEEP_ALIVE * 0.5


def test_a_request_head_sent_byte_by_byte_gets_408_at_the_read_timeout(served: Served) -> None:
    """Slowloris: a header line every 0.3 s never completes the head within the read timeout."""
    with served.connect() as s:
        began = time.monotonic()
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        while not select.select([s], [], [], 0.3)[0] and time.monotonic() - began < 15:
            s.sendall(b"X-Slow: 1\r\n")
        took = time.monotonic() - began
        r = read_response(s)
        assert r.status == 408
        assert "not received within" in str(r.problem()["detail"])
        assert closed_by_server(s, within=5) is not None
    assert READ_TIMEOUT * 0.9 <= took < READ_TIMEOUT + 5


def test_a_body_sent_slowly_gets_408_at_the_read_timeout(served: Served) -> None:
    with served.connect() as s:
        began = time.monotonic()
        s.sendall(
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer %s\r\nContent-Length: 1000\r\n\r\n{"
            % served.admin_key().encode()
        )
        while not select.select([s], [], [], 0.3)[0] and time.monotonic() - began < 15:
            s.sendall(b" ")
        took = time.monotonic() - began
        assert read_response(s).status == 408
    assert READ_TIMEOUT * 0.9 <= took < READ_TIMEOUT + 5


# Connections


def test_a_request_beyond_the_connection_limit_gets_503_and_later_ones_are_served(
    served: Served,
) -> None:
    others = [served.connect() for _ in range(MAX_CONNECTIONS)]
    try:
        for s in others:
            s.sendall(b"GET /healthz HTTP/1.1\r\n")  # begun, so open until the read timeout
        time.sleep(0.3)
        with served.connect() as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            r = read_response(s)
        assert r.status == 503
        assert r.headers["retry-after"] == "1"
        assert "connections are open" in str(r.problem()["detail"])
    finally:
        for s in others:
            s.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if httpx.get(f"http://127.0.0.1:{served.port}/healthz").status_code == 200:
            return
        time.sleep(0.2)
    raise AssertionError("the server stayed busy after the connections closed")


# Bodies over 1 MiB


def post_slowly(
    served: Served, *, close: bool, chunked: bool, size: int = 1_300_000
) -> tuple[OSError | None, Response]:
    """POST `size` bytes in 32 KiB pieces, 10 ms apart, then read the answer."""
    body = b"x" * size
    head = (
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + b"Authorization: Bearer %s\r\n" % served.admin_key().encode()
        + (b"Connection: close\r\n" if close else b"")
        + (b"Transfer-Encoding: chunked\r\n" if chunked else b"Content-Length: %d\r\n" % size)
        + b"\r\n"
    )
    failed: OSError | None = None
    with served.connect() as s:
        try:
            s.sendall(head)
            for i in range(0, size, 32768):
                piece = body[i : i + 32768]
                s.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                time.sleep(0.01)
            if chunked:
                s.sendall(b"0\r\n\r\n")
        except OSError as e:
            failed = e
        return failed, read_response(s)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("close", [True, False], ids=["connection-close", "keep-alive"])
def test_a_body_over_1_mib_gets_a_whole_413_while_the_client_is_still_sending(
    served: Served, close: bool, chunked: bool
) -> None:
    for _ in range(4):
        failed, r = post_slowly(served, close=close, chunked=chunked)
        assert failed is None, f"the client could not send its body: {failed!r}"
        assert r.status == 413
        assert "larger than 1048576 bytes" in str(r.problem()["detail"])


# Proxy headers and redirects


FORWARDED = b"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n"


def get_forwarded(served: Served, path: bytes) -> Response:
    with served.connect() as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (path, FORWARDED))
        return read_response(s)


def test_forwarded_headers_from_localhost_are_ignored_by_default(served: Served) -> None:
    assert get_forwarded(served, b"/nowhere/ignored-proxy").status == 404
    assert served.wait_for_log("/nowhere/ignored-proxy")
    line = next(x for x in served.output().splitlines() if "/nowhere/ignored-proxy" in x)
    assert "127.0.0.1" in line and "203.0.113.7" not in line


def test_forwarded_headers_are_used_from_the_proxies_the_operator_names(tmp_path: Path) -> None:
    served = start(tmp_path, LEDGER_FORWARDED_ALLOW_IPS="127.0.0.1", **SMALL_LIMITS)
    try:
        assert get_forwarded(served, b"/nowhere/trusted-proxy").status == 404
        assert served.wait_for_log("/nowhere/trusted-proxy")
        line = next(x for x in served.output().splitlines() if "/nowhere/trusted-proxy" in x)
        assert "203.0.113.7" in line
    finally:
        stop(served)


def test_a_trailing_slash_is_404_with_no_location_whatever_the_host(served: Served) -> None:
    with served.connect() as s:
        s.sendall(b"GET /v1/events/ HTTP/1.1\r\nHost: evil.example\r\n\r\n")
        r = read_response(s)
    assert r.status == 404
    assert "location" not in r.headers
    r.problem()


# A busy port


def test_serve_on_a_busy_port_fails_in_one_line_and_makes_no_key(tmp_path: Path) -> None:
    env = {**os.environ, "LEDGER_DATABASE_URL": f"sqlite:///{tmp_path}/ledger.sqlite"}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*LEDGER, "serve", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode != 0
    assert "ql_" not in done.stdout + done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in lines[0] and "in use" in lines[0]
    listed = subprocess.run(
        [*LEDGER, "keys", "list"], env=env, capture_output=True, text=True, check=True
    )
    assert "admin" not in listed.stdout  # no key was stored either
