"""Signed checkpoints: the head of the ledger's Merkle tree as a C2SP tlog-checkpoint, signed as a
C2SP signed note with Ed25519 (https://c2sp.org/tlog-checkpoint, https://c2sp.org/signed-note).

This is the format Go's golang.org/x/mod/sumdb/note, Sigstore and the witness network read, so
anyone can check a published head with their own tools rather than ours. Reading is strict: a
note is refused for anything the specs or Go's reader refuse, and its text is never returned
unless a known key's signature over it verifies. Only Ed25519 keys (signature type 0x01).
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519 = 0x01  # signed-note's signature type byte of an Ed25519 key
KEY_SIZE = 32  # an Ed25519 public key and a private seed, in bytes
SIGNATURE_SIZE = 64  # an Ed25519 signature, in bytes
ROOT_SIZE = 32  # an RFC 9162 root hash (SHA-256)
# A note costs its reader work in proportion to its size and signatures: these bound it. The spec
# asks readers to take at least 16 signatures; Go's reader takes 100 and its tree parser 1e6 bytes.
MAX_NOTE_BYTES = 1_000_000
MAX_SIGNATURES = 100
MAX_TREE_SIZE = 2**63 - 1  # Go's sumdb reads a tree size as an int64
SIGNATURE_PREFIX = "\u2014 "  # an em dash and a space open every signature line
PRIVATE_PREFIX = "PRIVATE+KEY+"  # so a signer key is never mistaken for a verifier key (Go's form)

_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")  # control characters a note may not hold
_LINE_CONTROL = re.compile(r"[\x00-\x1f]")  # and a single line holds no newline either
_HEX8 = re.compile(r"[0-9a-f]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")  # no sign, no leading zero, ASCII digits only


class NoteError(ValueError):
    """A note, key or checkpoint that breaks its spec: nothing in it may be trusted."""


class KeyFormatError(NoteError):
    """A key name, signer key or verifier key that is not well-formed."""


class MalformedNoteError(NoteError):
    """Text that is not a signed note (signed-note §Format, and Go's note.Open)."""


class UnverifiedNoteError(NoteError):
    """No signature in the note is by a known key: the spec says reject it, whatever it claims."""


class InvalidSignatureError(NoteError):
    """A known key's signature does not verify: the text was altered, or the signature forged."""


class MalformedCheckpointError(NoteError):
    """A note text or value that is not a tlog-checkpoint body."""


def is_valid_name(name: str) -> bool:
    """Whether `name` may name a key: non-empty UTF-8 without Unicode spaces or '+' (the spec),
    and without control characters, which no well-formed note could carry."""
    return (
        bool(name)
        and "+" not in name
        and _encodable(name)
        and not any(_space_or_control(ch) for ch in name)
    )


def _space_or_control(ch: str) -> bool:
    # Go's unicode.IsSpace: the Latin-1 spaces (with NEL and NBSP) and every separator (Z*).
    return ch < " " or ch.isspace() or unicodedata.category(ch).startswith("Z")


def _encodable(text: str) -> bool:
    """Whether `text` is valid UTF-8 once encoded (a Python str may hold lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _b64decode(text: str) -> bytes | None:
    """The bytes of canonical standard base64, else None: one encoding per value, so no altered
    character of a note can decode to what it said before."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        return None
    return raw if _b64(raw) == text else None


def key_hash(name: str, public_key: bytes) -> int:
    """The key ID of signed-note: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4], big-endian."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ED25519]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class Verifier:
    """A named Ed25519 public key that checks notes' signatures; `key_hash` follows from both."""

    name: str
    public_key: bytes
    key_hash: int = field(init=False)
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not is_valid_name(self.name):
            raise KeyFormatError(f"not a valid key name: {self.name!r}")
        if len(self.public_key) != KEY_SIZE:
            raise KeyFormatError(f"an Ed25519 public key has {KEY_SIZE} bytes")
        try:
            key = Ed25519PublicKey.from_public_bytes(self.public_key)
        except ValueError as e:
            raise KeyFormatError(f"not an Ed25519 public key: {e}") from None
        object.__setattr__(self, "key_hash", key_hash(self.name, self.public_key))
        object.__setattr__(self, "_key", key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether `signature` is this key's Ed25519 signature of `message`."""
        if len(signature) != SIGNATURE_SIZE:
            return False
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


class Signer:
    """A named Ed25519 private key that signs notes. Its repr never shows the key."""

    __slots__ = ("_key", "name", "verifier")

    def __init__(self, name: str, seed: bytes) -> None:
        if not is_valid_name(name):
            raise KeyFormatError(f"not a valid key name: {name!r}")
        if len(seed) != KEY_SIZE:
            raise KeyFormatError(f"an Ed25519 private key seed has {KEY_SIZE} bytes")
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.name = name
        self.verifier = Verifier(name, self._key.public_key().public_bytes_raw())

    @classmethod
    def generate(cls, name: str) -> Signer:
        """A new random key named `name`."""
        return cls(name, Ed25519PrivateKey.generate().private_bytes_raw())

    @property
    def key_hash(self) -> int:
        return self.verifier.key_hash

    def sign(self, message: bytes) -> bytes:
        """The Ed25519 signature of `message` (deterministic: RFC 8032)."""
        return self._key.sign(message)

    def seed(self) -> bytes:
        """The 32 secret bytes: whoever has them can sign as this key."""
        return self._key.private_bytes_raw()

    def __repr__(self) -> str:
        return f"Signer({self.name!r}, key_hash={self.key_hash:08x})"


def format_verifier_key(verifier: Verifier) -> str:
    """`<name>+<hex key ID>+<base64(0x01 ‖ public key)>`, the vkey of signed-note."""
    encoded = _b64(bytes([ED25519]) + verifier.public_key)
    return f"{verifier.name}+{verifier.key_hash:08x}+{encoded}"


def format_signer_key(signer: Signer) -> str:
    """`PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 ‖ seed)>`, as Go's note.GenerateKey writes
    it. It is the secret: keep it out of logs and databases."""
    encoded = _b64(bytes([ED25519]) + signer.seed())
    return f"{PRIVATE_PREFIX}{signer.name}+{signer.key_hash:08x}+{encoded}"


def parse_verifier_key(text: str) -> Verifier:
    """The verifier a vkey names; KeyFormatError unless it is well-formed and self-consistent."""
    name, claimed, key = _key_parts(text)
    verifier = Verifier(name, key)
    if verifier.key_hash != claimed:
        raise KeyFormatError("the verifier key's hash does not match its name and key")
    return verifier


def parse_signer_key(text: str) -> Signer:
    """The signer a `PRIVATE+KEY+…` string holds; KeyFormatError unless it is well-formed and its
    key ID is that of the public key the seed makes."""
    if not text.startswith(PRIVATE_PREFIX):
        raise KeyFormatError(f"a signer key starts with {PRIVATE_PREFIX!r}")
    name, claimed, seed = _key_parts(text[len(PRIVATE_PREFIX) :])
    signer = Signer(name, seed)
    if signer.key_hash != claimed:
        raise KeyFormatError("the signer key's hash does not match its name and key")
    return signer


def _key_parts(text: str) -> tuple[str, int, bytes]:
    """Name, key ID and key bytes of `<name>+<hex8>+<base64(0x01 ‖ key)>`."""
    parts = text.split("+", 2)  # the name has no '+'; base64 may
    if len(parts) != 3:
        raise KeyFormatError("a key reads <name>+<hex key ID>+<base64 key>")
    name, hex8, encoded = parts
    if not is_valid_name(name):
        raise KeyFormatError(f"not a valid key name: {name!r}")
    if not _HEX8.fullmatch(hex8):
        raise KeyFormatError("a key ID is 8 lowercase hex digits")
    raw = _b64decode(encoded)
    if raw is None or len(raw) != 1 + KEY_SIZE or raw[0] != ED25519:
        raise KeyFormatError("the key is not base64 of 0x01 and a 32-byte Ed25519 key")
    return name, int(hex8, 16), raw[1:]


def sign_note(body: str, *signers: Signer) -> str:
    """The signed note of `body`: the body, a blank line, and one line per signer of an em dash,
    a space, the key name, a space and base64(4-byte key ID ‖ signature of the body)."""
    if not signers:
        raise ValueError("a signed note needs at least one signer")
    if len(signers) > MAX_SIGNATURES:
        raise MalformedNoteError(f"a note carries at most {MAX_SIGNATURES} signatures")
    if not body.endswith("\n"):
        raise MalformedNoteError("a note's text ends with a newline")
    message = _checked_bytes(body)
    lines = (
        f"{SIGNATURE_PREFIX}{s.name} {_b64(s.key_hash.to_bytes(4, 'big') + s.sign(message))}\n"
        for s in signers
    )
    note = body + "\n" + "".join(lines)
    if len(note.encode("utf-8")) > MAX_NOTE_BYTES:
        raise MalformedNoteError(f"a note has at most {MAX_NOTE_BYTES} bytes")
    return note


def verify_note(note: str | bytes, verifiers: Iterable[Verifier]) -> tuple[str, tuple[str, ...]]:
    """The text of a signed note and the names of the known keys whose signatures of it verify.

    Signatures by unknown keys are skipped, as the spec requires (they may be a witness's, or a
    rotated key's). Every signature by a known key is checked, and one that fails rejects the
    note; so does a note that no known key signed.
    """
    text, lines = _split(_decoded(note))
    message = text.encode("utf-8")
    known = _by_name_and_hash(verifiers)
    names: list[str] = []
    for line in lines:
        name, hash_, signature = _signature(line)
        verifier = known.get((name, hash_))
        if verifier is None:
            continue
        if not verifier.verify(message, signature):
            raise InvalidSignatureError(f"the signature by {name}+{hash_:08x} does not verify")
        if name not in names:
            names.append(name)
    if not names:
        raise UnverifiedNoteError("no known key signed the note")
    return text, tuple(names)


def open_note(
    note: str | bytes, verifiers: Iterable[Verifier]
) -> tuple[Checkpoint, tuple[str, ...]]:
    """The checkpoint a signed note carries and the names of the known keys that signed it.

    The text is read as a checkpoint only once a signature verifies (the spec: ignore the text
    otherwise). The caller still checks that the origin is the log it expects.
    """
    text, names = verify_note(note, verifiers)
    return Checkpoint.parse(text), names


def _checked_bytes(text: str) -> bytes:
    """`text` in UTF-8, if a note may hold it: no control character but newline."""
    if not _encodable(text):
        raise MalformedNoteError("a note is valid UTF-8")
    if _CONTROL.search(text):
        raise MalformedNoteError("a note holds no control character but newline")
    return text.encode("utf-8")


def _decoded(note: str | bytes) -> str:
    """The note as text, if it is within the size bound, valid UTF-8 and free of controls."""
    if len(note) > MAX_NOTE_BYTES:
        raise MalformedNoteError(f"a note has at most {MAX_NOTE_BYTES} bytes")
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedNoteError("a note is valid UTF-8") from None
    if len(_checked_bytes(note)) > MAX_NOTE_BYTES:
        raise MalformedNoteError(f"a note has at most {MAX_NOTE_BYTES} bytes")
    return note


def _split(note: str) -> tuple[str, list[str]]:
    """The text (up to and with the newline before the last blank line) and signature lines."""
    cut = note.rfind("\n\n")
    if cut < 0:
        raise MalformedNoteError("no blank line separates the text from the signatures")
    text, block = note[: cut + 1], note[cut + 2 :]
    if not block.endswith("\n"):
        raise MalformedNoteError("a note ends with a signature line and its newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNoteError(f"a note carries at most {MAX_SIGNATURES} signatures")
    return text, lines


def _signature(line: str) -> tuple[str, int, bytes]:
    """Key name, key ID and signature bytes of one signature line."""
    if not line.startswith(SIGNATURE_PREFIX):
        raise MalformedNoteError("a line after the blank line is not a signature line")
    name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
    if not is_valid_name(name):
        raise MalformedNoteError(f"not a valid key name in a signature line: {name!r}")
    raw = _b64decode(encoded)
    if raw is None or len(raw) < 5:
        raise MalformedNoteError("a signature is base64 of a 4-byte key ID and the signature")
    return name, int.from_bytes(raw[:4], "big"), raw[4:]


def _by_name_and_hash(verifiers: Iterable[Verifier]) -> dict[tuple[str, int], Verifier]:
    """The verifiers by (name, key ID), which identifies a key; two keys sharing both are a
    misconfiguration, refused rather than guessed between."""
    known: dict[tuple[str, int], Verifier] = {}
    for verifier in verifiers:
        if known.setdefault((verifier.name, verifier.key_hash), verifier) != verifier:
            raise ValueError(f"two verifier keys are named {verifier.name}+{verifier.key_hash:08x}")
    return known


@dataclass(frozen=True)
class Checkpoint:
    """A Merkle tree head as tlog-checkpoint writes it: the log's origin line, the tree size, the
    root hash and optional extension lines (opaque and, says the spec, best left out)."""

    origin: str
    tree_size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line("the origin", self.origin)
        if isinstance(self.tree_size, bool) or not 0 <= self.tree_size <= MAX_TREE_SIZE:
            raise MalformedCheckpointError(f"a tree size is from 0 to {MAX_TREE_SIZE}")
        if not isinstance(self.root, bytes) or len(self.root) != ROOT_SIZE:
            raise MalformedCheckpointError(f"a root hash has {ROOT_SIZE} bytes")
        for line in self.extensions:
            _check_line("an extension line", line)

    def body(self) -> str:
        """The note text: origin, size and base64 root, then any extension lines, each ended by a
        newline."""
        lines = (self.origin, str(self.tree_size), _b64(self.root), *self.extensions)
        return "".join(f"{line}\n" for line in lines)

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        """The checkpoint a note text holds, read strictly: one spelling for each value."""
        lines = body.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise MalformedCheckpointError(
                "a checkpoint is at least three lines, each ended by \\n"
            )
        origin, size, root, *extensions = lines[:-1]
        if not _DECIMAL.fullmatch(size):
            raise MalformedCheckpointError("a tree size is decimal without leading zeros")
        raw = _b64decode(root)
        if raw is None:
            raise MalformedCheckpointError("a root hash is in canonical base64")
        return cls(origin, int(size), raw, tuple(extensions))


def _check_line(what: str, line: str) -> None:
    if not isinstance(line, str) or not line:
        raise MalformedCheckpointError(f"{what} is a non-empty line")
    if _LINE_CONTROL.search(line) or not _encodable(line):
        raise MalformedCheckpointError(f"{what} holds a newline, control character or non-UTF-8")
