"""Training AlexNet (or a small variant) live: a generator of throttled records, checkpoints, history.

``train(config)`` runs in the tab's worker thread or in the command line
(``backprop-studio train alexnet ...`` or ``python -m engine.alexnet_train ...``);
both write the same files into the run folder:

- ``checkpoint.pt``: weights, optimiser and schedule state, the architecture, the class
  names and the history; written atomically each epoch, on stop and on request;
  read back with ``torch.load(weights_only=True)``.
- ``history.csv`` and ``history.json``: losses, accuracies, learning rate, speed and
  per-layer gradient norms over time.

Under ``torchrun --nproc_per_node=N`` the same command trains data-parallel
(torch.distributed, DistributedDataParallel, a DistributedSampler per epoch);
rank 0 writes the files and prints progress.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import gc
import hashlib
import json
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

from engine import image_data
from engine.alexnet import AlexNet, AlexNetConfig, first_layer_filters, to_model_input
from engine.datasets import DatasetError

CHECKPOINT_FORMAT = "backprop-studio/alexnet"
CHECKPOINT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"
HISTORY_CSV, HISTORY_JSON = "history.csv", "history.json"
DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "step", "cosine", "onecycle")
# The default model: small enough to learn the shapes on a laptop CPU within a minute.
SMALL_MODEL = AlexNetConfig(input_size=32, in_channels=3, num_classes=10, width_divider=8)


class CheckpointError(Exception):
    """A checkpoint could not be read or does not fit; the message says why and what to do."""


@dataclass(frozen=True)
class TrainConfig:
    model: AlexNetConfig = SMALL_MODEL
    data: image_data.DataConfig = image_data.DataConfig()
    optimizer: str = "adam"  # "sgd" (with momentum) or "adam" (AdamW: decoupled weight decay)
    lr: float = 0.002
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "onecycle"  # constant, step (/10 at 1/3 and 2/3), cosine, onecycle
    batch_size: int = 64  # per process under torchrun
    epochs: int = 8
    device: str = "auto"  # auto (CUDA, then Apple MPS, then CPU), cuda, mps, cpu
    precision: str = "auto"  # auto (bf16 or fp16 on CUDA, fp32 elsewhere), fp32, bf16, fp16
    channels_last: bool | None = None  # None: on CUDA only
    seed: int = 0
    num_threads: int | None = None  # torch CPU threads; None leaves torch's default
    out_dir: str | None = None  # run folder for checkpoint and history; None writes nothing
    resume_from: str | None = None  # a checkpoint to continue from
    max_steps: int | None = None  # stop after this many steps in all (quick tries, benchmarks)
    emit_every_s: float = 0.1  # at most one progress record per this many seconds
    snapshot_every_s: float = 2.0  # confusion matrix, predictions and feature maps at most this often...
    snapshot_budget: float = 0.03  # ...and never more than this share of the time
    snapshot_val_images: int = 512  # validation images behind the periodic confusion matrix
    preview_count: int = 24  # validation predictions in the grid
    feature_image: int = 0  # validation image whose feature maps are shown (LiveControl can change it)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        values["model"] = AlexNetConfig.from_dict(values.get("model", {}))
        values["data"] = image_data.DataConfig(**{k: v for k, v in values.get("data", {}).items()
                                                  if k in image_data.DataConfig.__dataclass_fields__})
        return cls(**values)


class LiveControl:
    """What the window may change while a run goes on. Plain attributes: each assignment is atomic."""

    def __init__(self) -> None:
        self.feature_image = 0  # index into the validation set
        self.user_image: np.ndarray | None = None  # (C, H, W) uint8 at the model's input size
        self.save_now = False  # write a checkpoint at the next step
        self.snapshot_now = False  # send a snapshot at the next emission
        self.stop_now = False  # end after the current step: checkpoint, then a TrainFinished record


# ---------------------------------------------------------------- records

@dataclass(frozen=True)
class LoadingData:
    message: str
    fraction: float = -1.0


@dataclass(frozen=True)
class RunStarted:
    data_title: str
    class_names: tuple[str, ...]
    train_size: int
    val_size: int
    skipped: int
    skipped_examples: tuple[str, ...]
    data_note: str
    model_config: AlexNetConfig
    params: int
    device: str  # e.g. "cuda (NVIDIA H100)", "cpu"
    precision: str  # "fp32", "bf16", "fp16"
    channels_last: bool
    world_size: int
    steps_total: int
    start_step: int
    run_dir: str | None
    notes: tuple[str, ...] = ()
    val_images: np.ndarray = field(default=None, repr=False)  # (M, C, H, W) uint8: the first validation images


@dataclass(frozen=True)
class Snapshot:
    step: int
    val_count: int  # validation images behind the confusion matrix
    confusion: np.ndarray = field(repr=False)  # (K, K) int64, rows true class, columns predicted
    preview_images: np.ndarray = field(repr=False)  # (M, C, H, W) uint8
    preview_labels: np.ndarray = field(repr=False)  # (M,)
    preview_predicted: np.ndarray = field(repr=False)  # (M,)
    preview_confidence: np.ndarray = field(repr=False)  # (M,) probability of the predicted class
    feature_index: int = 0
    feature_image: np.ndarray = field(default=None, repr=False)  # (C, H, W) uint8
    feature_label: int = 0
    feature_maps: dict = field(default_factory=dict, repr=False)  # name -> (C, H, W) float32
    user_probs: np.ndarray | None = field(default=None, repr=False)  # (K,) for LiveControl.user_image


@dataclass(frozen=True)
class TrainProgress:
    epoch: int  # 1-based, the epoch in progress
    epochs: int
    step: int  # optimiser steps done in all
    steps_total: int
    epoch_float: float  # epochs done, fractional
    train_loss: float  # mean since the last record (over the whole epoch in an epoch-end record)
    train_accuracy: float
    lr: float
    images_per_s: float  # recent throughput of the training steps (all processes)
    eta_s: float
    elapsed_s: float
    layer_names: tuple[str, ...]
    grad_norms: np.ndarray = field(repr=False)  # (L,) L2 norm of each layer's weight gradient
    filters: np.ndarray = field(repr=False)  # (F, C, K, K) first conv layer's weights
    val_loss: float | None = None  # set at the end of each epoch
    val_accuracy: float | None = None
    snapshot: Snapshot | None = None
    checkpoint: str | None = None  # path, when a checkpoint was written just before this record

    @property
    def fraction(self) -> float:
        return self.step / max(1, self.steps_total)


@dataclass(frozen=True)
class TrainFinished:
    completed: bool
    epochs_done: int
    step: int
    seconds: float
    checkpoint: str | None
    history_csv: str | None
    best_val_accuracy: float | None
    final_val_accuracy: float | None
    parameter_checksum: str
    fraction: float = 1.0


# ---------------------------------------------------------------- devices and precision

def resolve_train_device(preference: str = "auto") -> tuple[torch.device, str, str]:
    """(device, label, note): CUDA, then Apple MPS, then the CPU; a missing choice falls back with a note."""
    if preference not in DEVICE_CHOICES:
        raise ValueError(f"Unknown device {preference!r}; choose one of {', '.join(DEVICE_CHOICES)}.")
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps is not None and mps.is_available())
    if preference in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda"), f"cuda ({torch.cuda.get_device_name(0)})", ""
    if preference in ("auto", "mps") and has_mps:
        return torch.device("mps"), "mps (Apple GPU)", ""
    note = "" if preference in ("auto", "cpu") else f"{preference.upper()} is not available here; using the CPU."
    return torch.device("cpu"), "cpu", note


def resolve_precision(preference: str, device: torch.device) -> tuple[torch.dtype | None, str, str]:
    """(autocast dtype or None for fp32, name, note)."""
    if preference not in PRECISIONS:
        raise ValueError(f"Unknown precision {preference!r}; choose one of {', '.join(PRECISIONS)}.")
    if device.type == "cuda":
        if preference == "auto":
            preference = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        if preference == "bf16" and not torch.cuda.is_bf16_supported():
            return torch.float16, "fp16", "This GPU has no bf16; using fp16 with loss scaling."
        return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[preference], preference, ""
    if preference in ("auto", "fp32"):
        return None, "fp32", ""
    if preference == "bf16" and device.type == "cpu":
        return torch.bfloat16, "bf16", ""
    return None, "fp32", f"{preference} mixed precision is for CUDA GPUs; using fp32 on {device.type}."


# ---------------------------------------------------------------- checkpoints

@dataclass(frozen=True)
class Checkpoint:
    path: str
    model_config: AlexNetConfig
    class_names: tuple[str, ...]
    state_dict: dict = field(repr=False)  # name -> tensor (CPU, fp32)
    optimizer: dict | None = field(repr=False)
    scheduler: dict | None = field(repr=False)
    scaler: dict | None = field(repr=False)
    epoch: int  # the epoch in progress (0-based) when saved
    batches_done: int  # batches of that epoch already trained
    step: int
    completed: bool
    train_config: dict = field(repr=False)
    history: list = field(repr=False)
    val_accuracy: float | None = None


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    path = Path(path)
    _atomic_write(path, lambda tmp: torch.save(payload, tmp))
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read an AlexNet checkpoint safely (``weights_only``); CheckpointError explains any problem."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path.name}: no such file ({path}).")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, not a torch file, or holding arbitrary objects
        text = str(exc).split("\n")[0]
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise CheckpointError(
                f"{path.name} holds Python objects other than tensors and plain values, so it is not "
                "loaded (loading it could run code). Backprop Studio's checkpoints never do.") from exc
        raise CheckpointError(f"{path.name} is not a readable checkpoint ({text}).") from exc
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        keys = sorted(data.get("state_dict", data))[:4] if isinstance(data, dict) else []
        hint = f" (it holds {', '.join(map(str, keys))}...)" if keys else ""
        raise CheckpointError(f"{path.name} is not an AlexNet checkpoint from Backprop Studio{hint}. "
                              "Choose a checkpoint.pt written by this tab or by 'backprop-studio train alexnet'.")
    if int(data.get("version", 0)) > CHECKPOINT_VERSION:
        raise CheckpointError(f"{path.name} was written by a newer Backprop Studio (format "
                              f"{data.get('version')}); update the app to read it.")
    try:
        config = AlexNetConfig.from_dict(data["model_config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path.name} does not describe its architecture ({exc}).") from exc
    return Checkpoint(
        path=str(path), model_config=config, class_names=tuple(data.get("class_names", ())),
        state_dict=data["state_dict"], optimizer=data.get("optimizer"), scheduler=data.get("scheduler"),
        scaler=data.get("scaler"), epoch=int(data.get("epoch", 0)), batches_done=int(data.get("batches_done", 0)),
        step=int(data.get("step", 0)), completed=bool(data.get("completed", False)),
        train_config=dict(data.get("train_config", {})), history=list(data.get("history", [])),
        val_accuracy=data.get("val_accuracy"))


def check_architecture(checkpoint: Checkpoint, expected: AlexNetConfig) -> None:
    """Raise CheckpointError when ``checkpoint`` holds a different network than ``expected``."""
    if checkpoint.model_config != expected:
        got, want = checkpoint.model_config, expected
        diffs = [f"{name.replace('_', ' ')} {getattr(got, name)} (this run: {getattr(want, name)})"
                 for name in AlexNetConfig.__dataclass_fields__ if getattr(got, name) != getattr(want, name)]
        raise CheckpointError(
            f"{Path(checkpoint.path).name} holds another architecture: {'; '.join(diffs)}. Its weights do not "
            "fit this model. Load the checkpoint to adopt its settings, or start a fresh run.")


def model_from_checkpoint(checkpoint: Checkpoint, device: str | torch.device = "cpu") -> AlexNet:
    model = AlexNet(checkpoint.model_config)
    try:
        model.load_state_dict(checkpoint.state_dict)
    except RuntimeError as exc:
        raise CheckpointError(f"{Path(checkpoint.path).name}: the weights do not match the architecture it "
                              f"names ({str(exc).splitlines()[0]}).") from exc
    return model.to(device).eval()


def parameter_checksum(model: torch.nn.Module) -> str:
    """A short hash of every learned parameter's bytes: identical weights give identical checksums.

    BatchNorm's running statistics are buffers, not parameters: under DDP each process
    updates them from its own batches, so they are left out.
    """
    digest = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        digest.update(name.encode())
        digest.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------- history files

HISTORY_FIELDS = ("step", "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr",
                  "images_per_s", "elapsed_s")


def save_history_file(path: str | Path, history: list[dict], meta: dict | None = None) -> Path:
    """One history file, atomically: CSV (one row per record, gradient norms as extra columns) or JSON."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        _atomic_write(path, lambda tmp: tmp.write_text(json.dumps({"meta": meta or {}, "history": history}, indent=1),
                                                       encoding="utf-8"))
        return path
    if path.suffix.lower() != ".csv":
        raise ValueError(f"Cannot save a history as {path.suffix or 'a file without suffix'}: choose .csv or .json.")
    extra = sorted({k for row in history for k in row if k not in HISTORY_FIELDS})
    header = list(HISTORY_FIELDS) + extra

    def write_csv(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            for row in history:
                writer.writerow(["" if row.get(k) is None else row[k] for k in header])

    _atomic_write(path, write_csv)
    return path


def write_history(run_dir: str | Path, history: list[dict], meta: dict) -> tuple[Path, Path]:
    """history.csv and history.json in the run folder."""
    run_dir = Path(run_dir)
    return (save_history_file(run_dir / HISTORY_CSV, history, meta),
            save_history_file(run_dir / HISTORY_JSON, history, meta))


def read_history(path: str | Path) -> list[dict]:
    """Rows from history.json or history.csv (empty cells become None)."""
    path = Path(path)
    if path.suffix == ".json":
        return list(json.loads(path.read_text(encoding="utf-8"))["history"])
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: (float(v) if v != "" else None) for k, v in row.items()} for row in csv.DictReader(fh)]


# ---------------------------------------------------------------- batches, evaluation, classification

class _NoAutotune(contextlib.ContextDecorator):
    """cuDNN's benchmark mode times every algorithm for each new input shape: worth it for the training
    batch, a stall of a tenth of a second or more for the one-off shapes of live views (batch 1, a
    partial last batch). Those use cuDNN's heuristics instead."""

    def __enter__(self) -> None:
        self.saved = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = False

    def __exit__(self, *exc) -> None:
        torch.backends.cudnn.benchmark = self.saved


def prepare_batch(images: torch.Tensor, config: AlexNetConfig, channels_last: bool = False) -> torch.Tensor:
    """uint8 (N, C, H, W) on the device -> the model's float input: channels adapted, resized, scaled."""
    c = images.shape[1]
    x = to_model_input(images)
    if c == 1 and config.in_channels == 3:
        x = x.expand(-1, 3, -1, -1)
    elif c == 3 and config.in_channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)
        x = (x * weights).sum(1, keepdim=True)
    elif c != config.in_channels:
        raise ValueError(f"The data has {c} channels; the model takes {config.in_channels}.")
    if x.shape[-1] != config.input_size or x.shape[-2] != config.input_size:
        x = F.interpolate(x, size=(config.input_size, config.input_size), mode="bilinear", align_corners=False,
                          antialias=x.shape[-1] > config.input_size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


@torch.no_grad()
@_NoAutotune()
def evaluate(model: AlexNet, images: torch.Tensor, labels: torch.Tensor, num_classes: int,
             autocast_dtype: torch.dtype | None = None, channels_last: bool = False, batch_size: int = 256):
    """(mean loss, accuracy, confusion (K, K), predicted (N,), confidence (N,)) in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device)
    predicted, confidence = [], []
    try:
        for i in range(0, len(labels), batch_size):
            x = prepare_batch(images[i: i + batch_size].to(device, non_blocking=True), model.config, channels_last)
            y = labels[i: i + batch_size].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=autocast_dtype or torch.float32,
                                enabled=autocast_dtype is not None):
                logits = model(x)
            logits = logits.float()
            loss_sum += F.cross_entropy(logits, y, reduction="sum")
            probs = logits.softmax(1)
            conf, pred = probs.max(1)
            predicted.append(pred)
            confidence.append(conf)
    finally:
        model.train(was_training)
    n = len(labels)
    if n == 0:
        return float("nan"), float("nan"), np.zeros((num_classes, num_classes), np.int64), np.zeros(0), np.zeros(0)
    pred = torch.cat(predicted).cpu().numpy()
    conf = torch.cat(confidence).float().cpu().numpy()
    truth = labels.cpu().numpy()
    confusion = np.bincount(truth * num_classes + pred, minlength=num_classes * num_classes)
    return (float(loss_sum) / n, float((pred == truth).mean()), confusion.reshape(num_classes, num_classes),
            pred, conf)


@torch.no_grad()
@_NoAutotune()
def feature_maps(model: AlexNet, image: np.ndarray) -> dict[str, np.ndarray]:
    """{conv1..conv5: (C, H, W) float32} for one (C, H, W) uint8 image, in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        x = prepare_batch(torch.from_numpy(np.ascontiguousarray(image))[None].to(device), model.config)
        acts = model.conv_activations(x)
    finally:
        model.train(was_training)
    return {k: v[0].float().cpu().numpy() for k, v in acts.items()}


@torch.no_grad()
@_NoAutotune()
def predict_probs(model: AlexNet, image: np.ndarray) -> np.ndarray:  # -> (K,)
    """Class probabilities for one (C, H, W) uint8 image already at any size."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        x = prepare_batch(torch.from_numpy(np.ascontiguousarray(image))[None].to(device), model.config)
        return model(x).float().softmax(1)[0].cpu().numpy()
    finally:
        model.train(was_training)


def classify(model: AlexNet, image: np.ndarray, class_names: tuple[str, ...], top: int = 5) -> list[tuple[str, float]]:
    """Top-``top`` (class, probability) for any (H, W) or (H, W, 3) uint8 image (centre-cropped, resized)."""
    prepared = image_data.fit_square(image, model.config.input_size, model.config.in_channels)
    probs = predict_probs(model, prepared)
    order = np.argsort(probs)[::-1][:top]
    names = list(class_names) + [f"class {k}" for k in range(len(class_names), len(probs))]
    return [(names[k], float(probs[k])) for k in order]


# ---------------------------------------------------------------- the training loop

def _lr_factor(schedule: str, steps_total: int):
    total = max(1, steps_total)
    if schedule == "constant":
        return lambda step: 1.0
    if schedule == "step":  # the paper divided the rate by 10 when progress stalled; here at 1/3 and 2/3
        return lambda step: 0.1 ** min(2, (3 * step) // total)
    if schedule == "cosine":
        return lambda step: 0.001 + 0.999 * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    if schedule == "onecycle":  # warm up over 25 % from lr/20, then cosine down to lr/1000
        warm = max(1, total // 4)

        def factor(step: int) -> float:
            if step < warm:
                return 0.05 + 0.95 * step / warm
            t = min(1.0, (step - warm) / max(1, total - warm))
            return 0.001 + 0.999 * 0.5 * (1 + math.cos(math.pi * t))
        return factor
    raise ValueError(f"Unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}.")


def _make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    # No weight decay on biases and BatchNorm's gamma/beta: decaying them only hurts.
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    other = [p for n, p in model.named_parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": other, "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    if config.optimizer == "adam":
        return torch.optim.AdamW(groups, lr=config.lr)
    raise ValueError(f"Unknown optimiser {config.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}.")


@dataclass
class _Distributed:
    rank: int
    world_size: int
    local_rank: int


def _init_distributed(device_preference: str) -> _Distributed | None:
    """Join the process group when started by torchrun (WORLD_SIZE > 1), else None."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_preference in ("auto", "cuda") and torch.cuda.is_available()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local_rank)
    return _Distributed(dist.get_rank(), dist.get_world_size(), local_rank)


def _out_of_memory_message(config: TrainConfig) -> str:
    smaller = max(1, config.batch_size // 2)
    return (f"The GPU's memory filled up at batch size {config.batch_size}. Try batch size {smaller}, a larger "
            "width divider or a smaller input size; the memory has been released and the app keeps running.")


def _free_accelerator_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def train(config: TrainConfig, control: LiveControl | None = None
          ) -> Iterator[LoadingData | RunStarted | TrainProgress | TrainFinished]:
    """Train as ``config`` says, yielding throttled records; see the module docstring for the files."""
    distributed = _init_distributed(config.device)
    try:
        yield from _Run(config, control or LiveControl(), distributed).run()
    except torch.OutOfMemoryError:
        _free_accelerator_memory()
        raise MemoryError(_out_of_memory_message(config)) from None
    finally:
        if distributed is not None:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
        _free_accelerator_memory()


class _Run:
    """The state of one training run (kept together so checkpoints can be written from anywhere)."""

    def __init__(self, config: TrainConfig, control: LiveControl, distributed: _Distributed | None):
        self.config = config
        self.control = control
        self.dist = distributed
        self.rank = distributed.rank if distributed else 0
        self.world = distributed.world_size if distributed else 1
        self.history: list[dict] = []
        self.notes: list[str] = []
        self.run_dir = Path(config.out_dir) if config.out_dir else None
        self.best_val: float | None = None
        self.last_val: float | None = None
        self.model: AlexNet | None = None
        self.epoch = 0
        self.batches_done = 0
        self.step = 0
        self.resumable = False  # True once the model, optimiser and counters agree (safe to save)

    # --- set-up ------------------------------------------------------------------------------------
    def _device(self) -> tuple[torch.device, str]:
        if self.dist is not None and torch.cuda.is_available() and self.config.device in ("auto", "cuda"):
            return torch.device("cuda", self.dist.local_rank), f"cuda:{self.dist.local_rank}"
        device, label, note = resolve_train_device(self.config.device)
        if note:
            self.notes.append(note)
        return device, label

    def _load_data(self) -> Iterator[LoadingData]:
        cfg = self.config.data
        yield LoadingData(f"Loading {image_data.SOURCES.get(cfg.source, cfg.source)}...")
        loader = image_data.load_iter(cfg)
        while True:
            try:
                progress = next(loader)
            except StopIteration as stop:
                return stop.value
            yield LoadingData(f"Reading images: {progress.done}/{progress.total} "
                              f"({progress.skipped} skipped)", progress.fraction)

    def _payload(self, completed: bool) -> dict:
        module = self.model
        return {
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
            "model_config": module.config.to_dict(),
            "state_dict": {k: v.detach().float().cpu().clone() if v.is_floating_point() else v.detach().cpu().clone()
                           for k, v in module.state_dict().items()},
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "epoch": self.epoch, "batches_done": self.batches_done, "step": self.step, "completed": completed,
            "class_names": list(self.class_names), "train_config": self.config.to_dict(),
            "history": self.history, "val_accuracy": self.last_val, "torch": str(torch.__version__),
        }

    def save(self, completed: bool = False) -> str | None:
        """Checkpoint and history into the run folder (rank 0 only); the path, or None when not saving."""
        if self.run_dir is None or self.rank != 0 or not self.resumable:
            return None
        finite = torch.stack([p.detach().isfinite().all() for p in self.model.parameters()]).all()
        if not bool(finite):  # diverged since the last record: keep the last good checkpoint
            return None
        path = save_checkpoint(self.run_dir / CHECKPOINT_NAME, self._payload(completed))
        write_history(self.run_dir, self.history, {
            "model": self.model.config.to_dict(), "model_description": self.model.config.describe(),
            "class_names": list(self.class_names), "train_config": self.config.to_dict(), "completed": completed})
        return str(path)

    # --- the loop ----------------------------------------------------------------------------------
    def run(self) -> Iterator:
        cfg = self.config
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        torch.manual_seed(cfg.seed)
        device, device_label = self._device()
        autocast_dtype, precision, note = resolve_precision(cfg.precision, device)
        if note:
            self.notes.append(note)
        channels_last = cfg.channels_last if cfg.channels_last is not None else device.type == "cuda"
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels

        data = yield from self._load_data()
        self.class_names = data.class_names
        model_config = cfg.model
        if model_config.num_classes != len(data.class_names):
            model_config = dataclasses.replace(model_config, num_classes=len(data.class_names))
            self.notes.append(f"The last layer has {len(data.class_names)} outputs, one per class of the data.")
        if len(data.train) == 0:
            raise DatasetError("The training set is empty.")

        checkpoint = None
        if cfg.resume_from:
            checkpoint = load_checkpoint(cfg.resume_from)
            check_architecture(checkpoint, model_config)
        torch.manual_seed(cfg.seed)
        model = AlexNet(model_config)
        if checkpoint is not None:
            model.load_state_dict(checkpoint.state_dict)
        model = model.to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        trained = model
        if self.dist is not None:
            from torch.nn.parallel import DistributedDataParallel

            trained = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

        # The data lives on the device when it fits comfortably (no copy per step), else in pinned memory.
        def place(array: np.ndarray) -> torch.Tensor:
            tensor = torch.from_numpy(np.ascontiguousarray(array))
            if device.type == "cpu":
                return tensor
            if tensor.numel() <= 2 * 1024 ** 3:
                return tensor.to(device)
            return tensor.pin_memory() if device.type == "cuda" else tensor

        train_x, train_y = place(data.train.images), place(data.train.labels)
        val_x, val_y = data.val.images, data.val.labels  # numpy: evaluated on rank 0 only
        n_train = len(data.train)
        if self.dist is not None:
            from torch.utils.data import DistributedSampler

            sampler = DistributedSampler(range(n_train), num_replicas=self.world, rank=self.rank, shuffle=True,
                                         seed=cfg.seed)
            per_rank = len(sampler)
        else:
            sampler, per_rank = None, n_train
        steps_per_epoch = max(1, math.ceil(per_rank / cfg.batch_size))
        steps_total = steps_per_epoch * cfg.epochs
        steps_goal = min(steps_total, cfg.max_steps) if cfg.max_steps else steps_total

        self.optimizer = _make_optimizer(model, cfg)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, _lr_factor(cfg.schedule, steps_total))
        self.scaler = torch.amp.GradScaler(device.type, enabled=autocast_dtype == torch.float16)
        start_epoch = 0
        if checkpoint is not None:
            try:
                saved_optimizer = checkpoint.train_config.get("optimizer")
                if checkpoint.optimizer and saved_optimizer != cfg.optimizer:
                    self.notes.append(f"The checkpoint was trained with {saved_optimizer}; {cfg.optimizer} starts "
                                      "with fresh momentum statistics.")
                elif checkpoint.optimizer:
                    self.optimizer.load_state_dict(checkpoint.optimizer)
                if checkpoint.scheduler:
                    self.scheduler.load_state_dict(checkpoint.scheduler)
                if checkpoint.scaler and self.scaler.is_enabled():
                    self.scaler.load_state_dict(checkpoint.scaler)
            except (ValueError, KeyError, RuntimeError) as exc:
                self.notes.append(f"The optimiser state could not be restored ({exc}); it starts afresh.")
            self.history = list(checkpoint.history)
            self.step = checkpoint.step
            start_epoch, self.batches_done = checkpoint.epoch, checkpoint.batches_done
            if self.batches_done >= steps_per_epoch:
                start_epoch, self.batches_done = start_epoch + 1, 0
            self.last_val = checkpoint.val_accuracy
        self.epoch = start_epoch
        self.resumable = True
        layers = model.weight_layers()
        layer_names = tuple(name for name, _ in layers)
        weights = [m.weight for _, m in layers]
        preview = min(cfg.preview_count, len(val_y))
        num_classes = model_config.num_classes

        yield RunStarted(
            data.title, data.class_names, n_train, len(val_y), data.skipped, data.skipped_examples, data.note,
            model_config, sum(p.numel() for p in model.parameters()), device_label, precision, channels_last,
            self.world, steps_goal, self.step, str(self.run_dir) if self.run_dir else None, tuple(self.notes),
            val_images=val_x[:max(preview, 1)].copy())

        val_x_t, val_y_t = torch.from_numpy(val_x), torch.from_numpy(val_y)
        snap_n = min(cfg.snapshot_val_images, len(val_y))
        start = time.perf_counter()
        paused_s = 0.0  # time spent inside yields (the consumer paused us or was slow)
        last_snapshot = start
        last_emit = start - cfg.emit_every_s  # the first step reports at once
        last_epoch_emit = start - 1e9
        snapshot_cost = 0.0
        rate_images, images_per_s = 0, 0.0
        session_steps = 0
        loss_sum = torch.zeros((), device=device)  # since the last record
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        epoch_loss = torch.zeros((), device=device)  # over the epoch (read once, at its end)
        epoch_correct = torch.zeros((), device=device, dtype=torch.long)
        epoch_seen = 0
        completed = False
        finished_epochs = start_epoch

        def timed_yield(record):
            nonlocal paused_s
            t0 = time.perf_counter()
            yield record
            paused_s += time.perf_counter() - t0

        def snapshot() -> Snapshot:
            nonlocal snapshot_cost
            t0 = time.perf_counter()
            _, _, confusion, pred, conf = evaluate(model, val_x_t[:snap_n], val_y_t[:snap_n], num_classes,
                                                   autocast_dtype, channels_last)
            record = self._snapshot(model, val_x, val_y, confusion, snap_n, pred, conf, preview)
            snapshot_cost = time.perf_counter() - t0
            return record

        try:
            for epoch in range(start_epoch, cfg.epochs):
                self.epoch = epoch
                trained.train()
                if sampler is not None:
                    sampler.set_epoch(epoch)
                    order = torch.tensor(list(iter(sampler)), dtype=torch.long)
                else:
                    order = torch.randperm(n_train, generator=torch.Generator().manual_seed(cfg.seed + epoch))
                order = order.to(train_x.device)
                first_batch = self.batches_done
                epoch_loss.zero_()
                epoch_correct.zero_()
                epoch_seen = 0
                for batch_index in range(first_batch, steps_per_epoch):
                    if self.step >= steps_goal or self.control.stop_now:
                        break
                    step_start = time.perf_counter()
                    idx = order[batch_index * cfg.batch_size: (batch_index + 1) * cfg.batch_size]
                    x = prepare_batch(train_x[idx].to(device, non_blocking=True), model_config, channels_last)
                    y = train_y[idx].to(device, non_blocking=True)
                    emit_now = step_start - last_emit >= cfg.emit_every_s
                    with torch.autocast(device.type, dtype=autocast_dtype or torch.float32,
                                        enabled=autocast_dtype is not None):
                        logits = trained(x)
                    loss = F.cross_entropy(logits.float(), y)
                    self.optimizer.zero_grad(set_to_none=True)
                    self.scaler.scale(loss).backward()
                    grad_norms = None
                    if emit_now:
                        self.scaler.unscale_(self.optimizer)
                        grads = [w.grad if w.grad is not None else torch.zeros_like(w) for w in weights]
                        grad_norms = torch.stack(torch._foreach_norm(grads)).float()
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                    self.scheduler.step()
                    self.step += 1
                    self.batches_done = batch_index + 1
                    session_steps += 1
                    batch_loss = loss.detach() * len(y)
                    batch_correct = (logits.detach().argmax(1) == y).sum()
                    loss_sum += batch_loss
                    correct += batch_correct
                    epoch_loss += batch_loss
                    epoch_correct += batch_correct
                    seen += len(y)
                    epoch_seen += len(y)
                    rate_images += len(y) * self.world
                    if self.control.save_now:
                        self.control.save_now = False
                        saved = self.save()
                    else:
                        saved = None
                    if not (emit_now or saved):
                        continue
                    # --- a progress record: the only place the loop waits for the device ---
                    mean_loss = float(loss_sum) / max(1, seen)
                    self._check_finite(mean_loss, epoch)
                    now = time.perf_counter()
                    train_time = now - start - paused_s
                    rate_time_now = now - last_emit
                    if rate_time_now > 0 and rate_images:
                        current = rate_images / rate_time_now
                        images_per_s = current if images_per_s == 0 else 0.7 * images_per_s + 0.3 * current
                    rate_images = 0
                    remaining = steps_goal - self.step
                    eta = remaining * train_time / max(1, session_steps)
                    snap = None
                    due = now - last_snapshot >= max(cfg.snapshot_every_s, snapshot_cost / cfg.snapshot_budget)
                    if self.rank == 0 and len(val_y) and (due or self.control.snapshot_now):
                        self.control.snapshot_now = False
                        snap = snapshot()
                    record = TrainProgress(
                        epoch + 1, cfg.epochs, self.step, steps_goal, epoch + self.batches_done / steps_per_epoch,
                        mean_loss, float(correct) / max(1, seen), self.scheduler.get_last_lr()[0], images_per_s, eta,
                        train_time, layer_names,
                        grad_norms.cpu().numpy() if grad_norms is not None else np.full(len(weights), np.nan),
                        first_layer_filters(model), snapshot=snap, checkpoint=saved)
                    self._remember(record, grad_norms is not None)
                    loss_sum.zero_()
                    correct.zero_()
                    seen = 0
                    yield from timed_yield(record)
                    last_emit = time.perf_counter()
                    if snap is not None:
                        last_snapshot = last_emit
                if self.batches_done >= steps_per_epoch:
                    finished_epochs = epoch + 1
                    self.epoch, self.batches_done = epoch + 1, 0
                    train_stats = (float(epoch_loss) / max(1, epoch_seen), float(epoch_correct) / max(1, epoch_seen))
                    self._check_finite(train_stats[0], epoch)
                    # Every epoch's end is reported, except when tiny epochs end more than once a second:
                    # then only one a second (the history and the checkpoint still get every epoch).
                    emit = (time.perf_counter() - last_epoch_emit >= max(1.0, cfg.emit_every_s)
                            or epoch + 1 == cfg.epochs or self.step >= steps_goal)
                    record = self._end_of_epoch(
                        epoch, steps_goal, layer_names, model, val_x_t, val_y_t, num_classes, autocast_dtype,
                        channels_last, val_x, val_y, preview, start, paused_s, images_per_s, train_stats, emit)
                    if emit:
                        yield from timed_yield(record)
                        last_emit = last_snapshot = last_epoch_emit = time.perf_counter()
                if self.step >= steps_goal or self.control.stop_now:
                    break
            completed = self.step >= steps_goal and not self.control.stop_now
            path = self.save(completed=completed)
        except (GeneratorExit, KeyboardInterrupt):
            # Stopped (the tab's Stop button closes this generator; Ctrl+C in a terminal): keep the work done.
            self.save(completed=False)
            raise
        history_csv = str(self.run_dir / HISTORY_CSV) if self.run_dir and self.rank == 0 else None
        yield TrainFinished(completed, finished_epochs, self.step, time.perf_counter() - start - paused_s, path,
                            history_csv, self.best_val, self.last_val, parameter_checksum(model))

    # --- pieces of the loop --------------------------------------------------------------------------
    def _check_finite(self, loss: float, epoch: int) -> None:
        if not math.isfinite(loss):
            self.resumable = False  # never overwrite the last good checkpoint with NaN weights
            raise FloatingPointError(
                f"The training loss became {loss} at step {self.step} (epoch {epoch + 1}): the weights grew until "
                "the numbers overflowed. Lower the learning rate (try a tenth), turn on BatchNorm, or pick a "
                "gentler schedule. The last checkpoint (saved before this happened) is kept.")

    def _snapshot(self, model, val_x, val_y, confusion, count, pred, conf, preview) -> Snapshot:
        index = min(max(0, int(self.control.feature_image)), len(val_y) - 1)
        user = self.control.user_image
        user_probs = predict_probs(model, user) if user is not None else None
        return Snapshot(
            self.step, count, confusion, val_x[:preview].copy(), val_y[:preview].copy(), pred[:preview].copy(),
            conf[:preview].copy(), index, val_x[index].copy(), int(val_y[index]), feature_maps(model, val_x[index]),
            user_probs)

    def _end_of_epoch(self, epoch, steps_goal, layer_names, model, val_x_t, val_y_t, num_classes, autocast_dtype,
                      channels_last, val_x, val_y, preview, start, paused_s, images_per_s, train_stats, emit):
        """Validate (rank 0), remember, checkpoint; the record for the epoch's end."""
        val_loss = val_acc = None
        snap = None
        if self.rank == 0 and len(val_y):
            val_loss, val_acc, confusion, pred, conf = evaluate(model, val_x_t, val_y_t, num_classes, autocast_dtype,
                                                                channels_last)
            if emit:
                snap = self._snapshot(model, val_x, val_y, confusion, len(val_y), pred, conf, preview)
            self.last_val = val_acc
            self.best_val = val_acc if self.best_val is None else max(self.best_val, val_acc)
        train_time = time.perf_counter() - start - paused_s
        record = TrainProgress(
            epoch + 1, self.config.epochs, self.step, steps_goal, float(epoch + 1), train_stats[0], train_stats[1],
            self.scheduler.get_last_lr()[0], images_per_s, 0.0 if self.step >= steps_goal else
            (steps_goal - self.step) * train_time / max(1, self.step), train_time, layer_names,
            np.full(len(layer_names), np.nan), first_layer_filters(model), val_loss, val_acc, snap)
        self.history.append({"step": self.step, "epoch": float(epoch + 1), "train_loss": train_stats[0],
                             "train_accuracy": train_stats[1], "val_loss": val_loss, "val_accuracy": val_acc,
                             "lr": record.lr,
                             "images_per_s": images_per_s, "elapsed_s": round(train_time, 3)})
        path = self.save()
        return dataclasses.replace(record, checkpoint=path)

    def _remember(self, record: TrainProgress, with_grads: bool) -> None:
        row = {"step": record.step, "epoch": round(record.epoch_float, 4), "train_loss": record.train_loss,
               "train_accuracy": record.train_accuracy, "val_loss": None, "val_accuracy": None, "lr": record.lr,
               "images_per_s": round(record.images_per_s, 2), "elapsed_s": round(record.elapsed_s, 3)}
        if with_grads:
            row.update({f"grad_norm_{n}": float(g) for n, g in zip(record.layer_names, record.grad_norms)})
        self.history.append(row)


# ---------------------------------------------------------------- the command line

def _format_seconds(seconds: float) -> str:
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="backprop-studio train alexnet",
        description="Train AlexNet or a small variant without a window; writes checkpoint.pt, history.csv and "
                    "history.json into --out, which the AlexNet tab opens. Under 'torchrun --nproc_per_node=N' it "
                    "trains data-parallel on N processes (--batch-size is per process).")
    d = p.add_argument_group("data")
    d.add_argument("--data", default="shapes", choices=tuple(image_data.SOURCES), help="data source (default: shapes)")
    d.add_argument("--folder", help="MNIST/CIFAR-10 files, or your images with one subfolder per class")
    d.add_argument("--download", action="store_true", help="download CIFAR-10 or MNIST first when missing")
    d.add_argument("--train-size", type=int, default=image_data.DataConfig.train_size)
    d.add_argument("--val-size", type=int, default=image_data.DataConfig.val_size)
    d.add_argument("--image-size", type=int, help="stored size for shapes/folder/synthetic (default: the input "
                                                  "size, at most 64 for shapes)")
    m = p.add_argument_group("model")
    m.add_argument("--full", action="store_true", help="the lecture's AlexNet: input 227, width divider 1")
    m.add_argument("--input-size", type=int, default=SMALL_MODEL.input_size, choices=(28, 32, 64, 227))
    m.add_argument("--width-divider", type=int, default=SMALL_MODEL.width_divider)
    m.add_argument("--channels", type=int, default=None, help="input channels (default: 3, or 1 for MNIST data)")
    m.add_argument("--batch-norm", action="store_true", help="BatchNorm after each convolution")
    m.add_argument("--dropout", type=float, default=0.5, help="dropout rate before FC-1 and FC-2; 0 turns it off")
    t = p.add_argument_group("training")
    t.add_argument("--optimizer", default=TrainConfig.optimizer, choices=OPTIMIZERS)
    t.add_argument("--lr", type=float, default=None, help="learning rate (default 0.02 for SGD, 0.002 for Adam)")
    t.add_argument("--momentum", type=float, default=TrainConfig.momentum)
    t.add_argument("--weight-decay", type=float, default=TrainConfig.weight_decay)
    t.add_argument("--schedule", default=TrainConfig.schedule, choices=SCHEDULES)
    t.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    t.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    t.add_argument("--max-steps", type=int, help="stop after this many steps")
    t.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    t.add_argument("--precision", default="auto", choices=PRECISIONS)
    t.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="channels-last memory layout (default: on CUDA)")
    t.add_argument("--threads", type=int, help="CPU threads for torch")
    t.add_argument("--seed", type=int, default=0)
    o = p.add_argument_group("output")
    o.add_argument("--out", default="alexnet-run", help="run folder for checkpoint.pt and history (default: "
                                                         "./alexnet-run)")
    o.add_argument("--resume", help="continue from this checkpoint.pt")
    o.add_argument("--print-every", type=float, default=5.0, help="seconds between progress lines")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    input_size = 227 if args.full else args.input_size
    divider = 1 if args.full else args.width_divider
    channels = args.channels or (1 if args.data in ("mnist", "fashion-mnist") else 3)
    if args.image_size:
        image_size = args.image_size
    elif args.data == "shapes":
        image_size = min(input_size, 64)
    else:
        image_size = input_size
    lr = args.lr if args.lr is not None else (0.02 if args.optimizer == "sgd" else TrainConfig.lr)
    model = AlexNetConfig(input_size=input_size, in_channels=channels, num_classes=10, width_divider=divider,
                          batch_norm=args.batch_norm, dropout=args.dropout)
    data = image_data.DataConfig(source=args.data, folder=args.folder, image_size=image_size,
                                 train_size=args.train_size, val_size=args.val_size, seed=args.seed)
    return TrainConfig(model=model, data=data, optimizer=args.optimizer, lr=lr, momentum=args.momentum,
                       weight_decay=args.weight_decay, schedule=args.schedule, batch_size=args.batch_size,
                       epochs=args.epochs, device=args.device, precision=args.precision,
                       channels_last=args.channels_last, seed=args.seed, num_threads=args.threads,
                       out_dir=str(Path(args.out).resolve()), resume_from=args.resume, max_steps=args.max_steps,
                       emit_every_s=min(1.0, args.print_every), snapshot_every_s=1e9)


def _download_if_asked(args: argparse.Namespace) -> None:
    from engine import datasets

    if args.data == "cifar10" and image_data.locate_cifar10(args.folder) is None:
        for progress in image_data.download_cifar10_iter(args.folder):
            print(f"\rdownloading {progress.file}: {progress.done / 1e6:.0f} MB", end="", flush=True)
        print()
    elif args.data in ("mnist", "fashion-mnist") and datasets.locate(args.data, args.folder) is None:
        datasets.download(args.data, args.folder)


def main(argv: list[str] | None = None) -> int:
    """``backprop-studio train alexnet ARGS``: train, print progress, write the run files. Returns the exit code."""
    args = build_parser().parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    say = (lambda *a, **k: print(*a, **k, flush=True)) if rank == 0 else (lambda *a, **k: None)
    try:
        if args.download and rank == 0:
            _download_if_asked(args)
        config = config_from_args(args)
    except (DatasetError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 2
    last_print = 0.0
    finished = None
    try:
        for record in train(config):
            if isinstance(record, LoadingData):
                say(record.message)
            elif isinstance(record, RunStarted):
                say(f"{record.model_config.describe()}: {record.params:,} parameters; data {record.data_title} "
                    f"({record.train_size} train / {record.val_size} validation images, "
                    f"{len(record.class_names)} classes); device {record.device}, {record.precision}"
                    f"{', channels-last' if record.channels_last else ''}"
                    f"{f', {record.world_size} processes' if record.world_size > 1 else ''}")
                for line in (*record.notes, *(f"skipped: {s}" for s in record.skipped_examples)):
                    say(f"  note: {line}")
            elif isinstance(record, TrainProgress):
                now = time.perf_counter()
                if record.val_accuracy is not None:
                    say(f"epoch {record.epoch}/{record.epochs} done: validation loss {record.val_loss:.4f}, "
                        f"accuracy {record.val_accuracy * 100:.2f} %  (checkpoint {record.checkpoint})")
                elif now - last_print >= args.print_every:
                    last_print = now
                    say(f"epoch {record.epoch}/{record.epochs} step {record.step}/{record.steps_total}: loss "
                        f"{record.train_loss:.4f}, accuracy {record.train_accuracy * 100:.1f} %, lr {record.lr:.3g}, "
                        f"{record.images_per_s:.0f} images/s, ETA {_format_seconds(record.eta_s)}")
            elif isinstance(record, TrainFinished):
                finished = record
    except KeyboardInterrupt:
        say(f"\nStopped; the checkpoint in {config.out_dir} holds the weights so far (resume with --resume).")
        return 130
    except (DatasetError, CheckpointError, FloatingPointError, MemoryError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    assert finished is not None
    acc = f", validation accuracy {finished.final_val_accuracy * 100:.2f} %" if finished.final_val_accuracy else ""
    say(f"{'finished' if finished.completed else 'stopped'} after {finished.step} steps in "
        f"{finished.seconds:.1f} s{acc}")
    say(f"checkpoint: {finished.checkpoint}\nhistory: {finished.history_csv}")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    print(f"rank {rank} of {world}: parameter checksum {finished.parameter_checksum}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
