"""engine.digits: preprocessing as MNIST did it, prediction, the shipped weights, training."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from engine import digits


@pytest.fixture(scope="module")
def model():
    return digits.load_pretrained("cpu")


def _centre_of_mass(x):
    ys, xs = np.indices(x.shape)
    return (ys * x).sum() / x.sum(), (xs * x).sum() / x.sum()


def test_mnist_image_passes_through_essentially_unchanged(mnist):
    diffs = [np.abs(digits.preprocess(im) - im / 255.0).mean() for im in mnist.test.images[:500]]
    assert np.median(diffs) < 0.003  # only the faint fringe below 10 % ink is dropped


def test_preprocess_fits_20x20_and_centres_mass():
    canvas = np.full((280, 280), 255, np.uint8)
    canvas[30:250, 120:160] = 0  # a tall dark bar on white paper: a "1"
    x = digits.preprocess(canvas)
    assert x.shape == (28, 28) and x.dtype == np.float32
    rows, cols = np.nonzero(x > 0)
    assert rows.max() - rows.min() + 1 == 20  # the long side is scaled to 20
    assert cols.max() - cols.min() + 1 <= 5  # aspect ratio kept (40/220*20 = 3.6)
    cy, cx = _centre_of_mass(x)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(40, 300), w=st.integers(40, 300),
    y0=st.floats(0.05, 0.6), x0=st.floats(0.05, 0.6), size=st.floats(0.2, 0.35),
    invert=st.booleans(), colour=st.booleans(),
)
def test_preprocess_properties(h, w, y0, x0, size, invert, colour):
    """Any size, polarity, colour: output in [0,1], ink <= 20x20, mass at the centre, same for both polarities."""
    img = np.zeros((h, w), np.uint8)
    top, left = int(y0 * h), int(x0 * w)
    img[top: top + max(2, int(size * h)), left: left + max(2, int(size * w))] = 255
    if invert:
        img = 255 - img
    if colour:
        img = np.stack([img, img, img], -1)
    x = digits.preprocess(img)
    assert x.shape == (28, 28) and 0.0 <= x.min() and x.max() <= 1.0
    rows, cols = np.nonzero(x)
    assert np.ptp(rows) + 1 <= 20 and np.ptp(cols) + 1 <= 20
    cy, cx = _centre_of_mass(x)
    assert abs(cy - 14) <= 1.0 and abs(cx - 14) <= 1.0
    other = 255 - img
    np.testing.assert_allclose(digits.preprocess(other), x, atol=1e-6)


@pytest.mark.smoke
def test_blank_detection():
    blank = np.full((280, 280), 255, np.uint8)
    assert digits.is_blank(blank)
    assert (digits.preprocess(blank) == 0).all()
    speck = blank.copy()
    speck[100:103, 100:103] = 0  # 9 pixels: nearly empty
    assert digits.is_blank(speck)
    stroke = blank.copy()
    stroke[50:230, 130:150] = 0
    assert not digits.is_blank(stroke)


def test_float_and_rgba_inputs():
    a = np.zeros((56, 56), np.float32)
    a[10:46, 25:31] = 1.0
    rgba = np.zeros((56, 56, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[10:46, 25:31, :3] = 255
    np.testing.assert_allclose(digits.preprocess(a), digits.preprocess(rgba), atol=1e-5)
    with pytest.raises(ValueError):
        digits.preprocess(np.zeros((2, 2, 2, 2)))


def test_shipped_weights_reach_99_percent_through_predict(model, mnist):
    """The claim in README: >= 99.0 % on the official MNIST test set, via preprocess + predict."""
    correct = sum(int(digits.predict(model, im).argmax() == lab)
                  for im, lab in zip(mnist.test.images, mnist.test.labels))
    assert correct / len(mnist.test.labels) >= 0.99
    assert digits.checkpoint_info()["test_accuracy"] >= 0.99


def test_predict_recognises_scaled_inverted_colour_digits(model, mnist):
    """A digit from another source (bigger, dark on light, RGB) is read like the MNIST original."""
    hits = 0
    for im, lab in zip(mnist.test.images[:200], mnist.test.labels[:200]):
        big = np.asarray(Image.fromarray(255 - im).resize((300, 300), Image.Resampling.BILINEAR))
        rgb = np.stack([big, big, big], -1)
        hits += int(digits.predict(model, rgb).argmax() == lab)
    assert hits >= 194  # >= 97 %


@pytest.mark.smoke
def test_asset_size_and_weights_only_loading():
    assert digits.ASSET_PATH.stat().st_size <= 2 * 1024 * 1024
    ckpt = torch.load(digits.ASSET_PATH, map_location="cpu", weights_only=True)
    assert set(ckpt) == {"state_dict", "meta"}


@pytest.mark.smoke
def test_probabilities_and_feature_maps_match_torch_functional(model, mnist):
    """The explicit pipeline against nn.functional as the oracle."""
    x28 = digits.preprocess(mnist.test.images[0])
    probs, maps = digits.predict_preprocessed(model, x28)
    assert probs.shape == (10,) and abs(probs.sum() - 1) < 1e-5
    np.testing.assert_allclose(probs, digits.predict(model, mnist.test.images[0]), atol=1e-6)
    t = (torch.from_numpy(x28)[None, None] - digits.MNIST_MEAN) / digits.MNIST_STD
    sd = model.state_dict()
    bn = lambda h, i: F.batch_norm(h, sd[f"bn{i}.running_mean"], sd[f"bn{i}.running_var"],  # noqa: E731
                                   sd[f"bn{i}.weight"], sd[f"bn{i}.bias"], training=False)
    c1 = F.relu(bn(F.conv2d(t, sd["conv1.weight"], sd["conv1.bias"], padding=2), 1))
    np.testing.assert_allclose(maps["conv1"], c1[0].numpy(), atol=1e-5)
    assert maps["conv1"].shape == (32, 28, 28) and maps["conv3"].shape == (64, 14, 14)
    assert digits.first_layer_filters(model).shape == (32, 5, 5)


def test_train_yields_frozen_throttled_records_and_learns(mnist):
    config = digits.TrainConfig(epochs=2, train_limit=1024, batch_size=64, emit_every_s=0.0, augment=False)
    records = list(digits.train(config, mnist))
    progress = [r for r in records if isinstance(r, digits.TrainProgress)]
    result = records[-1]
    assert isinstance(result, digits.TrainResult)
    assert all(dataclasses.is_dataclass(r) and type(r).__dataclass_params__.frozen for r in records)
    assert all(isinstance(r.loss, float) for r in progress)
    assert all(isinstance(v, np.ndarray) for v in result.state_dict.values())  # copies, not live tensors
    epoch_ends = [r for r in progress if r.test_accuracy is not None]
    assert [r.epoch for r in epoch_ends] == [1, 2]
    assert progress[-1].loss < progress[0].loss
    assert result.test_accuracy > 0.8
    rebuilt = digits.model_from_state(result.state_dict)
    assert digits.evaluate(rebuilt, mnist.test.images[:500], mnist.test.labels[:500]) > 0.8


def test_training_throttles_at_the_source(mnist):
    config = digits.TrainConfig(epochs=1, train_limit=1024, batch_size=16, emit_every_s=10.0, augment=False)
    progress = [r for r in digits.train(config, mnist) if isinstance(r, digits.TrainProgress)]
    assert len(progress) == 1  # only the end-of-epoch record, not one per batch (64 batches)


def test_diverging_training_stops_with_a_clear_error(mnist):
    config = digits.TrainConfig(epochs=1, train_limit=2048, lr=1e6, emit_every_s=0.0, augment=False)
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        for _ in digits.train(config, mnist):
            pass


def test_augmentation_keeps_shape_and_mass():
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(8, 1, 28, 28)
    x[:, :, 8:20, 12:16] = 1
    y = digits.augment_batch(x, gen)
    assert y.shape == x.shape
    ratio = y.sum((1, 2, 3)) / x.sum((1, 2, 3))
    assert ((ratio > 0.7) & (ratio < 1.4)).all()
    assert not torch.allclose(y, x)


def test_cli_reports_missing_data(tmp_path, capsys):
    assert digits._cli(["evaluate", "--data", str(tmp_path)]) == 2
    assert "MNIST was not found" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on the lent GPU machine)")
def test_training_on_cuda_returns_cpu_copies_and_reports_oom(mnist):
    config = digits.TrainConfig(epochs=2, train_limit=4096, device="cuda", emit_every_s=0.0, augment=False)
    records = list(digits.train(config, mnist))
    result = records[-1]
    assert result.device.startswith("cuda"), result.device
    assert result.test_accuracy > 0.8, result.test_accuracy
    assert all(isinstance(v, np.ndarray) for v in result.state_dict.values())
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(1e-6)  # any allocation now fails like a full GPU
    try:
        with pytest.raises(torch.OutOfMemoryError, match="out of memory"):
            list(digits.train(digits.TrainConfig(epochs=1, train_limit=512, device="cuda"), mnist))
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
