"""MNIST-format datasets (MNIST, Fashion-MNIST): find, download and read IDX files.

Lookup order for a dataset: an explicit folder, the app's data folder, then (for
Fashion-MNIST) the folder Debian's ``dataset-fashion-mnist`` package installs.
Downloads verify an md5 checksum and are written atomically (a ``.part`` file that
is renamed only once complete), so an interrupted download never leaves a file
that looks valid.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs


class DatasetError(Exception):
    """A dataset could not be found, downloaded or read; the message says what to do."""


@dataclass(frozen=True)
class DatasetFile:
    role: str  # "train_images", "train_labels", "test_images", "test_labels"
    name: str  # canonical file name, e.g. "train-images-idx3-ubyte.gz"
    md5: str
    # Other names the same content goes by (e.g. the 10k training subset in shared/data).
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetSpec:
    key: str
    title: str
    files: tuple[DatasetFile, ...]
    mirrors: tuple[str, ...]
    system_dirs: tuple[str, ...] = ()
    size_mb: float = 11.0


MNIST = DatasetSpec(
    key="mnist",
    title="MNIST",
    files=(
        DatasetFile("train_images", "train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                    aliases=("train10k-images-idx3-ubyte.gz",)),
        DatasetFile("train_labels", "train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432",
                    aliases=("train10k-labels-idx1-ubyte.gz",)),
        DatasetFile("test_images", "t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        DatasetFile("test_labels", "t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    ),
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
)

FASHION_MNIST = DatasetSpec(
    key="fashion-mnist",
    title="Fashion-MNIST",
    files=(
        DatasetFile("train_images", "train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        DatasetFile("train_labels", "train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        DatasetFile("test_images", "t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        DatasetFile("test_labels", "t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    ),
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    system_dirs=("/usr/share/datasets/fashion-mnist",),
    size_mb=30.0,
)

SPECS = {spec.key: spec for spec in (MNIST, FASHION_MNIST)}


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # (N, 28, 28) uint8
    labels: np.ndarray  # (N,) int64


@dataclass(frozen=True)
class Dataset:
    spec: DatasetSpec
    folder: Path
    train: Split
    test: Split


def app_data_dir() -> Path:
    """Where the app keeps downloaded datasets (``BACKPROP_STUDIO_DATA`` overrides it)."""
    override = os.environ.get("BACKPROP_STUDIO_DATA")
    if override:
        return Path(override)
    return Path(platformdirs.user_data_dir("backprop-studio", appauthor=False)) / "datasets"


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw) into a numpy array of its declared shape."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:
        raise DatasetError(f"Could not read {path.name}: {exc}") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DatasetError(f"{path.name} is not an IDX file (bad magic number).")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    code, ndim = data[2], data[3]
    if code not in dtypes:
        raise DatasetError(f"{path.name}: unknown IDX element type 0x{code:02x}.")
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(dtypes[code])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise DatasetError(
            f"{path.name} is truncated or corrupt: expected {expected} bytes of data for shape "
            f"{shape}, found {len(data) - header}."
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _candidate_dirs(spec: DatasetSpec, folder: str | Path | None) -> list[Path]:
    dirs = []
    if folder is not None:
        dirs += [Path(folder), Path(folder) / spec.key]
    dirs.append(app_data_dir() / spec.key)
    dirs += [Path(d) for d in spec.system_dirs]
    return dirs


def _find_file(directory: Path, f: DatasetFile) -> Path | None:
    for name in (f.name, *f.aliases):
        for candidate in (name, name.removesuffix(".gz")):
            p = directory / candidate
            if p.is_file():
                return p
    return None


def locate(spec: DatasetSpec | str, folder: str | Path | None = None) -> dict[str, Path] | None:
    """Paths of the dataset's four files in the first folder that holds them all, or None."""
    spec = SPECS[spec] if isinstance(spec, str) else spec
    for directory in _candidate_dirs(spec, folder):
        found = {f.role: _find_file(directory, f) for f in spec.files}
        if all(found.values()):
            return found  # type: ignore[return-value]
    return None


def missing_message(spec: DatasetSpec | str, folder: str | Path | None = None) -> str:
    """A message for students saying where the files were looked for and how to get them."""
    spec = SPECS[spec] if isinstance(spec, str) else spec
    names = ", ".join(f.name for f in spec.files)
    where = "\n".join(f"  - {d}" for d in _candidate_dirs(spec, folder))
    text = (
        f"{spec.title} was not found. Looked in:\n{where}\n\n"
        f"Put the four files ({names}) in one of those folders, "
        f"or download them (about {spec.size_mb:.0f} MB) from {spec.mirrors[0]}"
    )
    if spec.key == "fashion-mnist":
        text += "\nOn Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist"
    return text


def load(spec: DatasetSpec | str, folder: str | Path | None = None) -> Dataset:
    """Load train and test splits; raise DatasetError with directions when absent."""
    spec = SPECS[spec] if isinstance(spec, str) else spec
    paths = locate(spec, folder)
    if paths is None:
        raise DatasetError(missing_message(spec, folder))
    arrays = {role: read_idx(p) for role, p in paths.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DatasetError(
                f"{spec.title} {split} files do not match: images {images.shape}, labels {labels.shape}."
            )
    return Dataset(
        spec=spec,
        folder=paths["train_images"].parent,
        train=Split(arrays["train_images"].astype(np.uint8), arrays["train_labels"].astype(np.int64)),
        test=Split(arrays["test_images"].astype(np.uint8), arrays["test_labels"].astype(np.int64)),
    )


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class DownloadProgress:
    """One step of a download, for progress bars."""
    file: str
    file_index: int  # 1-based
    file_count: int
    done: int  # bytes of this file so far
    total: int  # bytes of this file, 0 when the server does not say

    @property
    def fraction(self) -> float:
        within = self.done / self.total if self.total else 0.0
        return (self.file_index - 1 + within) / self.file_count


def download_iter(spec: DatasetSpec | str, dest: str | Path | None = None,
                  timeout: float = 30.0) -> Iterator[DownloadProgress]:
    """Download the dataset into ``dest`` (default: the app data folder), yielding progress.

    Each file is tried on every mirror in turn, streamed to ``NAME.part``, checked
    against its md5 and only then renamed into place; closing the generator
    cancels and removes the partial file. Files already present and intact are kept.
    """
    spec = SPECS[spec] if isinstance(spec, str) else spec
    folder = Path(dest) if dest is not None else app_data_dir() / spec.key
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"Cannot create the folder {folder}: {exc.strerror or exc}") from exc
    count = len(spec.files)
    for index, f in enumerate(spec.files, start=1):
        target = folder / f.name
        if target.is_file() and md5sum(target) == f.md5:
            yield DownloadProgress(f.name, index, count, 1, 1)
            continue
        errors = []
        for mirror in spec.mirrors:
            try:
                yield from _fetch(mirror + f.name, target, f.md5, index, count, timeout)
                break
            except DatasetError as exc:
                errors.append(f"  {mirror}: {exc}")
        else:
            raise DatasetError(
                f"Could not download {f.name} (are you online?).\n" + "\n".join(errors)
                + "\n\n" + missing_message(spec, folder))


def download(spec: DatasetSpec | str, dest: str | Path | None = None, timeout: float = 30.0) -> Path:
    """Download without progress reporting; return the folder holding the files."""
    spec = SPECS[spec] if isinstance(spec, str) else spec
    for _ in download_iter(spec, dest, timeout):
        pass
    return Path(dest) if dest is not None else app_data_dir() / spec.key


def _fetch(url: str, target: Path, md5: str, index: int, count: int,
           timeout: float) -> Iterator[DownloadProgress]:
    part = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            digest = hashlib.md5()
            while block := response.read(1 << 16):
                out.write(block)
                digest.update(block)
                done += len(block)
                yield DownloadProgress(target.name, index, count, done, total)
        if digest.hexdigest() != md5:
            raise DatasetError(f"checksum mismatch (got md5 {digest.hexdigest()}, expected {md5})")
        os.replace(part, target)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DatasetError(f"no connection or bad response ({exc})") from exc
    finally:
        part.unlink(missing_ok=True)
