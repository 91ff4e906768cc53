"""engine.alexnet, engine.shapes and engine.image_data: the lecture's table, shapes against torch, the data."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from engine import alexnet, image_data, shapes
from engine.alexnet import AlexNet, AlexNetConfig, layer_table, total_params
from engine.datasets import DatasetError

# The lecture's table, row for row: (layer name, tensor size as written there, weights, biases, parameters).
LECTURE_TABLE = [
    ("Input Image", "227 × 227 × 3", 0, 0, 0),
    ("Conv-1", "55 × 55 × 96", 34_848, 96, 34_944),
    ("MaxPool-1", "27 × 27 × 96", 0, 0, 0),
    ("Conv-2", "27 × 27 × 256", 614_400, 256, 614_656),
    ("MaxPool-2", "13 × 13 × 256", 0, 0, 0),
    ("Conv-3", "13 × 13 × 384", 884_736, 384, 885_120),
    ("Conv-4", "13 × 13 × 384", 1_327_104, 384, 1_327_488),
    ("Conv-5", "13 × 13 × 256", 884_736, 256, 884_992),
    ("MaxPool-3", "6 × 6 × 256", 0, 0, 0),
    ("FC-1", "4096 × 1", 37_748_736, 4_096, 37_752_832),
    ("FC-2", "4096 × 1", 16_777_216, 4_096, 16_781_312),
    ("FC-3", "1000 × 1", 4_096_000, 1_000, 4_097_000),
    ("Output", "1000 × 1", 0, 0, 0),
]

VARIANTS = [AlexNetConfig(input_size=s, width_divider=d, batch_norm=bn, dropout=drop, num_classes=k, in_channels=c)
            for s, d, bn, drop, k, c in [
                (28, 8, False, 0.5, 10, 1), (28, 16, True, 0.0, 10, 3), (32, 4, False, 0.5, 10, 3),
                (32, 8, True, 0.5, 7, 3), (64, 4, True, 0.0, 10, 3), (64, 2, False, 0.5, 100, 1),
                (227, 8, True, 0.5, 10, 3)]]


@pytest.fixture(scope="module")
def full_model():
    torch.manual_seed(0)
    return AlexNet().eval()


@pytest.mark.smoke
def test_full_alexnet_reproduces_the_lecture_table(full_model):
    rows = layer_table(full_model, (3, 227, 227))
    got = [(r.name, r.shape_text, r.weights, r.biases, r.params) for r in rows]
    assert got == LECTURE_TABLE
    assert total_params(rows) == 62_378_344
    assert sum(p.numel() for p in full_model.parameters()) == 62_378_344


def test_lecture_formulas():
    assert alexnet.conv_output_size(227, 11, 4, 0) == 55
    assert alexnet.pool_output_size(55) == 27
    assert alexnet.pool_output_size(27) == 13
    assert alexnet.pool_output_size(13) == 6
    assert alexnet.flat_features(AlexNetConfig()) == 9216
    conv1 = layer_table(AlexNet(), (3, 227, 227))[1]
    assert "(227 − 11 + 2·0) / 4 + 1 = 55" in conv1.formula and "11²·3·96 = 34,848" in conv1.formula


def _torch_shapes(model: AlexNet, x: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """Every layer's output shape as torch computes it, under the lecture's row names."""
    shapes_seen: dict[str, tuple[int, ...]] = {}
    hooks = []
    for name, module in [*model.features.named_children(), *model.classifier.named_children()]:
        row = None
        if name.startswith("conv"):
            row = f"Conv-{name[4:]}"
        elif name.startswith("bn"):
            row = f"BatchNorm-{name[2:]}"
        elif name.startswith("pool"):
            row = f"MaxPool-{name[4:]}"
        elif name.startswith("fc"):
            row = f"FC-{name[2:]}"
        if row:
            hooks.append(module.register_forward_hook(
                lambda _m, _i, out, row=row: shapes_seen.__setitem__(row, tuple(out.shape[1:]))))
    with torch.no_grad():
        model.eval()(x)
    for h in hooks:
        h.remove()
    return shapes_seen


@pytest.mark.parametrize("config", [AlexNetConfig(), *VARIANTS], ids=lambda c: c.describe())
def test_table_matches_torch_shapes_and_parameter_count(config):
    model = AlexNet(config)
    rows = layer_table(model)
    seen = _torch_shapes(model, torch.zeros(1, config.in_channels, config.input_size, config.input_size))
    for row in rows[1:-1]:
        assert row.output_shape == seen[row.name], row.name
    assert rows[0].output_shape == (config.in_channels, config.input_size, config.input_size)
    assert rows[-1].output_shape == (config.num_classes,)
    assert total_params(rows) == sum(p.numel() for p in model.parameters())
    assert sum(r.name.startswith("Conv") for r in rows) == 5
    assert sum(r.name.startswith("MaxPool") for r in rows) == 3
    assert sum(r.name.startswith("FC") for r in rows) == 3
    assert sum(r.name.startswith("BatchNorm") for r in rows) == (5 if config.batch_norm else 0)


def test_batchnorm_replaces_the_conv_bias():
    model = AlexNet(AlexNetConfig(input_size=32, width_divider=8, batch_norm=True, num_classes=10))
    rows = {r.name: r for r in layer_table(model)}
    assert rows["Conv-1"].biases == 0 and "β" in rows["Conv-1"].formula
    assert rows["BatchNorm-1"].params == 2 * 12
    assert all(m.bias is None for _, m in model.conv_layers())


def test_forward_equals_functional_oracle():
    """The network is exactly conv/ReLU/max-pool/linear as torch.nn.functional computes them."""
    torch.manual_seed(1)
    model = AlexNet(AlexNetConfig(input_size=64, width_divider=8, num_classes=10)).eval()
    x = torch.randn(2, 3, 64, 64)
    f, c = model.features, model.classifier
    h = F.max_pool2d(F.relu(F.conv2d(x, f.conv1.weight, f.conv1.bias, stride=2, padding=2)), 3, 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, f.conv2.weight, f.conv2.bias, padding=2)), 3, 2)
    h = F.relu(F.conv2d(h, f.conv3.weight, f.conv3.bias, padding=1))
    h = F.relu(F.conv2d(h, f.conv4.weight, f.conv4.bias, padding=1))
    h = F.max_pool2d(F.relu(F.conv2d(h, f.conv5.weight, f.conv5.bias, padding=1)), 3, 2)
    h = F.relu(F.linear(h.flatten(1), c.fc1.weight, c.fc1.bias))
    h = F.relu(F.linear(h, c.fc2.weight, c.fc2.bias))
    expected = F.linear(h, c.fc3.weight, c.fc3.bias)
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-5)


def test_dropout_switches_and_conv_activations():
    torch.manual_seed(0)
    with_drop = AlexNet(AlexNetConfig(input_size=28, width_divider=8, num_classes=10))
    without = AlexNet(AlexNetConfig(input_size=28, width_divider=8, num_classes=10, dropout=0.0))
    assert sum(isinstance(m, torch.nn.Dropout) for m in with_drop.modules()) == 2
    assert not any(isinstance(m, torch.nn.Dropout) for m in without.modules())
    x = torch.randn(4, 3, 28, 28)
    with_drop.train()
    assert not torch.equal(with_drop(x), with_drop(x))  # a different thinned network each pass
    with_drop.eval()
    assert torch.equal(with_drop(x), with_drop(x))
    acts = with_drop.conv_activations(x)
    rows = {r.name: r for r in layer_table(with_drop)}
    assert list(acts) == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    for k, v in acts.items():
        assert tuple(v.shape[1:]) == rows[f"Conv-{k[4:]}"].output_shape
        assert (v >= 0).all()  # after ReLU


def test_config_validation_and_round_trip():
    with pytest.raises(ValueError, match="not supported"):
        AlexNetConfig(input_size=100)
    with pytest.raises(ValueError):
        AlexNetConfig(dropout=1.0)
    config = AlexNetConfig(input_size=64, width_divider=4, batch_norm=True, num_classes=7)
    assert AlexNetConfig.from_dict(config.to_dict()) == config
    assert "BN" in config.describe() and "/4" in config.describe()


# ---------------------------------------------------------------- shapes

def test_shapes_are_deterministic_balanced_and_visible():
    a = shapes.make_shapes(200, 32, seed=3)
    b = shapes.make_shapes(200, 32, seed=3)
    c = shapes.make_shapes(200, 32, seed=4)
    assert a.images.shape == (200, 3, 32, 32) and a.images.dtype == np.uint8
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)
    assert np.bincount(a.labels, minlength=10).tolist() == [20] * 10
    assert a.class_names == shapes.CLASS_NAMES
    # The shape stands out from its background: every channel differs by >= 0.35 of the range.
    per_channel = a.images.reshape(200, 3, -1).astype(int)
    spread = np.percentile(per_channel, 99.5, axis=2) - np.percentile(per_channel, 0.5, axis=2)  # (200, 3)
    assert (spread.min(axis=1) > 60).all()


def test_each_shape_class_has_its_own_silhouette():
    """Drawn unrotated at the centre, the ten masks differ clearly from each other."""
    axis = (np.arange(64) + 0.5) / 64 * 2 - 1
    yy, xx = np.meshgrid(axis, axis, indexing="ij")
    masks = np.array([shapes._inside(k, xx / 0.8, yy / 0.8) for k in range(10)], float)
    assert (masks.mean(axis=(1, 2)) > 0.05).all()
    overlap = np.abs(masks[:, None] - masks[None]).mean(axis=(2, 3))
    assert overlap[~np.eye(10, dtype=bool)].min() > 0.03


# ---------------------------------------------------------------- image data

def test_fit_square_and_channels():
    rgb = np.zeros((40, 80, 3), np.uint8)
    rgb[:, 20:60, 0] = 255  # the central square is red
    out = image_data.fit_square(rgb, 16, 3)
    assert out.shape == (3, 16, 16)
    assert out[0].min() > 200 and out[1].max() == 0
    grey = image_data.fit_square(rgb, 16, 1)
    assert grey.shape == (1, 16, 16) and abs(int(grey[0, 8, 8]) - round(0.299 * 255)) <= 1
    assert image_data.fit_square(np.full((10, 10), 7, np.uint8), 10, 3).shape == (3, 10, 10)


def test_mnist_through_engine_datasets(mnist_dir):
    data = image_data.load(image_data.DataConfig(source="mnist", folder=str(mnist_dir), train_size=300, val_size=100))
    assert data.train.images.shape == (300, 1, 28, 28) and data.val.images.shape == (100, 1, 28, 28)
    assert len(set(data.train.labels.tolist())) == 10  # a random subset of the label-sorted file
    assert data.channels == 1 and data.class_names[3] == "3"


def _write_class_folder(root, bad_only_class=True):
    rng = np.random.default_rng(0)
    for name in ("cats", "dogs", "owls"):
        (root / name).mkdir(parents=True)
    for k in range(6):
        Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(root / "cats" / f"c{k}.png")
        Image.fromarray(rng.integers(0, 255, (50, 20), dtype=np.uint8)).save(root / "dogs" / f"d{k}.jpg")
    (root / "dogs" / "notes.txt").write_text("not an image")
    (root / "cats" / "empty.png").write_bytes(b"")
    (root / "owls" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")


def test_folder_loader_skips_bad_files_and_splits_each_class(tmp_path):
    _write_class_folder(tmp_path)
    data = image_data.load(image_data.DataConfig(source="folder", folder=str(tmp_path), image_size=24,
                                                 val_fraction=1 / 3))
    assert data.class_names == ("cats", "dogs")  # owls held only a broken file
    assert "owls" in data.note
    assert data.skipped == 3 and any("empty" in s for s in data.skipped_examples)
    assert data.train.images.shape[1:] == (3, 24, 24)
    assert len(data.train) == 8 and len(data.val) == 4
    assert np.bincount(data.val.labels).tolist() == [2, 2]


def test_folder_loader_reports_progress_and_explains_bad_folders(tmp_path):
    _write_class_folder(tmp_path)
    gen = image_data.load_folder_iter(tmp_path, 16, emit_every_s=0.0)
    progress = []
    while True:
        try:
            progress.append(next(gen))
        except StopIteration as stop:
            result = stop.value
            break
    assert progress[-1].done == progress[-1].total == 15 and progress[-1].skipped == 3
    assert len(result.class_names) == 2
    (tmp_path / "single").mkdir()
    with pytest.raises(DatasetError, match="at least two subfolders"):
        image_data.load(image_data.DataConfig(source="folder", folder=str(tmp_path / "single")))
    with pytest.raises(DatasetError, match="Choose a folder"):
        image_data.load(image_data.DataConfig(source="folder"))


def _cifar_bytes(n: int, seed: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    pixels = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    return np.concatenate([labels[:, None], pixels], 1).tobytes(), labels, pixels.reshape(n, 3, 32, 32)


def _cifar_archive(path, n=5):
    expected = {}
    with tarfile.open(path, "w:gz") as tar:
        for k, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
            raw, labels, images = _cifar_bytes(n, k)
            expected[name] = (labels, images)
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}.bin")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
        meta = b"airplane\nautomobile\n"
        info = tarfile.TarInfo("cifar-10-batches-bin/batches.meta.txt")
        info.size = len(meta)
        tar.addfile(info, io.BytesIO(meta))
    return expected


def test_cifar10_binary_archive_is_read_without_unpickling(tmp_path):
    archive = tmp_path / image_data.CIFAR10_FILE
    expected = _cifar_archive(archive)
    (train_x, train_y), (test_x, test_y) = image_data.read_cifar10(archive)
    assert train_x.shape == (25, 3, 32, 32) and test_x.shape == (5, 3, 32, 32)
    np.testing.assert_array_equal(train_x[:5], expected["data_batch_1"][1])
    np.testing.assert_array_equal(test_y, expected["test_batch"][0])
    data = image_data.load(image_data.DataConfig(source="cifar10", folder=str(tmp_path), train_size=20, val_size=5))
    assert data.train.images.shape == (20, 3, 32, 32) and data.class_names[0] == "airplane"


def test_cifar10_errors_are_explained(tmp_path):
    with pytest.raises(DatasetError, match="CIFAR-10 was not found"):
        image_data.load(image_data.DataConfig(source="cifar10", folder=str(tmp_path / "none")))
    folder = tmp_path / "bins"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / f"{name}.bin").write_bytes(_cifar_bytes(2, 0)[0])
    (folder / "test_batch.bin").write_bytes(b"\x00" * 100)  # not whole records
    with pytest.raises(DatasetError, match="not a CIFAR-10 binary batch"):
        image_data.read_cifar10(folder)
    pickled = tmp_path / "python" / image_data.CIFAR10_FILE  # e.g. the pickled "python version"
    pickled.parent.mkdir()
    with tarfile.open(pickled, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(DatasetError, match="binary version"):
        image_data.read_cifar10(pickled)


def test_cifar10_download_checks_md5_atomically(tmp_path, monkeypatch):
    source = tmp_path / "server" / image_data.CIFAR10_FILE
    source.parent.mkdir()
    _cifar_archive(source)
    dest = tmp_path / "dest"
    # The real checksum does not match this small archive: refused, and no file is left behind.
    with pytest.raises(DatasetError, match="are you online|checksum"):
        list(image_data.download_cifar10_iter(dest, url=source.as_uri()))
    assert list(dest.iterdir()) == []
    monkeypatch.setattr(image_data, "CIFAR10_MD5", hashlib.md5(source.read_bytes()).hexdigest())
    progress = list(image_data.download_cifar10_iter(dest, url=source.as_uri()))
    assert progress and progress[-1].done == source.stat().st_size
    assert (dest / image_data.CIFAR10_FILE).read_bytes() == source.read_bytes()
    assert image_data.locate_cifar10(dest) == dest / image_data.CIFAR10_FILE
    assert gzip.open(dest / image_data.CIFAR10_FILE).read(10)  # a whole gzip stream


def test_synthetic_and_unknown_sources():
    data = image_data.load(image_data.DataConfig(source="synthetic", image_size=16, train_size=10, val_size=4))
    assert data.train.images.shape == (10, 3, 16, 16) and len(data.val) == 4
    with pytest.raises(ValueError, match="Unknown data source"):
        image_data.load(image_data.DataConfig(source="imagenet"))
