"""MovieLens in the authors' order from their ``ml-100k.pkl``, and checked downloads.

The authors' file is a legacy ``torch.save`` of ``[(items, users), ratings]``; the
helper below writes files of exactly that layout (what the authors' file holds:
``_rebuild_tensor_v2`` with requires_grad False and no hooks, Long/Float storages),
so the reader is tested without the network and without the authors' file.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import yaml

from implicit_reg.arora2019 import data as matrix_data
from implicit_reg.arora2019.movielens_source import (
    TORCH_LEGACY_MAGIC,
    AuthorsFileError,
    authors_udata,
    read_authors_pickle,
    to_udata,
)
from implicit_reg.core.data_files import (
    ARCHIVE_NEEDS_NO_DATA,
    DataFileError,
    DataUnavailableError,
    download_checked,
    require_local_file,
)
from workflow_support import (
    ROOT,
    copy_repo,
    environment_without_shared_data,
    movielens_present,
    run_snakemake,
    shared_data_dir,
)

CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
TEST_CONFIG = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())


class _Storage:
    def __init__(self, key: str, values: np.ndarray) -> None:
        self.key, self.values = key, values


class _Tensor:
    def __init__(self, storage: _Storage) -> None:
        self.storage = storage

    def __reduce__(self):
        import torch._utils

        n = len(self.storage.values)
        return torch._utils._rebuild_tensor_v2, (self.storage, 0, (n,), (1,), False, None)


class _LegacyPickler(pickle.Pickler):
    def persistent_id(self, obj):
        import torch

        if isinstance(obj, _Storage):
            kind = torch.LongStorage if obj.values.dtype == np.int64 else torch.FloatStorage
            return ("storage", kind, obj.key, "cpu", len(obj.values), None)
        return None


def legacy_file(items: np.ndarray, users: np.ndarray, ratings: np.ndarray, payload_object=None) -> bytes:
    """Bytes in the layout of the authors' ``ml-100k.pkl`` (storages in the authors' key order)."""
    stores = {"3": _Storage("3", np.asarray(items, np.int64)), "2": _Storage("2", np.asarray(users, np.int64)),
              "1": _Storage("1", np.asarray(ratings, np.float32))}
    out = io.BytesIO()
    for head in (TORCH_LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True,
                                            "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(head, out, protocol=2)
    obj = payload_object if payload_object is not None else \
        [(_Tensor(stores["3"]), _Tensor(stores["2"])), _Tensor(stores["1"])]
    _LegacyPickler(out, protocol=2).dump(obj)
    keys = ["1", "2", "3"]
    pickle.dump(keys, out, protocol=2)
    for key in keys:
        values = stores[key].values
        out.write(len(values).to_bytes(8, "little"))
        out.write(values.astype(values.dtype.newbyteorder("<")).tobytes())
    return out.getvalue()


def _udata_arrays(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    table = np.loadtxt(path, dtype=np.int64, delimiter="\t")
    return table[:, 1] - 2, table[:, 0] - 2, table[:, 2].astype(np.float32)  # stored indices start at -1


def test_reads_the_stored_order_and_writes_udata() -> None:
    ratings = read_authors_pickle(legacy_file([143, 952, -1], [794, 17, -1], [5.0, 4.0, 1.0]))
    assert ratings.items.tolist() == [143, 952, -1] and ratings.users.tolist() == [794, 17, -1]
    assert ratings.ratings.dtype == np.float32 and ratings.ratings.tolist() == [5.0, 4.0, 1.0]
    # The first two are the team copy's first rows: user 796, item 145, rating 5; ...
    assert to_udata(ratings) == b"796\t145\t5\t0\n19\t954\t4\t0\n1\t1\t1\t0\n"


def test_the_test_copy_round_trips_byte_for_byte() -> None:
    path = ROOT / "tests" / "data" / "u.data"
    text = authors_udata(legacy_file(*_udata_arrays(path)), TEST_CONFIG["data"]["movielens"]["file_sha256"])
    assert text == path.read_bytes()
    assert len(matrix_data.read_movielens(path).values) == text.count(b"\n")


def test_team_copy_round_trips_to_the_configured_sha256() -> None:
    """The sha256 the paper's provenance keys carry is that of u.data in the authors' order."""
    if not movielens_present():
        pytest.skip("no team copy of MovieLens here (IMPLICIT_REG_SHARED_DATA or ../shared)")
    path = shared_data_dir() / "data" / "ml-100k" / "u.data"
    text = authors_udata(legacy_file(*_udata_arrays(path)), CONFIG["data"]["movielens"]["file_sha256"])
    assert len(text) == path.stat().st_size


def test_refuses_any_other_global_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    payload = legacy_file([0], [0], [1.0], payload_object=[(Evil(), Evil()), Evil()])
    with pytest.raises(AuthorsFileError, match=r"refusing the global (posix|os)\.system"):
        read_authors_pickle(payload)
    assert not marker.exists()


def _damaged(damage: str) -> bytes:
    good = legacy_file([0, 1], [1, 0], [4.0, 2.0])
    if damage == "truncated":
        return good[:-3]
    if damage == "trailing":
        return good + b"\0"
    if damage == "zip":  # the new torch.save format is a zip archive
        return b"PK\x03\x04" + good[4:]
    ratings = np.array([4, 2], np.int64) if damage == "int_ratings" else np.array([4.0, 2.0], np.float32)
    items = np.array([0, 1] if damage == "int_ratings" else [0, 1, 2], np.int64)
    return _with_storages([_Storage("3", items), _Storage("2", np.array([1, 0], np.int64)), _Storage("1", ratings)])


@pytest.mark.parametrize("damage", ["truncated", "trailing", "zip", "int_ratings", "unequal_lengths"])
def test_damaged_or_other_files_are_refused(damage: str) -> None:
    with pytest.raises(AuthorsFileError):
        read_authors_pickle(_damaged(damage))


def _with_storages(stores: list[_Storage]) -> bytes:
    out = io.BytesIO()
    for head in (TORCH_LEGACY_MAGIC, 1001, {"little_endian": True}):
        pickle.dump(head, out, protocol=2)
    _LegacyPickler(out, protocol=2).dump([(_Tensor(stores[0]), _Tensor(stores[1])), _Tensor(stores[2])])
    pickle.dump([s.key for s in stores], out, protocol=2)
    for s in stores:
        out.write(len(s.values).to_bytes(8, "little") + s.values.tobytes())
    return out.getvalue()


def test_ratings_must_be_whole_stars() -> None:
    with pytest.raises(AuthorsFileError, match="whole numbers 1..5"):
        to_udata(read_authors_pickle(legacy_file([0], [0], [3.5])))
    with pytest.raises(AuthorsFileError, match="whole numbers 1..5"):
        to_udata(read_authors_pickle(legacy_file([0], [0], [6.0])))


def test_converted_text_must_have_the_configured_sha256() -> None:
    with pytest.raises(AuthorsFileError, match=r"sha256 [0-9a-f]{64}, not data.movielens.file_sha256 0{64}"):
        authors_udata(legacy_file([0], [0], [3.0]), "0" * 64)


def test_pinned_source_is_a_full_commit_of_the_authors_repository() -> None:
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    movielens = schema["properties"]["data"]["properties"]["movielens"]["properties"]
    url = movielens["authors_url"]["default"]
    assert url.startswith("https://raw.githubusercontent.com/roosephu/deep_matrix_factorization/84ece27")
    assert len(url.split("/")[5]) == 40 and url.endswith("/datasets/ml-100k/ml-100k.pkl")
    assert len(movielens["authors_sha256"]["default"]) == 64
    assert CONFIG["data"]["movielens"]["path"] is None and CONFIG["data"]["movielens"]["source"] == "authors"


# ---------------------------------------------------------------- downloads


def test_download_checks_the_sha256(tmp_path: Path) -> None:
    source = tmp_path / "file.bin"
    source.write_bytes(b"data")
    digest = hashlib.sha256(b"data").hexdigest()
    assert download_checked(source.as_uri(), digest, "data.movielens.path") == b"data"
    with pytest.raises(DataFileError, match="differs from the expected 0{64}"):
        download_checked(source.as_uri(), "0" * 64, "data.movielens.path")
    with pytest.raises(DataFileError, match="refusing an unchecked download"):
        download_checked(source.as_uri(), "", "data.movielens.path")


def test_offline_download_error_is_one_line_naming_url_key_and_archive() -> None:
    def offline(url, timeout):
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))

    url = "https://raw.githubusercontent.com/x/y/0000/f.pkl"
    with pytest.raises(DataUnavailableError) as err:
        download_checked(url, "0" * 64, "data.movielens.path", opener=offline)
    text = str(err.value)
    assert "\n" not in text and url in text and "data.movielens.path" in text and ARCHIVE_NEEDS_NO_DATA in text


def test_missing_local_file_names_key_and_archive(tmp_path: Path) -> None:
    with pytest.raises(DataFileError) as err:
        require_local_file("no/u.data", "data.movielens.path", "point it at u.data", tmp_path)
    assert str(err.value).startswith("data.movielens.path: file 'no/u.data' does not exist; point it at u.data")
    (tmp_path / "d").mkdir()
    assert require_local_file("d", "razin2020.data.data_dir", "x", tmp_path, directory=True) == "d"


def test_rule_fetches_converts_and_fails_offline_in_one_line(tmp_path: Path) -> None:
    """The movielens_authors rule: a file:// URL stands for the pinned one (no network here)."""
    work = copy_repo(tmp_path / "repo")
    pkl = tmp_path / "ml-100k.pkl"
    pkl.write_bytes(legacy_file(*_udata_arrays(ROOT / "tests" / "data" / "u.data")))
    target = "resources/ml-100k/authors/u.data"
    env = environment_without_shared_data()

    def run(url: str, sha: str):
        return run_snakemake(target, "--cores", "1", "--configfile", "config/test.yaml", "--config",
                             f'data={{"movielens": {{"authors_url": "{url}", "authors_sha256": "{sha}"}}}}',
                             cwd=work, env=env)

    out = run(pkl.as_uri(), hashlib.sha256(pkl.read_bytes()).hexdigest())
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert (work / target).read_bytes() == (ROOT / "tests" / "data" / "u.data").read_bytes()
    (work / target).unlink()
    url = "http://127.0.0.1:9/ml-100k.pkl"  # the discard port: refused, as offline
    out = run(url, "0" * 64)
    assert out.returncode != 0 and not (work / target).exists()
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("error: cannot download")]
    assert len(lines) == 1 and url in lines[0] and "data.movielens.path" in lines[0], out.stderr[-3000:]
