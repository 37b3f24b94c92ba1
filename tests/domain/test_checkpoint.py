"""Signed checkpoints read and written as Go's sumdb/note and the C2SP specs do.

The vectors are copied from their sources, not made here: golang.org/x/mod at fe2ec04f
(sumdb/note/note_test.go and note.go's example, sumdb/client_test.go, sumdb/tlog/note_test.go,
gosumcheck/main.go) and C2SP/C2SP at 5ba5ee83 (signed-note.md, tlog-checkpoint.md). Ed25519 is
deterministic, so signing Go's texts with Go's keys must give Go's signatures byte for byte.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.checkpoint import (
    MAX_NOTE_BYTES,
    MAX_SIGNATURES,
    MAX_TREE_SIZE,
    Checkpoint,
    InvalidSignatureError,
    KeyFormatError,
    MalformedCheckpointError,
    MalformedNoteError,
    NoteError,
    Signer,
    UnverifiedNoteError,
    Verifier,
    format_signer_key,
    format_verifier_key,
    is_valid_name,
    key_hash,
    open_note,
    parse_signer_key,
    parse_verifier_key,
    sign_note,
    verify_note,
)

# sumdb/note/note_test.go (TestNewSigner, TestSign, TestOpen) and the example in note.go.
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb"
    "6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33"
    "WWd1RvMc+QQ=\n"
)

# sumdb/client_test.go: the test server's key, and two tree notes of TestClientForkDetection
# (the go.sum database's checkpoints, the format tlog-checkpoint grew from).
SUMDB_TEST_SKEY = (
    "PRIVATE+KEY+localhost.localdev/sumdb+00000c67+AXu6+oaVaOYuQOFrf1V59JK1owcFlJcHwwXHDfDGxSPk"
)
SUMDB_TEST_VKEY = "localhost.localdev/sumdb+00000c67+AcTrnkbUA+TU4heY3hkjiSES/DSQniBqIeQ/YppAUtK6"
SUMDB_TREES = [
    (
        5,
        "nWzN20+pwMt62p7jbv1/NlN95ePTlHijabv5zO/s36w=",
        "AAAMZ5/2FVAdMH58kmnz/0h299pwyskEbzDzoa2/YaPdhvLya4YWDFQQxu2TQb5GpwAH4NdWnTwuhILafisyf3CNbgg=",
    ),
    (
        6,
        "wc4SkQt52o5W2nQ8To2ARs+mWuUJjss+sdleoiqxMmM=",
        "AAAMZ6oRNswlEZ6ZZhxrCvgl1MBy+nusq4JU+TG6Fe2NihWLqOzb+y2c2kzRLoCr4tvw9o36ucQEnhc20e4nA4Qc/wc=",
    ),
]

# tlog-checkpoint.md's example, as printed. Its key is published nowhere, but its key ID,
# 033de0ae, is sum.golang.org's (gosumcheck/main.go): it is a checkpoint of the go.sum database
# with origin and key name renamed, and with them restored it verifies under that key.
C2SP_CHECKPOINT = (
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcy"
    "v2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)
SUM_GOLANG_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"

# signed-note.md's example: a verifier key and a note it verifies.
C2SP_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
C2SP_NOTE = (
    "This is an example message.\n"
    "\n"
    "— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRK"
    "uwHjG1Yu72IneyaQM=\n"
)

PETER = parse_verifier_key(PETER_VKEY)
ENOCH = parse_verifier_key(ENOCH_VKEY)


# Go's keys and notes


def test_go_signer_key_reads_back_to_itself_and_makes_go_verifier_key() -> None:
    signer = parse_signer_key(PETER_SKEY)
    assert (signer.name, signer.key_hash) == ("PeterNeumann", 0xC74F20A3)
    assert format_signer_key(signer) == PETER_SKEY
    assert signer.verifier == PETER
    assert format_verifier_key(PETER) == PETER_VKEY
    assert key_hash("PeterNeumann", PETER.public_key) == 0xC74F20A3


def test_signing_go_text_with_go_key_gives_go_note_byte_for_byte() -> None:
    assert sign_note(TEXT, parse_signer_key(PETER_SKEY)) == TEXT + "\n" + PETER_SIG


def test_go_note_verifies_by_known_keys_and_skips_unknown_ones() -> None:
    note = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert verify_note(note, [PETER]) == (TEXT, ("PeterNeumann",))
    assert verify_note(note.encode(), [PETER, ENOCH]) == (TEXT, ("PeterNeumann", "EnochRoot"))
    assert verify_note(TEXT + "\n" + ENOCH_SIG, [ENOCH, PETER, ENOCH]) == (TEXT, ("EnochRoot",))
    with pytest.raises(UnverifiedNoteError):
        verify_note(note, [])


def test_go_note_with_altered_signature_of_known_key_is_refused() -> None:
    altered = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(InvalidSignatureError, match=r"PeterNeumann\+c74f20a3"):
        verify_note(TEXT + "\n" + altered, [PETER])
    # An altered signature of an unknown key is skipped, as repeated signatures are.
    enoch_altered = ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
    note = TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + enoch_altered
    assert verify_note(note, [PETER]) == (TEXT, ("PeterNeumann",))
    with pytest.raises(InvalidSignatureError, match="EnochRoot"):
        verify_note(note, [PETER, ENOCH])


@pytest.mark.parametrize(
    "note",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        TEXT + "\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqd"
        "ngotpRZb6KE6RyyBwJnAM=",
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        TEXT + "\n" + PETER_SIG * (MAX_SIGNATURES + 1),
    ],
)
def test_go_malformed_notes_are_refused(note: str) -> None:
    with pytest.raises(MalformedNoteError):
        verify_note(note, [PETER])


def test_a_note_that_is_not_utf8_is_refused() -> None:
    note = (TEXT + "\n" + PETER_SIG).encode()
    for bad in (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"):  # Go's cases too
        with pytest.raises(MalformedNoteError, match="UTF-8"):
            verify_note(bad + note, [PETER])
    with pytest.raises(MalformedNoteError, match="UTF-8"):
        verify_note("\ud800" + TEXT + "\n" + PETER_SIG, [PETER])


def test_go_verifier_key_manglings_are_refused() -> None:
    """TestNewVerifier: every proper substring and every byte moved up by one is refused."""
    for bad in [*_manglings(PETER_VKEY), *_GO_BAD_VKEYS]:
        with pytest.raises(KeyFormatError):
            parse_verifier_key(bad)


def test_go_signer_key_manglings_are_refused() -> None:
    for bad in _manglings(PETER_SKEY):
        with pytest.raises(KeyFormatError):
            parse_signer_key(bad)


_GO_BAD_VKEYS = [
    # wrong length key and unknown algorithm, each with an adjusted key hash
    "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
    "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    # and ours: an uppercase key ID, non-canonical base64, a verifier key given as a signer's
    "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TX",
    PETER_SKEY,
]


def _manglings(key: str) -> list[str]:
    substrings = [
        key[i:j]
        for i in range(len(key) + 1)
        for j in range(i + 1, len(key) + 1)
        if j - i < len(key)
    ]
    moved = [key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :] for i in range(len(key))]
    return substrings + moved


# The C2SP examples and the go.sum database's checkpoints


def test_signed_note_spec_example_verifies() -> None:
    verifier = parse_verifier_key(C2SP_VKEY)
    assert format_verifier_key(verifier) == C2SP_VKEY
    assert verify_note(C2SP_NOTE, [verifier]) == (
        "This is an example message.\n",
        ("example.com/foo",),
    )


@pytest.mark.parametrize(("size", "root", "signature"), SUMDB_TREES)
def test_go_sumdb_tree_notes_open_as_checkpoints_and_sign_alike(
    size: int, root: str, signature: str
) -> None:
    body = f"go.sum database tree\n{size}\n{root}\n"
    note = f"{body}\n— localhost.localdev/sumdb {signature}\n"
    checkpoint = Checkpoint("go.sum database tree", size, base64.b64decode(root))
    assert checkpoint.body() == body
    assert open_note(note, [parse_verifier_key(SUMDB_TEST_VKEY)]) == (
        checkpoint,
        ("localhost.localdev/sumdb",),
    )
    signer = parse_signer_key(SUMDB_TEST_SKEY)
    assert format_verifier_key(signer.verifier) == SUMDB_TEST_VKEY
    assert sign_note(checkpoint.body(), signer) == note


def test_tlog_checkpoint_spec_example_reads_and_its_go_sum_original_verifies() -> None:
    body = C2SP_CHECKPOINT.split("\n\n")[0]
    checkpoint = Checkpoint.parse(body + "\n")
    assert (checkpoint.origin, checkpoint.tree_size, checkpoint.extensions) == (
        "example.com/behind-the-sofa",
        20852163,
        (),
    )
    assert checkpoint.root == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert checkpoint.body() == body + "\n"
    with pytest.raises(UnverifiedNoteError):
        open_note(C2SP_CHECKPOINT, [PETER, parse_verifier_key(SUM_GOLANG_VKEY)])
    original = C2SP_CHECKPOINT.replace("example.com/behind-the-sofa\n", "go.sum database tree\n")
    original = original.replace("— example.com/behind-the-sofa ", "— sum.golang.org ")
    opened, names = open_note(original, [parse_verifier_key(SUM_GOLANG_VKEY)])
    assert opened == Checkpoint("go.sum database tree", 20852163, checkpoint.root)
    assert names == ("sum.golang.org",)


def test_checkpoint_body_is_go_tree_format() -> None:
    """sumdb/tlog/note_test.go's TestFormatTree: a record hash is SHA-256(0x00 ‖ record)."""
    root = hashlib.sha256(b"\x00hello world").digest()
    golden = "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n"
    assert Checkpoint("go.sum database tree", 123456789012, root).body() == golden
    assert Checkpoint.parse(golden + "JOE\n") == Checkpoint(
        "go.sum database tree", 123456789012, root, ("JOE",)
    )


# Checkpoint bodies


ROOT = bytes(range(32))
ROOT64 = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    "body",
    [
        "go.sum database tree\n0xabcdef\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n",  # Go's
        "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBTOOBIG=\n",
        f"log\n1\n{ROOT64}",  # no final newline
        "log\n1\n",  # two lines
        f"\n1\n{ROOT64}\n",  # empty origin
        f"log\n01\n{ROOT64}\n",  # leading zero
        f"log\n+1\n{ROOT64}\n",
        f"log\n-1\n{ROOT64}\n",
        f"log\n 1\n{ROOT64}\n",
        "log\n\u0661\n" + ROOT64 + "\n",  # a digit, but not an ASCII one
        f"log\n{MAX_TREE_SIZE + 1}\n{ROOT64}\n",
        f"log\n{'9' * 5000}\n{ROOT64}\n",
        f"log\n1\n{ROOT64[:-2]}=\n",  # not canonical: the last character's spare bits are set
        f"log\n1\n{base64.b64encode(ROOT[:31]).decode()}\n",  # 31 bytes
        f"log\n1\n{ROOT64}\n\next\n",  # an empty extension line
        f"log\r\n1\n{ROOT64}\n",  # a control character
    ],
)
def test_malformed_checkpoint_bodies_are_refused(body: str) -> None:
    with pytest.raises(MalformedCheckpointError):
        Checkpoint.parse(body)


@pytest.mark.parametrize(
    "fields",
    [
        ("", 1, ROOT, ()),
        ("a\nb", 1, ROOT, ()),
        ("log", -1, ROOT, ()),
        ("log", MAX_TREE_SIZE + 1, ROOT, ()),
        ("log", True, ROOT, ()),
        ("log", 1, ROOT[:31], ()),
        ("log", 1, ROOT, ("",)),
        ("log", 1, ROOT, ("a\x00",)),
        ("\ud800", 1, ROOT, ()),
    ],
)
def test_a_checkpoint_cannot_hold_what_its_body_could_not_say(
    fields: tuple[str, int, bytes, tuple[str, ...]],
) -> None:
    with pytest.raises(MalformedCheckpointError):
        Checkpoint(*fields)


def test_a_trusted_note_whose_text_is_no_checkpoint_is_refused() -> None:
    with pytest.raises(MalformedCheckpointError):
        open_note(TEXT + "\n" + PETER_SIG, [PETER])


# Names, signing and size bounds


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("example.com/log", True),
        ("quasimodo.example/salvatore", True),
        ("ö—é", True),
        ("", False),
        ("a b", False),
        ("a+b", False),
        ("a\tb", False),
        ("a\x01b", False),
        ("a\u00a0b", False),  # no-break space
        ("a\u0085b", False),  # next line
        ("a\u2003b", False),  # em space
        ("a\u2028b", False),  # line separator
        ("a\u3000b", False),  # ideographic space
        ("a\ud800", False),  # not UTF-8
    ],
)
def test_key_names_follow_the_spec(name: str, valid: bool) -> None:
    assert is_valid_name(name) is valid
    if not valid:
        with pytest.raises(KeyFormatError):
            Signer(name, bytes(32))


@pytest.mark.parametrize("body", ["no newline", "a\x00\n", "tab\there\n", "crlf\r\n", "\ud800\n"])
def test_sign_note_refuses_a_body_no_note_could_carry(body: str) -> None:
    with pytest.raises(MalformedNoteError):
        sign_note(body, Signer("log", bytes(32)))


def test_sign_note_needs_a_signer_and_signs_in_the_order_given() -> None:
    with pytest.raises(ValueError, match="signer"):
        sign_note(TEXT)
    peter, other = parse_signer_key(PETER_SKEY), Signer.generate("other")
    note = sign_note(TEXT, peter, other)
    assert note.startswith(TEXT + "\n" + PETER_SIG + "— other ")
    assert verify_note(note, [other.verifier, PETER]) == (TEXT, ("PeterNeumann", "other"))


def test_over_long_notes_are_refused_before_any_work() -> None:
    signer = Signer("log", bytes(32))
    with pytest.raises(MalformedNoteError, match="at most"):
        sign_note("x" * MAX_NOTE_BYTES + "\n", signer)
    note = sign_note("x\n", signer)
    padded = "x" * (MAX_NOTE_BYTES - len(note) + 1) + note
    with pytest.raises(MalformedNoteError, match="at most"):
        verify_note(padded, [signer.verifier])
    with pytest.raises(MalformedNoteError, match="at most"):
        verify_note(padded.encode(), [signer.verifier])
    wide = "é" * (MAX_NOTE_BYTES // 2) + note  # few enough characters, too many bytes
    with pytest.raises(MalformedNoteError, match="at most"):
        verify_note(wide, [signer.verifier])


def test_a_signer_never_shows_its_key() -> None:
    signer = parse_signer_key(PETER_SKEY)
    assert repr(signer) == "Signer('PeterNeumann', key_hash=c74f20a3)"
    assert PETER_SKEY.rsplit("+", 1)[1] not in repr(signer) + str(signer)


def test_verifier_keys_are_checked_against_their_own_hash() -> None:
    verifier = Verifier("log", PETER.public_key)
    assert verifier.key_hash == key_hash("log", PETER.public_key) != PETER.key_hash
    with pytest.raises(KeyFormatError):
        Verifier("log", PETER.public_key[:31])


# Properties: round trips, and no altered note accepted as another checkpoint

names = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=20,
).filter(is_valid_name)
lines = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1)
checkpoints = st.builds(
    Checkpoint,
    origin=lines,
    tree_size=st.integers(0, MAX_TREE_SIZE),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(lines, max_size=3).map(tuple),
)
signers = st.builds(Signer, names, st.binary(min_size=32, max_size=32))


@given(checkpoints, signers)
def test_a_signed_checkpoint_opens_to_itself(checkpoint: Checkpoint, signer: Signer) -> None:
    note = sign_note(checkpoint.body(), signer)
    assert Checkpoint.parse(checkpoint.body()) == checkpoint
    assert open_note(note, [signer.verifier]) == (checkpoint, (signer.name,))
    assert open_note(note.encode(), [signer.verifier]) == (checkpoint, (signer.name,))
    assert parse_signer_key(format_signer_key(signer)).verifier == signer.verifier
    assert parse_verifier_key(format_verifier_key(signer.verifier)) == signer.verifier


@given(checkpoints, signers, st.data())
def test_any_byte_changed_in_a_signed_checkpoint_is_refused(
    checkpoint: Checkpoint, signer: Signer, data: st.DataObject
) -> None:
    note = bytearray(sign_note(checkpoint.body(), signer).encode())
    at = data.draw(st.integers(0, len(note) - 1))
    note[at] = data.draw(st.integers(0, 255).filter(lambda b: b != note[at]))
    with pytest.raises(NoteError):
        open_note(bytes(note), [signer.verifier])


def test_every_bit_flip_and_every_deletion_is_refused() -> None:
    signer = parse_signer_key(PETER_SKEY)
    note = sign_note(Checkpoint("example.com/log", 20852163, ROOT, ("ext",)).body(), signer)
    data = note.encode()
    altered = [data[:i] + data[i + 1 :] for i in range(len(data))]
    altered += [
        data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1 :]
        for i in range(len(data))
        for bit in range(8)
    ]
    for note_bytes in altered:
        with pytest.raises(NoteError):
            open_note(note_bytes, [signer.verifier])


@given(checkpoints, signers, signers, st.data())
def test_a_change_to_an_unknown_cosignature_never_changes_the_checkpoint(
    checkpoint: Checkpoint, signer: Signer, witness: Signer, data: st.DataObject
) -> None:
    """A byte changed where no known key signed (a witness's line) may be accepted, but only
    as the very checkpoint the log signed."""
    note = bytearray(sign_note(checkpoint.body(), signer, witness).encode())
    at = data.draw(st.integers(0, len(note) - 1))
    note[at] = data.draw(st.integers(0, 255).filter(lambda b: b != note[at]))
    try:
        opened, names = open_note(bytes(note), [signer.verifier])
    except NoteError:
        return
    assert opened == checkpoint and names == (signer.name,)
