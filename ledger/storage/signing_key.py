"""The key that signs the ledger's checkpoints: a file of its own, never a row of the database.

Whoever can read the database (a backup, a replica, a support dump) must not be able to sign as
the ledger, so the key lives beside it, readable by its owner alone. The file holds one line,
the signer key as Go's note.GenerateKey writes it (`PRIVATE+KEY+<name>+<hex8>+<base64>`), so
Go's tools can read it too. It is made on first start and appears whole or not at all.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from ledger.domain.checkpoint import (
    KeyFormatError,
    Signer,
    format_signer_key,
    is_valid_name,
    parse_signer_key,
)

MAX_KEY_FILE_BYTES = 4096  # a key line has about 100; anything much longer is not a key file
_KEEP_IT = (
    "restore it from a backup; moving it away makes a new key on the next start, "
    "and what trusts the old key will not accept checkpoints signed by the new one"
)


class SigningKeyError(Exception):
    """The key file cannot be used as it is; the message names the file, why, and what to do."""


def load_or_create(path: Path, name: str) -> Signer:
    """The signer whose key is in `path`; on first start, a new key named `name`, written there
    with mode 0600. An existing file must hold a key of that name and be its owner's alone."""
    if not is_valid_name(name):
        raise SigningKeyError(f"not a valid key name: {name!r} (no spaces or '+', not empty)")
    try:
        return _load(path, name)
    except FileNotFoundError:
        pass
    signer = Signer.generate(name)
    if _create(path, signer):
        return signer
    return _load(path, name)  # another process made it first: theirs is the key


def _load(path: Path, name: str) -> Signer:
    # O_NONBLOCK: a FIFO in the key's place is refused below rather than waited on.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        _check_private(path, os.fstat(fd))
        data = _read_at_most(fd, MAX_KEY_FILE_BYTES + 1)
    finally:
        os.close(fd)
    signer = _parse(path, data)
    if signer.name != name:
        raise SigningKeyError(
            f"{path} holds the key of {signer.name!r}, not {name!r}: a key's name is part of "
            "its verifier key, so another name needs another key file"
        )
    return signer


def _read_at_most(fd: int, limit: int) -> bytes:
    data = b""
    while len(data) < limit and (chunk := os.read(fd, limit - len(data))):
        data += chunk
    return data


def _check_private(path: Path, info: os.stat_result) -> None:
    """Refuse a key that others could read (or replace) before using it."""
    if not stat.S_ISREG(info.st_mode):
        raise SigningKeyError(f"{path} is not a regular file, so it cannot hold the signing key")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise SigningKeyError(
            f"{path} is open to its group or others (mode {mode:04o}): whoever can read it can "
            f"sign as the ledger. Make it the owner's alone (chmod 600 {path}); if others did "
            "read it, the key must be replaced"
        )


def _parse(path: Path, data: bytes) -> Signer:
    if not data:
        raise SigningKeyError(f"{path} is empty: it holds no signing key; {_KEEP_IT}")
    if len(data) > MAX_KEY_FILE_BYTES:
        raise SigningKeyError(f"{path} is too long to be a signing key file; {_KEEP_IT}")
    if not data.endswith(b"\n"):
        raise SigningKeyError(f"{path} ends mid-line: it is cut short or not a key; {_KEEP_IT}")
    try:
        return parse_signer_key(data[:-1].decode("ascii"))
    except (UnicodeDecodeError, KeyFormatError) as e:
        raise SigningKeyError(f"{path} does not hold a signing key ({e}); {_KEEP_IT}") from None


def _create(path: Path, signer: Signer) -> bool:
    """Write the key to a private temporary file, then link it into place: the key file never
    exists half-written, and one that another process made meanwhile is kept (False)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), 0o600)  # whatever the umask left
            file.write(format_signer_key(signer).encode("ascii") + b"\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        _sync_directory(path.parent)
        return True
    finally:
        temporary.unlink(missing_ok=True)


def _sync_directory(directory: Path) -> None:
    """Make the new name durable: a crash after start must not lose the key checkpoints used."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
