"""Configured data files: checksums, readable .pt inputs, validated MovieLens contents.

Every message names the file (MovieLens: ``file:line``, 1-based) and, where a config
key points to the file, that key.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from implicit_reg.arora2019 import data as matrix_data
from implicit_reg.core.data_files import DataFileError, load_torch_file, verify_sha256

KEY = "razin2020.data.datasets.completion_2x2_w_1_1_0.pt_sha256"


def test_verify_sha256_accepts_the_right_digest_and_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "u.data"
    path.write_bytes(b"1\t1\t5\t0\n")
    digest = hashlib.sha256(b"1\t1\t5\t0\n").hexdigest()
    assert verify_sha256(path, digest, "data.movielens.file_sha256") == digest
    with pytest.raises(DataFileError, match=rf"{path}: sha256 {digest} differs from data.movielens.file_sha256 0+"):
        verify_sha256(path, "0" * 64, "data.movielens.file_sha256")


def test_verify_sha256_refuses_a_file_without_a_configured_digest(tmp_path: Path) -> None:
    path = tmp_path / "u.data"
    path.write_bytes(b"x")
    with pytest.raises(DataFileError, match=rf"{path}: no sha256 configured at data.movielens.file_sha256"):
        verify_sha256(path, None, "data.movielens.file_sha256")


def test_load_torch_file_reads_tensors(tmp_path: Path) -> None:
    path = tmp_path / "d.pt"
    torch.save({"w": torch.ones(2)}, path)
    assert torch.equal(load_torch_file(path, KEY)["w"], torch.ones(2))


@pytest.mark.parametrize("content", [b"", b"garbage bytes", None])
def test_corrupt_pt_file_names_file_and_key(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "d.pt"
    if content is None:  # truncated archive
        torch.save({"w": torch.arange(1000)}, path)
        path.write_bytes(path.read_bytes()[:300])
    else:
        path.write_bytes(content)
    with pytest.raises(DataFileError) as info:
        load_torch_file(path, KEY)
    message = str(info.value)
    assert str(path) in message and KEY in message
    assert "weights_only=False" not in message


# ------------------------------------------------------------ MovieLens contents

GOOD = "1\t3\t5\t0\n2\t1\t4\t0\n1\t2\t1\t0\n"


def _ratings(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "u.data"
    path.write_text(text)
    return path


def test_valid_movielens_file_is_read(tmp_path: Path) -> None:
    ratings = matrix_data.read_movielens(_ratings(tmp_path, GOOD + "\n"))  # a trailing blank line is fine
    assert ratings.shape == (3, 2)
    np.testing.assert_array_equal(ratings.values, [5, 4, 1])


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("3\t1\t0\t0", "rating 0 is outside 1..5"),
        ("3\t1\t9\t0", "rating 9 is outside 1..5"),
        ("2\t1\t3\t0", "user 2 rated item 1 already on line 2"),
        ("3\t1", "expected tab-separated integers"),
        ("3\tabc\t4\t0", "expected tab-separated integers"),
        ("0\t1\t4\t0", "ids must be 1-based"),
    ],
)
def test_bad_movielens_line_is_named_by_file_and_line(tmp_path: Path, bad_line: str, message: str) -> None:
    path = _ratings(tmp_path, GOOD + bad_line + "\n" + "4\t4\t4\t0\n")
    with pytest.raises(matrix_data.MovieLensFormatError) as info:
        matrix_data.read_movielens(path)
    assert str(info.value).startswith(f"{path}:4: ")  # the 4th line, counted from 1
    assert message in str(info.value)


def test_empty_movielens_file_fails(tmp_path: Path) -> None:
    with pytest.raises(matrix_data.MovieLensFormatError, match="no ratings"):
        matrix_data.read_movielens(_ratings(tmp_path, ""))


def test_team_test_copy_is_valid() -> None:
    path = Path(__file__).parent / "data" / "u.data"
    assert len(matrix_data.read_movielens(path).values) == 600


def test_configured_sha256_matches_the_shared_movielens_copy() -> None:
    import yaml
    from workflow_support import ROOT, movielens_present, shared_data_dir

    if not movielens_present():
        pytest.skip("no team copy of MovieLens here (IMPLICIT_REG_SHARED_DATA or ../shared)")
    movielens = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["data"]["movielens"]
    verify_sha256(shared_data_dir() / "data" / "ml-100k" / "u.data", movielens["file_sha256"],
                  "data.movielens.file_sha256")
    verify_sha256(ROOT / "tests/data/u.data", yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
                  ["data"]["movielens"]["file_sha256"], "data.movielens.file_sha256")
