"""The digit-recognition CNN: MNIST-style preprocessing, prediction, feature maps, training.

``python -m engine.digits train --data DIR`` trains the network the app ships in
``assets/digit_cnn.pt`` and reports its accuracy on the official MNIST test set.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from engine import ASSETS_DIR, datasets

ASSET_PATH = ASSETS_DIR / "digit_cnn.pt"
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


class DigitCNN(nn.Module):
    """Four 3x3/5x5 conv layers in two blocks, then a small classifier (about 270k weights).

    Named layers (``conv1`` ...) so the GUI can show their filters and feature maps.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(MNIST_MEAN))
        self.register_buffer("std", torch.tensor(MNIST_STD))
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)   # (32, 28, 28)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 32, 3, padding=1)  # (32, 28, 28) -> pool (32, 14, 14)
        self.bn2 = nn.BatchNorm2d(32)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)  # (64, 14, 14)
        self.bn3 = nn.BatchNorm2d(64)
        self.conv4 = nn.Conv2d(64, 64, 3, padding=1)  # (64, 14, 14) -> pool (64, 7, 7)
        self.bn4 = nn.BatchNorm2d(64)
        self.fc1 = nn.Linear(64 * 7 * 7, 64)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(64, 10)

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every stage's activation for ``x`` (N, 1, 28, 28) in [0, 1], keyed by layer name."""
        out = {}
        h = (x - self.mean) / self.std
        h = out["conv1"] = F.relu(self.bn1(self.conv1(h)))
        h = out["conv2"] = F.relu(self.bn2(self.conv2(h)))
        h = F.max_pool2d(h, 2)
        h = out["conv3"] = F.relu(self.bn3(self.conv3(h)))
        h = out["conv4"] = F.relu(self.bn4(self.conv4(h)))
        h = F.max_pool2d(h, 2)
        h = out["fc1"] = self.drop(F.relu(self.fc1(h.flatten(1))))
        out["logits"] = self.fc2(h)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)["logits"]


# ---------------------------------------------------------------- preprocessing

def to_grey(image: np.ndarray) -> np.ndarray:
    """Any (H, W), (H, W, 3) or (H, W, 4) uint8/float image -> (H, W) float32 in [0, 1]."""
    a = np.asarray(image)
    if a.ndim == 3:
        if a.shape[2] == 4:  # composite on white, as image files are
            alpha = a[..., 3:4].astype(np.float32) / (255.0 if a.dtype == np.uint8 else 1.0)
            rgb = a[..., :3].astype(np.float32)
            white = 255.0 if a.dtype == np.uint8 else 1.0
            a = rgb * alpha + white * (1 - alpha)
        a = a[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32) if a.shape[2] >= 3 else a[..., 0]
    if a.ndim != 2:
        raise ValueError(f"expected a 2-D or 3-D image, got shape {np.shape(image)}")
    a = a.astype(np.float32)
    if np.asarray(image).dtype == np.uint8 or a.max(initial=0) > 1.0:
        a = a / 255.0
    return np.clip(a, 0.0, 1.0)


def _background(grey: np.ndarray) -> float:
    """The paper's colour: the median of the image's outermost pixels."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return float(np.median(border))


def ink_map(image: np.ndarray) -> np.ndarray:  # -> (H, W) float32 in [0, 1]
    """How much ink each pixel holds, whatever the polarity.

    The background is the colour that dominates the border; ink is the distance
    from it towards the other side (dark-on-light or light-on-dark), scaled so the
    strongest stroke is 1. Faint specks below 10 % are paper texture, not strokes.
    """
    grey = to_grey(image)
    background = _background(grey)
    ink = background - grey if background >= 0.5 else grey - background
    ink = np.clip(ink, 0.0, None)
    # A high percentile rather than the max, so one hot pixel in a photo cannot set the scale.
    peak = float(np.percentile(ink, 99.9)) if ink.size > 4096 else float(ink.max(initial=0.0))
    if peak <= 0.05:
        return np.zeros_like(grey)
    ink = np.clip(ink / peak, 0.0, 1.0)
    ink[ink < 0.1] = 0.0
    return ink


def ink_fraction(image: np.ndarray) -> float:
    """Share of pixels that hold ink; near zero means an empty canvas."""
    grey = to_grey(image)
    return float(np.mean(np.abs(grey - _background(grey)) > 0.25))


def is_blank(image: np.ndarray, min_fraction: float = 0.002) -> bool:
    """True for an empty or nearly empty drawing (nothing a digit could be read from)."""
    return ink_fraction(image) < min_fraction


def preprocess(image: np.ndarray) -> np.ndarray:  # -> (28, 28) float32
    """MNIST's own normalisation: white digit on black, bounding box fit into 20x20
    (aspect ratio kept), placed in 28x28 with its centre of mass at the centre."""
    ink = ink_map(image)
    rows, cols = np.nonzero(ink)
    out = np.zeros((28, 28), np.float32)
    if rows.size == 0:
        return out
    crop = ink[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    if (new_h, new_w) != (h, w):
        resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
        crop = np.asarray(Image.fromarray(crop, mode="F").resize((new_w, new_h), resample), np.float32)
        crop = np.clip(crop, 0.0, 1.0)
        if crop.max() > 0:
            crop = crop / crop.max()
    total = crop.sum()
    if total <= 0:
        return out
    ys, xs = np.indices(crop.shape)
    cy, cx = (ys * crop).sum() / total, (xs * crop).sum() / total
    # MNIST puts the centre of mass at pixel index (14, 14) (measured on its test set: 13.99, 14.00).
    top, left = int(round(14 - cy)), int(round(14 - cx))
    top = min(max(top, 0), 28 - new_h)
    left = min(max(left, 0), 28 - new_w)
    out[top: top + new_h, left: left + new_w] = crop
    return out


# ---------------------------------------------------------------- inference

def load_pretrained(device: str | torch.device = "cpu", path: str | Path = ASSET_PATH) -> DigitCNN:
    """The shipped network, in eval mode, on ``device``."""
    model = DigitCNN()
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval()


def checkpoint_info(path: str | Path = ASSET_PATH) -> dict:
    """The metadata stored beside the shipped weights (accuracy, epochs, data...)."""
    return dict(torch.load(path, map_location="cpu", weights_only=True).get("meta", {}))


def _as_batch(model: nn.Module, x28: np.ndarray) -> torch.Tensor:
    device = next(model.parameters()).device
    return torch.from_numpy(np.ascontiguousarray(x28, np.float32)).to(device)[None, None]


@torch.inference_mode()
def predict(model: nn.Module, image: np.ndarray) -> np.ndarray:  # -> (10,)
    """Class probabilities for any digit image (preprocessed here)."""
    logits = model(_as_batch(model, preprocess(image)))
    return torch.softmax(logits.float(), dim=1)[0].cpu().numpy()


@torch.inference_mode()
def predict_preprocessed(model: nn.Module, x28: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Probabilities (10,) and the conv feature maps {name: (C, H, W)} for a 28x28 input."""
    feats = model.features(_as_batch(model, x28))
    probs = torch.softmax(feats["logits"].float(), dim=1)[0].cpu().numpy()
    maps = {k: v[0].float().cpu().numpy() for k, v in feats.items() if k.startswith("conv")}
    return probs, maps


def first_layer_filters(model: DigitCNN) -> np.ndarray:  # -> (32, 5, 5)
    return model.conv1.weight.detach()[:, 0].float().cpu().numpy().copy()


# ---------------------------------------------------------------- training

@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    lr: float = 2e-3
    batch_size: int = 128
    weight_decay: float = 5e-4
    augment: bool = True
    seed: int = 0
    device: str = "cpu"
    train_limit: int | None = None  # use only the first N (shuffled) training samples
    num_threads: int | None = None  # torch CPU threads; None leaves torch's default
    emit_every_s: float = 0.1  # throttle: at most one progress record per this many seconds


@dataclass(frozen=True)
class TrainProgress:
    """One throttled progress record (plain floats; safe to pass between threads)."""
    epoch: int  # 1-based, the epoch in progress
    epochs: int
    step: int  # batches done overall
    steps_total: int
    loss: float  # running mean of the training loss in this epoch
    train_accuracy: float  # running accuracy in this epoch
    test_accuracy: float | None = None  # set at the end of each epoch
    samples_per_s: float = 0.0

    @property
    def fraction(self) -> float:
        return self.step / max(1, self.steps_total)


@dataclass(frozen=True)
class TrainResult:
    state_dict: dict[str, np.ndarray] = field(repr=False)  # numpy copies of the weights
    test_accuracy: float
    epochs: int
    seconds: float
    device: str


def augment_batch(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random small rotations, scalings, shears and shifts (N, 1, 28, 28) -> same shape."""
    n = x.shape[0]
    rnd = lambda lo, hi: torch.empty(n).uniform_(lo, hi, generator=generator)  # noqa: E731
    angle = rnd(-12, 12) * math.pi / 180
    scale = rnd(0.88, 1.12)
    shear = rnd(-0.15, 0.15)
    tx, ty = rnd(-0.15, 0.15), rnd(-0.15, 0.15)  # in units of half the image (~2 px)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([
        torch.stack([cos, -sin + shear, tx], 1),
        torch.stack([sin, cos, ty], 1),
    ], 1).to(x.device)  # (N, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


@torch.inference_mode()
def evaluate(model: nn.Module, images: np.ndarray, labels: np.ndarray, batch_size: int = 1000) -> float:
    """Accuracy on (N, 28, 28) uint8 images (already MNIST-normalised)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(images[i: i + batch_size]).to(device).float().div_(255).unsqueeze(1)
        correct += int((model(x).argmax(1).cpu().numpy() == labels[i: i + batch_size]).sum())
    model.train(was_training)
    return correct / max(1, len(images))


def train(config: TrainConfig, data: datasets.Dataset) -> Iterator[TrainProgress | TrainResult]:
    """Train a fresh DigitCNN, yielding throttled TrainProgress records and, last, a TrainResult."""
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    device = torch.device(config.device)
    model = DigitCNN().to(device)
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(data.train.images))
    if config.train_limit:
        order = order[: config.train_limit]
    images = torch.from_numpy(data.train.images[order]).float().div_(255).unsqueeze(1)  # (N, 1, 28, 28)
    labels = torch.from_numpy(data.train.labels[order])
    n = len(images)
    steps_per_epoch = math.ceil(n / config.batch_size)
    steps_total = steps_per_epoch * config.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps_total)
    start = last_emit = time.perf_counter()
    step = 0
    test_acc = 0.0
    for epoch in range(1, config.epochs + 1):
        model.train()
        perm = torch.randperm(n, generator=gen)
        loss_sum = correct = seen = 0.0
        for i in range(0, n, config.batch_size):
            idx = perm[i: i + config.batch_size]
            x, y = images[idx], labels[idx]
            if config.augment:
                x = augment_batch(x, gen)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            logits = model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=0.05)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"The loss became {loss.item()} at epoch {epoch}; lower the learning rate and train again."
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
            now = time.perf_counter()
            if now - last_emit >= config.emit_every_s:
                last_emit = now
                yield TrainProgress(epoch, config.epochs, step, steps_total, loss_sum / seen, correct / seen,
                                    samples_per_s=step * config.batch_size / (now - start))
        test_acc = evaluate(model, data.test.images, data.test.labels)
        now = time.perf_counter()
        yield TrainProgress(epoch, config.epochs, step, steps_total, loss_sum / seen, correct / seen,
                            test_accuracy=test_acc, samples_per_s=step * config.batch_size / (now - start))
    model.eval()
    yield TrainResult(
        state_dict={k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()},
        test_accuracy=test_acc, epochs=config.epochs, seconds=time.perf_counter() - start, device=str(device),
    )


def train_from_folder(config: TrainConfig, folder: str | Path | None) -> Iterator[TrainProgress | TrainResult]:
    """Load MNIST (raising DatasetError with directions when absent), then ``train``."""
    data = datasets.load("mnist", folder)
    return (yield from train(config, data))


def model_from_state(state: dict[str, np.ndarray], device: str | torch.device = "cpu") -> DigitCNN:
    model = DigitCNN()
    model.load_state_dict({k: torch.from_numpy(np.asarray(v).copy()) for k, v in state.items()})
    return model.to(device).eval()


def save_checkpoint(result: TrainResult, path: str | Path, meta: dict) -> None:
    state = {k: torch.from_numpy(v) for k, v in result.state_dict.items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(path) + ".part")
    torch.save({"state_dict": state, "meta": meta}, tmp)
    os.replace(tmp, path)


def _cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.digits", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train the digit CNN and save it")
    t.add_argument("--data", required=True, help="folder with the MNIST IDX files")
    t.add_argument("--out", default=str(ASSET_PATH))
    t.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    t.add_argument("--lr", type=float, default=TrainConfig.lr)
    t.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    t.add_argument("--seed", type=int, default=TrainConfig.seed)
    t.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    e = sub.add_parser("evaluate", help="accuracy of a checkpoint on the MNIST test set")
    e.add_argument("--data", required=True)
    e.add_argument("--weights", default=str(ASSET_PATH))
    args = parser.parse_args(argv)
    try:
        data = datasets.load("mnist", args.data)
    except datasets.DatasetError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.command == "evaluate":
        model = load_pretrained(path=args.weights)
        raw = evaluate(model, data.test.images, data.test.labels)
        via_predict = float(np.mean([predict(model, im).argmax() == lab
                                     for im, lab in zip(data.test.images, data.test.labels)]))
        print(f"test accuracy {raw:.4f} (raw tensors), {via_predict:.4f} (through preprocess+predict)")
        return 0
    from engine.device import resolve_device
    device = resolve_device(args.device).device
    config = TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                         device=str(device), emit_every_s=5.0)
    result = None
    for record in train(config, data):
        if isinstance(record, TrainResult):
            result = record
        elif record.test_accuracy is not None:
            print(f"epoch {record.epoch:2d}/{record.epochs} loss {record.loss:.4f} "
                  f"train acc {record.train_accuracy:.4f} test acc {record.test_accuracy:.4f}", flush=True)
    assert result is not None
    meta = {
        "test_accuracy": result.test_accuracy, "epochs": result.epochs, "seed": args.seed, "lr": args.lr,
        "batch_size": args.batch_size, "train_samples": int(len(data.train.images)),
        "data": "MNIST training subset (train10k) / official MNIST test set", "device": result.device,
        "seconds": round(result.seconds, 1), "torch": str(torch.__version__),
    }
    save_checkpoint(result, args.out, meta)
    size_kb = Path(args.out).stat().st_size / 1024
    print(f"saved {args.out} ({size_kb:.0f} KiB); test accuracy {result.test_accuracy:.4f} "
          f"in {result.seconds:.0f} s on {result.device}")
    return 0


def train_main(argv: list[str] | None = None) -> int:
    """``backprop-studio train digits ARGS``: the same as ``python -m engine.digits train ARGS``."""
    return _cli(["train", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(_cli())
