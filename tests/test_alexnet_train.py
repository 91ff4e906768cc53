"""engine.alexnet_train: the training generator, checkpoints, history, the command line and DDP."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine import alexnet_train as at
from engine.alexnet import AlexNet, AlexNetConfig, to_model_input
from engine.image_data import DataConfig

REPO = Path(__file__).resolve().parents[1]
TINY_MODEL = AlexNetConfig(input_size=28, in_channels=3, num_classes=10, width_divider=16, dropout=0.0)
TINY_DATA = DataConfig(source="shapes", image_size=28, train_size=64, val_size=32)


def tiny_config(tmp_path: Path | None = None, **overrides) -> at.TrainConfig:
    base = at.TrainConfig(model=TINY_MODEL, data=TINY_DATA, batch_size=16, epochs=2, device="cpu", num_threads=1,
                          out_dir=str(tmp_path) if tmp_path else None, emit_every_s=0.0, snapshot_every_s=1e9)
    return dataclasses.replace(base, **overrides)


def run_all(config, control=None) -> list:
    return list(at.train(config, control))


def progress(records):
    return [r for r in records if isinstance(r, at.TrainProgress)]


def _no_tensors(value, path="record"):
    if isinstance(value, torch.Tensor):
        raise AssertionError(f"{path} is a live tensor")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _no_tensors(getattr(value, f.name), f"{path}.{f.name}")
    elif isinstance(value, dict):
        for k, v in value.items():
            _no_tensors(v, f"{path}[{k!r}]")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _no_tensors(v, f"{path}[{i}]")


def test_a_run_yields_frozen_plain_records_and_writes_its_files(tmp_path):
    records = run_all(tiny_config(tmp_path, snapshot_every_s=0.0, snapshot_budget=1.0))
    kinds = [type(r).__name__ for r in records]
    assert kinds[0] == "LoadingData" and kinds[1] == "RunStarted" and kinds[-1] == "TrainFinished"
    started, finished = records[1], records[-1]
    assert started.class_names[0] == "circle" and started.train_size == 64 and started.steps_total == 8
    assert started.device == "cpu" and started.precision == "fp32" and not started.channels_last
    steps = progress(records)
    assert [r.step for r in steps if r.val_accuracy is None] == list(range(1, 9))
    epoch_ends = [r for r in steps if r.val_accuracy is not None]
    assert [r.epoch for r in epoch_ends] == [1, 2] and all(r.checkpoint for r in epoch_ends)
    for record in records:
        _no_tensors(record)
        with pytest.raises(dataclasses.FrozenInstanceError):
            record.__setattr__(dataclasses.fields(record)[0].name, None)
    last = steps[-2]
    assert last.layer_names == ("conv1", "conv2", "conv3", "conv4", "conv5", "fc1", "fc2", "fc3")
    assert last.grad_norms.shape == (8,) and np.isfinite(last.grad_norms).all() and (last.grad_norms > 0).all()
    assert last.filters.shape == (6, 3, 5, 5)
    # Snapshots are rationed by their own cost (snapshot_budget), so which step carries one depends on
    # the machine's speed: check the latest one there is.
    snaps = [r.snapshot for r in steps if r.snapshot is not None]
    assert snaps, "no snapshot in the whole run"
    snap = snaps[-1]
    assert snap.confusion.shape == (10, 10) and snap.confusion.sum() == 32 == snap.val_count
    assert snap.preview_images.shape == (24, 3, 28, 28) and len(snap.preview_predicted) == 24
    assert set(snap.feature_maps) == {"conv1", "conv2", "conv3", "conv4", "conv5"}
    assert snap.feature_maps["conv1"].shape == (6, 28, 28) and snap.feature_maps["conv5"].shape == (16, 6, 6)
    assert finished.completed and finished.step == 8 and finished.epochs_done == 2
    assert len(finished.parameter_checksum) == 16
    run_dir = tmp_path
    assert {p.name for p in run_dir.iterdir()} == {"checkpoint.pt", "history.csv", "history.json"}
    ckpt = at.load_checkpoint(run_dir / "checkpoint.pt")
    assert ckpt.completed and ckpt.step == 8 and ckpt.class_names == started.class_names
    model = at.model_from_checkpoint(ckpt)
    assert at.parameter_checksum(model) == finished.parameter_checksum
    rows = at.read_history(run_dir / "history.csv")
    from_json = json.loads((run_dir / "history.json").read_text())["history"]
    assert [{k: r[k] for k in at.HISTORY_FIELDS} for r in rows] == [
        {k: (float(r[k]) if r[k] is not None else None) for k in at.HISTORY_FIELDS} for r in from_json]
    assert [r["val_accuracy"] is not None for r in rows].count(True) == 2
    assert "grad_norm_conv1" in rows[0] and rows[-1]["val_accuracy"] == pytest.approx(finished.final_val_accuracy)


def test_records_are_throttled_to_ten_per_second():
    config = tiny_config(emit_every_s=0.1, epochs=200, max_steps=400,
                         data=dataclasses.replace(TINY_DATA, val_size=0))
    start = time.perf_counter()
    records = progress(run_all(config))
    elapsed = time.perf_counter() - start
    assert len(records) <= elapsed * 11 + 2  # ten progress records and one epoch's end a second at most
    assert len(records) < 100  # far fewer records than steps (400) or epochs (100)
    assert records[-1].step == 400


def test_small_alexnet_learns_the_shapes_well_above_chance():
    config = at.TrainConfig(
        model=AlexNetConfig(input_size=28, num_classes=10, width_divider=8, dropout=0.0),
        data=DataConfig(image_size=28, train_size=3000, val_size=300), epochs=6, batch_size=32, device="cpu",
        emit_every_s=1.0, snapshot_every_s=1e9)
    finished = run_all(config)[-1]
    assert finished.final_val_accuracy > 0.3  # chance is 0.1


def test_stop_mid_epoch_keeps_an_intact_checkpoint(tmp_path):
    gen = at.train(tiny_config(tmp_path, epochs=5))
    seen = 0
    for record in gen:
        if isinstance(record, at.TrainProgress):
            seen += 1
            if seen == 3:
                break
    gen.close()  # what the tab's Stop button does
    ckpt = at.load_checkpoint(tmp_path / "checkpoint.pt")
    assert not ckpt.completed and ckpt.step == 3 and ckpt.epoch == 0 and ckpt.batches_done == 3
    assert at.model_from_checkpoint(ckpt) is not None
    assert len(at.read_history(tmp_path / "history.json")) == 3
    assert not list(tmp_path.glob("*.tmp"))


def test_resume_continues_exactly_where_it_stopped(tmp_path):
    straight = run_all(tiny_config(tmp_path / "a", max_steps=7))[-1]
    run_all(tiny_config(tmp_path / "b", max_steps=3))
    resumed_records = run_all(tiny_config(tmp_path / "b", max_steps=7, resume_from=str(tmp_path / "b" / "checkpoint.pt")))
    assert resumed_records[1].start_step == 3
    assert [r.step for r in progress(resumed_records) if r.val_accuracy is None] == [4, 5, 6, 7]
    a = at.load_checkpoint(tmp_path / "a" / "checkpoint.pt").state_dict
    b = at.load_checkpoint(tmp_path / "b" / "checkpoint.pt").state_dict
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)
    assert resumed_records[-1].parameter_checksum == straight.parameter_checksum  # same numbers, bit for bit
    assert len(at.load_checkpoint(tmp_path / "b" / "checkpoint.pt").history) >= 7


class _NotAllowed:
    """Any class: torch.load(weights_only=True) must refuse to build it."""


def test_checkpoint_errors_are_clear(tmp_path):
    run_all(tiny_config(tmp_path, max_steps=1))
    path = tmp_path / "checkpoint.pt"
    other = dataclasses.replace(TINY_MODEL, input_size=32, batch_norm=True)
    with pytest.raises(at.CheckpointError, match=r"another architecture: input size 28 \(this run: 32\); "
                                                 r"batch norm False \(this run: True\)"):
        run_all(tiny_config(tmp_path / "x", model=other, data=dataclasses.replace(TINY_DATA, image_size=32),
                            resume_from=str(path)))
    digits_like = tmp_path / "digits.pt"
    torch.save({"state_dict": {"conv1.weight": torch.zeros(1)}, "meta": {}}, digits_like)
    with pytest.raises(at.CheckpointError, match="not an AlexNet checkpoint.*conv1.weight"):
        at.load_checkpoint(digits_like)
    evil = tmp_path / "evil.pt"
    torch.save({"format": at.CHECKPOINT_FORMAT, "payload": _NotAllowed()}, evil)
    with pytest.raises(at.CheckpointError, match="not loaded"):
        at.load_checkpoint(evil)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:500])
    with pytest.raises(at.CheckpointError, match="not a readable checkpoint"):
        at.load_checkpoint(truncated)
    with pytest.raises(at.CheckpointError, match="no such file"):
        at.load_checkpoint(tmp_path / "missing.pt")


def test_diverging_loss_raises_and_keeps_the_last_checkpoint(tmp_path):
    run_all(tiny_config(tmp_path, max_steps=2))
    with pytest.raises(FloatingPointError, match="Lower the learning rate"):
        run_all(tiny_config(tmp_path, optimizer="sgd", lr=1e6, schedule="constant", epochs=100, max_steps=300,
                            resume_from=str(tmp_path / "checkpoint.pt")))
    ckpt = at.load_checkpoint(tmp_path / "checkpoint.pt")
    assert all(torch.isfinite(v).all() for v in ckpt.state_dict.values() if v.is_floating_point())


def test_out_of_memory_suggests_a_smaller_batch(monkeypatch):
    def full(self, x):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(AlexNet, "forward", full)
    with pytest.raises(MemoryError, match="batch size 16. Try batch size 8"):
        run_all(tiny_config())


def test_live_control_changes_the_feature_image_and_classifies_and_saves(tmp_path):
    control = at.LiveControl()
    control.feature_image = 5
    control.user_image = np.zeros((3, 28, 28), np.uint8)
    control.save_now = True
    records = progress(run_all(tiny_config(tmp_path, snapshot_every_s=0.0, snapshot_budget=1.0), control))
    assert records[0].checkpoint == str(tmp_path / "checkpoint.pt")
    snap = records[0].snapshot
    assert snap.feature_index == 5 and snap.feature_image.shape == (3, 28, 28)
    assert snap.user_probs.shape == (10,) and snap.user_probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert not control.save_now


def test_evaluate_matches_a_direct_computation():
    torch.manual_seed(0)
    model = AlexNet(TINY_MODEL)
    images = torch.randint(0, 256, (40, 3, 28, 28), dtype=torch.uint8)
    labels = torch.randint(0, 10, (40,))
    loss, acc, confusion, pred, conf = at.evaluate(model, images, labels, 10, batch_size=16)
    with torch.no_grad():
        logits = model.eval()(to_model_input(images))
    assert loss == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-5)
    np.testing.assert_array_equal(pred, logits.argmax(1).numpy())
    assert acc == pytest.approx((pred == labels.numpy()).mean())
    np.testing.assert_allclose(conf, logits.softmax(1).max(1).values.numpy(), rtol=1e-5)
    assert confusion.sum() == 40 and np.trace(confusion) == int(round(acc * 40))
    assert confusion[labels[0], pred[0]] >= 1


def test_prepare_batch_adapts_channels_and_size():
    cfg3 = AlexNetConfig(input_size=32, in_channels=3, num_classes=10, width_divider=8)
    grey = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    x = at.prepare_batch(grey, cfg3)
    assert x.shape == (2, 3, 32, 32)
    torch.testing.assert_close(x[:, 0], x[:, 2])
    expected = F.interpolate(to_model_input(grey), size=(32, 32), mode="bilinear", align_corners=False)
    torch.testing.assert_close(x[:, :1], expected)
    cfg1 = dataclasses.replace(cfg3, in_channels=1, input_size=28)
    colour = torch.randint(0, 256, (2, 3, 28, 28), dtype=torch.uint8)
    y = at.prepare_batch(colour, cfg1, channels_last=True)
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    torch.testing.assert_close(y, (to_model_input(colour) * weights).sum(1, keepdim=True))


def test_classify_gives_sorted_top5():
    torch.manual_seed(0)
    model = AlexNet(AlexNetConfig(input_size=32, num_classes=10, width_divider=8))
    names = tuple(f"c{k}" for k in range(10))
    top = at.classify(model, np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8), names)
    probs = [p for _, p in top]
    assert len(top) == 5 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    assert all(name in names for name, _ in top)
    assert at.classify(model, np.zeros((10, 10), np.uint8), names, top=3)[0][0] in names


def test_device_and_precision_choices():
    device, label, note = at.resolve_train_device("cpu")
    assert device.type == "cpu" and note == ""
    if not torch.cuda.is_available():
        device, _, note = at.resolve_train_device("cuda")
        assert device.type == "cpu" and "CUDA is not available" in note
    with pytest.raises(ValueError, match="Unknown device"):
        at.resolve_train_device("tpu")
    cpu = torch.device("cpu")
    assert at.resolve_precision("auto", cpu)[:2] == (None, "fp32")
    assert at.resolve_precision("bf16", cpu)[:2] == (torch.bfloat16, "bf16")
    dtype, name, note = at.resolve_precision("fp16", cpu)
    assert dtype is None and name == "fp32" and "CUDA" in note


def test_schedules():
    for name in at.SCHEDULES:
        factor = at._lr_factor(name, 90)
        values = [factor(s) for s in range(91)]
        assert all(0 < v <= 1.0 + 1e-9 for v in values)
    assert at._lr_factor("step", 90)(29) == 1.0 and at._lr_factor("step", 90)(30) == pytest.approx(0.1)
    one = at._lr_factor("onecycle", 100)
    assert one(0) < one(25) and one(25) == pytest.approx(1.0) and one(100) < 0.01


def test_command_line_in_process(tmp_path, capsys):
    out = tmp_path / "run"
    code = at.main(["--input-size", "28", "--width-divider", "16", "--train-size", "64", "--val-size", "16",
                    "--batch-size", "16", "--epochs", "1", "--device", "cpu", "--threads", "1", "--out", str(out),
                    "--print-every", "0"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "AlexNet 28px /16" in text and "epoch 1/1 done" in text and "parameter checksum" in text
    assert (out / "checkpoint.pt").is_file() and (out / "history.csv").is_file()
    code = at.main(["--data", "folder", "--folder", str(tmp_path / "nothing"), "--out", str(tmp_path / "r2"),
                    "--device", "cpu"])
    assert code == 1 and "is not a folder" in capsys.readouterr().err


def _cpu_env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


def test_ddp_two_processes_on_cpu_end_with_identical_weights(tmp_path):
    """torchrun --nproc_per_node=2 on the gloo backend: the replicas must agree bit for bit."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "engine.alexnet_train", "--input-size", "28", "--width-divider", "16", "--dropout", "0.5",
           "--batch-norm", "--train-size", "96", "--val-size", "16", "--batch-size", "8", "--epochs", "2",
           "--max-steps", "8", "--device", "cpu", "--threads", "1", "--out", str(tmp_path / "ddp")]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=_cpu_env(), timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sums = dict(re.findall(r"rank (\d) of 2: parameter checksum ([0-9a-f]{16})", proc.stdout))
    assert set(sums) == {"0", "1"} and sums["0"] == sums["1"], proc.stdout
    assert "2 processes" in proc.stdout
    ckpt = at.load_checkpoint(tmp_path / "ddp" / "checkpoint.pt")
    assert ckpt.step == 8 and at.parameter_checksum(at.model_from_checkpoint(ckpt)) == sums["0"]


def test_module_entry_point_runs(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "engine.alexnet_train", "--input-size", "28", "--width-divider",
                           "16", "--train-size", "32", "--val-size", "8", "--batch-size", "16", "--max-steps", "2",
                           "--device", "cpu", "--out", str(tmp_path / "m")],
                          capture_output=True, text=True, cwd=REPO, env=_cpu_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "finished after 2 steps" in proc.stdout and (tmp_path / "m" / "checkpoint.pt").is_file()
