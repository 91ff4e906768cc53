"""engine.datasets: IDX reading, lookup order, downloads (from local file:// mirrors only)."""

from __future__ import annotations

import gzip
import hashlib
import struct
from dataclasses import replace

import numpy as np
import pytest

from engine import datasets
from engine.datasets import DatasetError, DatasetFile, DatasetSpec


def _write_idx(path, array: np.ndarray, compress: bool = True) -> None:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.tobytes()
    if compress:
        data = gzip.compress(data)
    path.write_bytes(data)


def _tiny_mnist(folder, n=12, compress=True):
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    for split, count in (("train", n), ("t10k", n // 2)):
        _write_idx(folder / f"{split}-images-idx3-ubyte{suffix}",
                   rng.integers(0, 256, (count, 28, 28), dtype=np.uint8), compress)
        _write_idx(folder / f"{split}-labels-idx1-ubyte{suffix}",
                   rng.integers(0, 10, count, dtype=np.uint8), compress)
    return folder


def test_read_idx_gz_and_raw_agree(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a.gz", a)
    _write_idx(tmp_path / "a.raw", a, compress=False)
    np.testing.assert_array_equal(datasets.read_idx(tmp_path / "a.gz"), a)
    np.testing.assert_array_equal(datasets.read_idx(tmp_path / "a.raw"), a)


def test_read_idx_big_endian_ints(tmp_path):
    a = np.array([1, -2, 300000], dtype=">i4")
    _write_idx(tmp_path / "i", a, compress=False)
    out = datasets.read_idx(tmp_path / "i")
    assert out.tolist() == [1, -2, 300000]


def test_read_idx_rejects_bad_magic_and_truncation(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x12\x34\x08\x01" + b"\0" * 8)
    with pytest.raises(DatasetError, match="not an IDX"):
        datasets.read_idx(tmp_path / "bad")
    a = np.zeros((10, 28, 28), np.uint8)
    _write_idx(tmp_path / "cut", a, compress=False)
    (tmp_path / "cut").write_bytes((tmp_path / "cut").read_bytes()[:-5])
    with pytest.raises(DatasetError, match="truncated"):
        datasets.read_idx(tmp_path / "cut")


def test_shared_mnist_loads(mnist):
    assert mnist.train.images.shape == (10000, 28, 28)
    assert mnist.test.images.shape == (10000, 28, 28)
    assert mnist.train.images.dtype == np.uint8
    assert set(np.unique(mnist.test.labels)) == set(range(10))


def test_lookup_order_explicit_then_app_data_then_system(tmp_path, monkeypatch):
    explicit = _tiny_mnist(tmp_path / "explicit")
    app = _tiny_mnist(datasets.app_data_dir() / "mnist")
    assert datasets.locate("mnist", explicit)["train_images"].parent == explicit
    assert datasets.locate("mnist", tmp_path / "elsewhere")["train_images"].parent == app
    # Fashion-MNIST also looks where Debian's package puts it.
    system = _tiny_mnist(tmp_path / "usr-share")
    spec = replace(datasets.FASHION_MNIST, system_dirs=(str(system),))
    assert datasets.locate(spec)["test_labels"].parent == system
    assert datasets.FASHION_MNIST.system_dirs == ("/usr/share/datasets/fashion-mnist",)


def test_uncompressed_files_found(tmp_path):
    folder = _tiny_mnist(tmp_path / "raw", compress=False)
    ds = datasets.load("mnist", folder)
    assert ds.train.images.shape == (12, 28, 28) and ds.test.labels.shape == (6,)


def test_missing_dataset_message_says_where(tmp_path):
    with pytest.raises(DatasetError) as info:
        datasets.load("mnist", tmp_path / "empty")
    text = str(info.value)
    assert "MNIST was not found" in text
    assert str(tmp_path / "empty") in text
    assert "train-images-idx3-ubyte.gz" in text


def _local_spec(tmp_path, corrupt_md5: bool = False) -> DatasetSpec:
    mirror = _tiny_mnist(tmp_path / "mirror")
    files = []
    for role, name in (("train_images", "train-images-idx3-ubyte.gz"), ("train_labels", "train-labels-idx1-ubyte.gz"),
                       ("test_images", "t10k-images-idx3-ubyte.gz"), ("test_labels", "t10k-labels-idx1-ubyte.gz")):
        md5 = hashlib.md5((mirror / name).read_bytes()).hexdigest()
        files.append(DatasetFile(role, name, "0" * 32 if corrupt_md5 else md5))
    return DatasetSpec("mnist", "MNIST", tuple(files), mirrors=(mirror.as_uri() + "/",))


def test_download_from_mirror_with_progress_and_checksum(tmp_path):
    spec = _local_spec(tmp_path)
    dest = tmp_path / "dest"
    records = list(datasets.download_iter(spec, dest))
    assert records and records[-1].fraction == pytest.approx(1.0)
    assert all(0 <= r.fraction <= 1 for r in records)
    assert sorted(p.name for p in dest.iterdir()) == sorted(f.name for f in spec.files)
    assert datasets.load(spec, dest).train.images.shape == (12, 28, 28)


def test_download_checksum_mismatch_leaves_nothing(tmp_path):
    spec = _local_spec(tmp_path, corrupt_md5=True)
    dest = tmp_path / "dest"
    with pytest.raises(DatasetError, match="checksum mismatch"):
        datasets.download(spec, dest)
    assert list(dest.iterdir()) == []  # no half-written or unverified file


def test_download_offline_gives_clear_message(tmp_path):
    spec = replace(_local_spec(tmp_path), mirrors=((tmp_path / "no-such-mirror").as_uri() + "/",))
    with pytest.raises(DatasetError) as info:
        datasets.download(spec, tmp_path / "dest")
    assert "are you online" in str(info.value)
    assert "Put the four files" in str(info.value)


def test_cancelled_download_removes_partial_file(tmp_path):
    spec = _local_spec(tmp_path)
    dest = tmp_path / "dest"
    gen = datasets.download_iter(spec, dest)
    next(gen)
    gen.close()
    assert not list(dest.glob("*.part"))


def test_official_checksums_match_shared_test_set(mnist_dir):
    by_role = {f.role: f for f in datasets.MNIST.files}
    assert datasets.md5sum(mnist_dir / "t10k-images-idx3-ubyte.gz") == by_role["test_images"].md5
    assert datasets.md5sum(mnist_dir / "t10k-labels-idx1-ubyte.gz") == by_role["test_labels"].md5
