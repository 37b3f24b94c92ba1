"""A TCP proxy between the ledger and PostgreSQL that can lose replies and play an outage.

It understands just enough of the PostgreSQL wire protocol (v3) to find message boundaries:

* client → server: the untyped start-up packets, then typed messages `type:1 length:4 body`.
  An `SSLRequest` or `GSSENCRequest` is answered `N` by the proxy itself, so the session stays
  in clear text whatever the server's `ssl` setting, and the proxy can read it.
* server → client: typed messages only. `CommandComplete` (`C`) carries the command tag.

`cut_after_commit()` arms the proxy: the next time the server answers `COMMIT` with
`CommandComplete "COMMIT"` — proof the transaction is committed — the proxy forwards that
message (or, with `forward_reply=False`, drops it too) and then closes both sockets, so the
client never sees the `ReadyForQuery` that ends its request. From the client's side the commit
"may or may not" have happened: the classic lost reply.

`refuse()` plays a database outage: every open connection is closed and the listening socket
too, so a new connection gets `ECONNREFUSED` at once; `refuse_on(sql)` starts one when a client
sends that SQL, in the middle of its transaction. `heal()` listens on the same port again.

Every message is recorded in `traffic` as `(direction, type, text)`, where text is the SQL of a
`Query` or `Parse`, the tag of a `CommandComplete` or the SQLSTATE of an `ErrorResponse`, so a
test can show what really went by.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CHUNK = 65536


class _Closed(Exception):
    """The peer closed its socket."""


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise _Closed
        data += chunk
    return data


def _cstring(body: bytes, start: int = 0) -> str:
    end = body.find(b"\0", start)
    return body[start : end if end >= 0 else len(body)].decode("utf-8", "replace")


def _text_of(direction: str, kind: bytes, body: bytes) -> str:
    """The SQL of a Query/Parse, the tag of a CommandComplete or the SQLSTATE of an
    ErrorResponse; "" for other messages."""
    if direction == "client" and kind == b"Q":
        return _cstring(body)
    if direction == "client" and kind == b"P":
        name_end = body.find(b"\0")  # Parse: statement name, then the query
        return _cstring(body, name_end + 1)
    if direction == "server" and kind == b"C":
        return _cstring(body)
    if direction == "server" and kind == b"E":  # ErrorResponse: fields of (code byte, text)
        at = 0
        while at < len(body) and body[at : at + 1] != b"\0":
            text = _cstring(body, at + 1)
            if body[at : at + 1] == b"C":
                return text  # the SQLSTATE
            at += 1 + len(text.encode()) + 1
    return ""


@dataclass(eq=False)  # hashed by identity, kept in a set
class _Pair:
    client: socket.socket
    server: socket.socket
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for s in (self.client, self.server):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()


class PgProxy:
    """Listens on 127.0.0.1 (a free port) and forwards every connection to `upstream`."""

    def __init__(self, upstream_host: str = "127.0.0.1", upstream_port: int = 5432) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.traffic: list[tuple[str, str, str]] = []
        self.cuts = 0  # connections cut after a COMMIT's reply
        self.connections = 0  # connections accepted
        self._lock = threading.Lock()  # guards the state the pumps share
        self._control = threading.Lock()  # serialises refuse() and heal()
        self._pairs: set[_Pair] = set()
        self._cuts_armed = 0
        self._forward_reply = True
        self._refuse_on = ""
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None

    # -- control ---------------------------------------------------------------------------

    def start(self) -> PgProxy:
        self.heal()
        return self

    def cut_after_commit(self, times: int = 1, *, forward_reply: bool = True) -> None:
        """Cut the next `times` connections whose server acknowledges a COMMIT."""
        with self._lock:
            self._cuts_armed = times
            self._forward_reply = forward_reply

    def refuse_on(self, sql_fragment: str) -> None:
        """Start an outage (`refuse()`) when a client sends SQL containing `sql_fragment`,
        before forwarding it: the database "goes away" in the middle of that transaction."""
        with self._lock:
            self._refuse_on = sql_fragment

    def refuse(self) -> None:
        """Outage: close every connection and stop listening (new ones are refused)."""
        with self._control:
            listener, accepting = self._listener, self._accepting
            self._listener = self._accepting = None
            if listener is not None:
                # close() alone would not wake a thread blocked in accept(): the socket would go
                # on listening. The accept loop polls, sees it is no longer current, closes it.
                assert accepting is not None
                accepting.join(timeout=5)
                assert not accepting.is_alive(), "the proxy's accept loop did not stop"
            self.drop_all()

    def drop_all(self) -> None:
        """Close every open connection (the server went away), still accepting new ones."""
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            pair.close()

    def heal(self) -> None:
        """End the outage: listen on the same port again."""
        with self._control:
            if self._listener is None:
                self._listen()

    def close(self) -> None:
        self.refuse()

    def __enter__(self) -> PgProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    def sql_seen(self) -> list[str]:
        """The SQL the clients sent, in order (a statement prepared earlier on the same
        connection is sent without its text, and is not seen again)."""
        with self._lock:
            return [text for d, _, text in self.traffic if d == "client" and text]

    def server_said(self) -> list[tuple[str, str]]:
        """The command tags (`C`) and SQLSTATEs of errors (`E`) the server sent, in order."""
        with self._lock:
            return [(k, text) for d, k, text in self.traffic if d == "server" and text]

    # -- machinery -------------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._accepting = threading.Thread(
            target=self._accept_loop, args=(listener,), name="pg-proxy-accept", daemon=True
        )
        self._accepting.start()

    def _accept_loop(self, listener: socket.socket) -> None:
        listener.settimeout(0.05)
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            client.settimeout(None)
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = _Pair(client, server)
            with self._lock:
                self._pairs.add(pair)
                self.connections += 1
            for target in (self._client_to_server, self._server_to_client):
                threading.Thread(target=target, args=(pair,), daemon=True).start()
        with contextlib.suppress(OSError):
            listener.close()

    def _record(self, direction: str, kind: bytes, body: bytes) -> None:
        text = _text_of(direction, kind, body)
        with self._lock:
            self.traffic.append((direction, kind.decode("ascii", "replace"), text))

    def _client_to_server(self, pair: _Pair) -> None:
        try:
            # Start-up packets have no type byte: length (including itself), then a code.
            while True:
                head = _recv_exact(pair.client, 8)
                length, code = struct.unpack("!ii", head)
                rest = _recv_exact(pair.client, length - 8)
                if code in (SSL_REQUEST, GSSENC_REQUEST):
                    pair.client.sendall(b"N")  # "no encryption here": go on in clear text
                    continue
                pair.server.sendall(head + rest)
                break
            while True:
                head = _recv_exact(pair.client, 5)
                kind, length = head[:1], struct.unpack("!i", head[1:])[0]
                body = _recv_exact(pair.client, length - 4)
                self._record("client", kind, body)
                if self._take_refuse(_text_of("client", kind, body)):
                    self.refuse()
                    return
                pair.server.sendall(head + body)
        except (OSError, _Closed):
            pass
        finally:
            self._finish(pair)

    def _server_to_client(self, pair: _Pair) -> None:
        buffer = b""
        try:
            while True:
                chunk = pair.server.recv(CHUNK)
                if not chunk:
                    return
                buffer += chunk
                out = b""
                while len(buffer) >= 5:
                    length = struct.unpack("!i", buffer[1:5])[0]
                    if len(buffer) < 1 + length:
                        break
                    message, buffer = buffer[: 1 + length], buffer[1 + length :]
                    kind, body = message[:1], message[5:]
                    self._record("server", kind, body)
                    if kind == b"C" and _cstring(body) == "COMMIT" and self._take_cut():
                        if self._forward_reply:
                            out += message
                        if out:
                            pair.client.sendall(out)
                        with self._lock:
                            self.cuts += 1
                        return  # `finally` closes both sockets: nothing after COMMIT arrives
                    out += message
                if out:
                    pair.client.sendall(out)
        except OSError:
            pass
        finally:
            self._finish(pair)

    def _take_refuse(self, sql: str) -> bool:
        with self._lock:
            if not sql or not self._refuse_on or self._refuse_on not in sql:
                return False
            self._refuse_on = ""
            return True

    def _take_cut(self) -> bool:
        with self._lock:
            if self._cuts_armed <= 0:
                return False
            self._cuts_armed -= 1
            return True

    def _finish(self, pair: _Pair) -> None:
        pair.close()
        with self._lock:
            self._pairs.discard(pair)
