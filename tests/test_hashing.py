"""The one sha256 helper: file digests equal sha256sum's, whatever the chunk size."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from implicit_reg.core.hashing import sha256_file, sha256_text


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_file_digest_is_the_sha256_of_its_bytes(tmp_path: Path, chunk: int) -> None:
    data = bytes(range(256)) * 41 + b"tail"
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    assert sha256_file(path, chunk=chunk) == hashlib.sha256(data).hexdigest()


def test_known_vectors() -> None:
    # FIPS 180-2 test vector and the digest of empty input.
    assert sha256_text("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256_text("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_text_digest_hashes_utf8(tmp_path: Path) -> None:
    text = '{"ε":1e-3,"name":"Razin & Cohen"}'
    path = tmp_path / "t.json"
    path.write_text(text, encoding="utf-8")
    assert sha256_text(text) == sha256_file(path)
