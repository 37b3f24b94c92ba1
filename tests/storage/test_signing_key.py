"""The checkpoint signing key on disk: made once, the owner's alone, refused when it is not."""

from __future__ import annotations

import os
import re
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ledger.domain.checkpoint import (
    Signer,
    format_signer_key,
    format_verifier_key,
    open_note,
    parse_signer_key,
    sign_note,
)
from ledger.storage.signing_key import SigningKeyError, load_or_create

NAME = "ledger.example/quality"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "var" / "checkpoint.key"


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that would leave a new file readable by all, as a careless service unit might."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_start_makes_a_private_key_file_in_go_signer_key_form(
    key_file: Path, open_umask: None
) -> None:
    signer = load_or_create(key_file, NAME)
    assert mode(key_file) == 0o600
    text = key_file.read_text()
    assert text == format_signer_key(signer) + "\n"
    assert text.startswith(f"PRIVATE+KEY+{NAME}+{signer.key_hash:08x}+")
    assert parse_signer_key(text.strip()).verifier == signer.verifier
    assert sorted(p.name for p in key_file.parent.iterdir()) == ["checkpoint.key"]  # no temp file


def test_later_starts_use_the_same_key(key_file: Path) -> None:
    first = load_or_create(key_file, NAME)
    again = load_or_create(key_file, NAME)
    assert format_signer_key(again) == format_signer_key(first)
    assert format_verifier_key(again.verifier) == format_verifier_key(first.verifier)
    note = sign_note("log\n0\n" + "A" * 43 + "=\n", again)
    assert open_note(note, [first.verifier])[1] == (NAME,)


def test_starts_racing_to_make_the_key_all_end_with_one_key(key_file: Path) -> None:
    start = threading.Barrier(8)
    keys: list[str] = []

    def starting() -> None:
        start.wait()
        keys.append(format_signer_key(load_or_create(key_file, NAME)))

    threads = [threading.Thread(target=starting) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and set(keys) == {key_file.read_text().strip()}
    assert sorted(p.name for p in key_file.parent.iterdir()) == ["checkpoint.key"]


@pytest.mark.parametrize("file_mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o660])
def test_a_key_file_open_to_group_or_others_is_refused_and_kept(
    key_file: Path, file_mode: int
) -> None:
    load_or_create(key_file, NAME)
    before = key_file.read_bytes()
    key_file.chmod(file_mode)
    with pytest.raises(
        SigningKeyError, match=f"mode {file_mode:04o}.*chmod 600 {re.escape(str(key_file))}"
    ):
        load_or_create(key_file, NAME)
    assert key_file.read_bytes() == before


def test_a_key_file_readable_by_its_owner_alone_is_used(key_file: Path) -> None:
    signer = load_or_create(key_file, NAME)
    key_file.chmod(0o400)
    assert format_signer_key(load_or_create(key_file, NAME)) == format_signer_key(signer)


def private_file(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    path.chmod(0o600)
    return path


@pytest.mark.parametrize(
    ("cut", "reason"),
    [
        (lambda key: b"", "is empty"),
        (lambda key: key[: len(key) // 2], "ends mid-line"),
        (lambda key: key[:-1], "ends mid-line"),
        (lambda key: key[: len(key) // 2] + b"\n", "does not hold a signing key"),
        (lambda key: key.replace(b"+", b"-", 3), "does not hold a signing key"),
        (lambda key: b"\x00" * 100 + b"\n", "does not hold a signing key"),
        (lambda key: b"\xff" + key, "does not hold a signing key"),
        (lambda key: key * 100, "is too long"),
    ],
)
def test_a_cut_short_or_corrupt_key_file_is_a_clear_error_and_is_kept(
    key_file: Path, cut: Callable[[bytes], bytes], reason: str
) -> None:
    whole = (format_signer_key(Signer.generate(NAME)) + "\n").encode()
    content = cut(whole)
    private_file(key_file, content)
    with pytest.raises(
        SigningKeyError, match=f"{re.escape(str(key_file))} {reason}.*restore it from a backup"
    ):
        load_or_create(key_file, NAME)
    assert key_file.read_bytes() == content


def test_a_key_of_another_name_is_refused(key_file: Path) -> None:
    load_or_create(key_file, "other.example/log")
    with pytest.raises(SigningKeyError, match=r"holds the key of 'other\.example/log'"):
        load_or_create(key_file, NAME)


def test_a_directory_in_the_key_file_place_is_refused(key_file: Path) -> None:
    key_file.mkdir(parents=True)
    key_file.chmod(0o700)
    with pytest.raises(SigningKeyError, match="not a regular file"):
        load_or_create(key_file, NAME)


@pytest.mark.parametrize("name", ["", "has space", "has+plus"])
def test_an_invalid_key_name_is_refused_before_any_file_is_made(key_file: Path, name: str) -> None:
    with pytest.raises(SigningKeyError, match="not a valid key name"):
        load_or_create(key_file, name)
    assert not key_file.parent.exists()


def test_a_fifo_in_the_key_file_place_is_refused_without_waiting(key_file: Path) -> None:
    key_file.parent.mkdir(parents=True)
    os.mkfifo(key_file, 0o600)
    with pytest.raises(SigningKeyError, match="not a regular file"):
        load_or_create(key_file, NAME)
