"""Image datasets for the AlexNet trainer: one uint8 format for every source.

Sources: the built-in shapes (no download), MNIST and Fashion-MNIST (through
``engine.datasets``), CIFAR-10 (its *binary* release: fixed-size records read with
numpy, never unpickled), any folder with one subfolder of images per class (bad
files are skipped and counted), and random noise for speed tests.

Images are kept as uint8 ``(N, C, H, W)`` at their own resolution; the trainer
converts, resizes and adapts channels per batch on the training device.
"""

from __future__ import annotations

import os
import re
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from engine import datasets
from engine.datasets import DatasetError, DownloadProgress
from engine.images import ImageLoadError, load_image

SOURCES = {
    "shapes": "Built-in shapes (no download)",
    "mnist": "MNIST digits",
    "fashion-mnist": "Fashion-MNIST clothes",
    "cifar10": "CIFAR-10 photos",
    "folder": "My images (a subfolder per class)",
    "synthetic": "Random noise (speed tests)",
}

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_FILE = "cifar-10-binary.tar.gz"
CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_RECORD = 1 + 3 * 32 * 32  # one label byte, then 1024 red, 1024 green, 1024 blue bytes
_CIFAR_MEMBER = re.compile(r"^(data_batch_[1-5]|test_batch)\.bin$")

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")


@dataclass(frozen=True)
class ImageSet:
    images: np.ndarray = field(repr=False)  # (N, C, H, W) uint8
    labels: np.ndarray = field(repr=False)  # (N,) int64
    class_names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class DataConfig:
    source: str = "shapes"  # a key of SOURCES
    folder: str | None = None  # where the files are (MNIST, CIFAR-10) or the class folders (folder)
    image_size: int = 32  # stored size for shapes, folders and synthetic data
    train_size: int = 10000  # images drawn (shapes, synthetic) or at most used (the others)
    val_size: int = 1000
    val_fraction: float = 0.2  # share of each class held out when a folder has no separate split
    seed: int = 0


@dataclass(frozen=True)
class LabelledData:
    train: ImageSet
    val: ImageSet
    class_names: tuple[str, ...]
    title: str
    skipped: int = 0  # files that could not be read (folder source)
    skipped_examples: tuple[str, ...] = ()  # the first few reasons, for the user
    note: str = ""

    @property
    def channels(self) -> int:
        return int(self.train.images.shape[1])


@dataclass(frozen=True)
class LoadProgress:
    """Reading a folder of images: how far, for a progress line."""
    done: int
    total: int
    skipped: int

    @property
    def fraction(self) -> float:
        return self.done / max(1, self.total)


# ---------------------------------------------------------------- single images

def fit_square(image: np.ndarray, size: int, channels: int = 3) -> np.ndarray:  # -> (channels, size, size) uint8
    """Centre-crop an (H, W) or (H, W, 3) uint8 image to a square and resize it to ``size``."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[..., :3]
    h, w = a.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    a = np.ascontiguousarray(a[top: top + side, left: left + side])
    if side != size:
        resample = Image.Resampling.BOX if side > 2 * size else Image.Resampling.BILINEAR
        a = np.asarray(Image.fromarray(a).resize((size, size), resample))
    if a.ndim == 2:
        a = a[None]
    else:
        a = a.transpose(2, 0, 1)
    return adapt_channels(a[None], channels)[0]


def adapt_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """(N, C, H, W) uint8 with C in {1, 3} -> (N, channels, H, W): grey is copied, colour is weighted."""
    c = images.shape[1]
    if c == channels:
        return images
    if c == 1 and channels == 3:
        return np.repeat(images, 3, axis=1)
    if c == 3 and channels == 1:
        grey = np.tensordot(np.array([0.299, 0.587, 0.114], np.float32), images.astype(np.float32), axes=([0], [1]))
        return np.clip(np.round(grey), 0, 255).astype(np.uint8)[:, None]
    raise ValueError(f"Cannot turn {c}-channel images into {channels}-channel ones.")


# ---------------------------------------------------------------- sources

def load(config: DataConfig) -> LabelledData:
    """Load without progress reporting (see ``load_iter``)."""
    gen = load_iter(config)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def load_iter(config: DataConfig) -> Iterator[LoadProgress]:
    """Load ``config``'s data, yielding progress while reading a folder; returns LabelledData."""
    if config.source == "shapes":
        from engine import shapes

        train = shapes.make_shapes(config.train_size, config.image_size, config.seed)
        val = shapes.make_shapes(config.val_size, config.image_size, config.seed + 1_000_003)
        return LabelledData(train, val, shapes.CLASS_NAMES, SOURCES["shapes"])
    if config.source in ("mnist", "fashion-mnist"):
        return _load_idx(config)
    if config.source == "cifar10":
        return load_cifar10(config)
    if config.source == "synthetic":
        return _synthetic(config)
    if config.source == "folder":
        if not config.folder:
            raise DatasetError("Choose a folder of images first (one subfolder per class).")
        return (yield from load_folder_iter(config.folder, config.image_size, config.val_fraction, config.seed,
                                            config.train_size, config.val_size))
    raise ValueError(f"Unknown data source {config.source!r}; choose one of {', '.join(SOURCES)}.")


def _subset(images: np.ndarray, labels: np.ndarray, limit: int, rng: np.random.Generator):
    order = rng.permutation(len(labels))[:limit]
    return images[order], labels[order]


def _load_idx(config: DataConfig) -> LabelledData:
    data = datasets.load(config.source, config.folder)
    rng = np.random.default_rng(config.seed)
    # MNIST's training subset is sorted by label: a random subset keeps every class.
    train_x, train_y = _subset(data.train.images, data.train.labels, config.train_size, rng)
    val_x, val_y = _subset(data.test.images, data.test.labels, config.val_size, rng)
    names = FASHION_CLASSES if config.source == "fashion-mnist" else tuple(str(d) for d in range(10))
    return LabelledData(ImageSet(train_x[:, None], train_y, names), ImageSet(val_x[:, None], val_y, names),
                        names, SOURCES[config.source], note=f"validation images from the {data.spec.title} test set")


def _synthetic(config: DataConfig) -> LabelledData:
    rng = np.random.default_rng(config.seed)
    names = tuple(f"class {k}" for k in range(10))
    s = config.image_size

    def make(n: int) -> ImageSet:
        return ImageSet(rng.integers(0, 256, (n, 3, s, s), dtype=np.uint8), rng.integers(0, 10, n), names)

    return LabelledData(make(config.train_size), make(config.val_size), names, SOURCES["synthetic"],
                        note="random pixels and labels: nothing to learn, for measuring speed")


# ---------------------------------------------------------------- CIFAR-10 (binary release)

def cifar10_dirs(folder: str | Path | None = None) -> list[Path]:
    dirs = [Path(folder), Path(folder) / "cifar-10"] if folder else []
    return dirs + [datasets.app_data_dir() / "cifar-10"]


def locate_cifar10(folder: str | Path | None = None) -> Path | None:
    """The archive, or a folder of the extracted ``*.bin`` batches, or None."""
    for directory in cifar10_dirs(folder):
        archive = directory / CIFAR10_FILE
        if archive.is_file():
            return archive
        for extracted in (directory, directory / "cifar-10-batches-bin"):
            if (extracted / "test_batch.bin").is_file() and (extracted / "data_batch_1.bin").is_file():
                return extracted
    return None


def cifar10_missing_message(folder: str | Path | None = None) -> str:
    where = "\n".join(f"  - {d}" for d in cifar10_dirs(folder))
    return (f"CIFAR-10 was not found. Looked in:\n{where}\n\nDownload the binary version "
            f"({CIFAR10_FILE}, 163 MB) from {CIFAR10_URL} into one of those folders, or let the app download it.")


def _parse_cifar_records(name: str, data: bytes) -> tuple[np.ndarray, np.ndarray]:
    if len(data) == 0 or len(data) % CIFAR10_RECORD:
        raise DatasetError(f"{name} is not a CIFAR-10 binary batch ({len(data)} bytes is not a whole number "
                           f"of {CIFAR10_RECORD}-byte records).")
    records = np.frombuffer(data, np.uint8).reshape(-1, CIFAR10_RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() >= len(CIFAR10_CLASSES):
        raise DatasetError(f"{name} holds a label {labels.max()}; CIFAR-10 has only 10 classes.")
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), labels


def read_cifar10(path: str | Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((train images, labels), (test images, labels)) from the archive or an extracted folder.

    Only the fixed-size ``*.bin`` records are read (bytes into numpy); nothing is unpickled
    and nothing is extracted to disk.
    """
    path = Path(path)
    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        if path.is_dir():
            for member in sorted(path.glob("*.bin")):
                if _CIFAR_MEMBER.match(member.name):
                    batches[member.stem] = _parse_cifar_records(member.name, member.read_bytes())
        else:
            with tarfile.open(path, "r:gz") as archive:
                for member in archive:
                    base = Path(member.name).name
                    if member.isfile() and _CIFAR_MEMBER.match(base):
                        handle = archive.extractfile(member)
                        if handle is not None:
                            batches[Path(base).stem] = _parse_cifar_records(base, handle.read())
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise DatasetError(f"Could not read CIFAR-10 from {path}: {exc}") from exc
    train_keys = [f"data_batch_{k}" for k in range(1, 6)]
    missing = [k for k in (*train_keys, "test_batch") if k not in batches]
    if missing:
        raise DatasetError(f"{path.name} lacks {', '.join(missing)}; is it the binary version of CIFAR-10?")
    train = (np.concatenate([batches[k][0] for k in train_keys]), np.concatenate([batches[k][1] for k in train_keys]))
    return train, batches["test_batch"]


def load_cifar10(config: DataConfig) -> LabelledData:
    path = locate_cifar10(config.folder)
    if path is None:
        raise DatasetError(cifar10_missing_message(config.folder))
    (train_x, train_y), (test_x, test_y) = read_cifar10(path)
    rng = np.random.default_rng(config.seed)
    train_x, train_y = _subset(train_x, train_y, config.train_size, rng)
    val_x, val_y = _subset(test_x, test_y, config.val_size, rng)
    return LabelledData(ImageSet(train_x, train_y, CIFAR10_CLASSES), ImageSet(val_x, val_y, CIFAR10_CLASSES),
                        CIFAR10_CLASSES, SOURCES["cifar10"], note="validation images from the CIFAR-10 test set")


def download_cifar10_iter(dest: str | Path | None = None, timeout: float = 30.0,
                          url: str = CIFAR10_URL) -> Iterator[DownloadProgress]:
    """Download the binary archive into ``dest`` (default: the app data folder), checked by md5.

    Streamed to ``NAME.part`` and renamed only when complete and intact, as
    ``engine.datasets`` does; an archive already present and intact is kept.
    """
    folder = Path(dest) if dest is not None else datasets.app_data_dir() / "cifar-10"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"Cannot create the folder {folder}: {exc.strerror or exc}") from exc
    target = folder / CIFAR10_FILE
    if target.is_file() and datasets.md5sum(target) == CIFAR10_MD5:
        yield DownloadProgress(CIFAR10_FILE, 1, 1, 1, 1)
        return
    try:
        yield from datasets._fetch(url, target, CIFAR10_MD5, 1, 1, timeout)
    except DatasetError as exc:
        raise DatasetError(f"Could not download {CIFAR10_FILE} (are you online?): {exc}\n\n"
                           + cifar10_missing_message(folder)) from exc


# ---------------------------------------------------------------- a folder of class subfolders

def _class_dirs(root: Path) -> list[Path]:
    return sorted((d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")), key=lambda d: d.name)


def load_folder_iter(root: str | Path, size: int, val_fraction: float = 0.2, seed: int = 0,
                     train_limit: int | None = None, val_limit: int | None = None,
                     emit_every_s: float = 0.1) -> Iterator[LoadProgress]:
    """Read ``root/CLASS/*`` images as (3, size, size) uint8; split each class train/validation.

    Files that cannot be read as images are skipped and counted (their reasons kept
    for the user); classes left with no readable image are dropped with a note.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder. Choose a folder holding one subfolder per class.")
    class_dirs = _class_dirs(root)
    if len(class_dirs) < 2:
        raise DatasetError(f"{root} needs at least two subfolders (one per class, e.g. cats/ and dogs/); "
                           f"found {len(class_dirs)}.")
    files = [(path, label) for label, d in enumerate(class_dirs)
             for path in sorted(d.rglob("*")) if path.is_file() and not path.name.startswith(".")]
    images: list[np.ndarray] = []
    labels: list[int] = []
    reasons: list[str] = []
    last = time.perf_counter()
    for done, (path, label) in enumerate(files, start=1):
        try:
            images.append(fit_square(load_image(path), size, 3))
            labels.append(label)
        except ImageLoadError as exc:
            reasons.append(str(exc))
        except (OSError, ValueError) as exc:  # e.g. an image too small or with an odd layout
            reasons.append(f"{path.name}: {exc}")
        now = time.perf_counter()
        if now - last >= emit_every_s:
            last = now
            yield LoadProgress(done, len(files), len(reasons))
    yield LoadProgress(len(files), len(files), len(reasons))
    label_array = np.asarray(labels, np.int64)
    kept = [k for k in range(len(class_dirs)) if (label_array == k).any()]
    if len(kept) < 2:
        raise DatasetError(f"Fewer than two classes in {root} hold a readable image "
                           f"({len(reasons)} file(s) skipped). " + (reasons[0] if reasons else ""))
    note = ""
    dropped = [class_dirs[k].name for k in range(len(class_dirs)) if k not in kept]
    if dropped:
        note = f"no readable image in: {', '.join(dropped)} (left out)"
    remap = np.full(len(class_dirs), -1, np.int64)
    remap[kept] = np.arange(len(kept))
    label_array = remap[label_array]
    stack = np.stack(images)
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for k in range(len(kept)):
        members = rng.permutation(np.nonzero(label_array == k)[0])
        n_val = round(len(members) * val_fraction) if len(members) > 1 else 0
        n_val = max(1, n_val) if len(members) > 1 else 0
        val_idx.extend(members[:n_val])
        train_idx.extend(members[n_val:])
    train_idx = rng.permutation(np.asarray(train_idx, np.int64))[:train_limit]
    val_idx = rng.permutation(np.asarray(val_idx, np.int64))[:val_limit]
    names = tuple(class_dirs[k].name for k in kept)
    return LabelledData(ImageSet(stack[train_idx], label_array[train_idx], names),
                        ImageSet(stack[val_idx], label_array[val_idx], names), names,
                        f"{root.name} ({len(names)} classes)", skipped=len(reasons),
                        skipped_examples=tuple(reasons[:5]), note=note)


def default_runs_dir() -> Path:
    """Where the tab keeps its runs' checkpoints and histories (beside the datasets folder)."""
    override = os.environ.get("BACKPROP_STUDIO_RUNS")
    return Path(override) if override else datasets.app_data_dir().parent / "alexnet-runs"
