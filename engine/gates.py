"""Gated recurrent cells written out: LSTM and GRU gates step by step, and why they help.

The lecture's whiteboard picture: a recurrent state is a small board that every step
writes over. A gated cell decides, per unit and per step, how much to *write* (the
LSTM's input gate, the GRU's 1 - z), how much of the old content to *keep or erase*
(the forget gate f, the GRU's z) and how much of the board to *read out* (the output
gate o; the GRU's reset gate r chooses what of the old state the candidate may read).

This module holds

* the explicit cells in float64 numpy (``lstm_trace``, ``gru_trace``), which record
  every gate at every step and match ``torch.nn.LSTM`` / ``nn.GRU`` to 1e-10;
* ``from_torch`` to read the weights of a trained torch module in its packed layout;
* parameter counts of RNN, GRU and LSTM with their formulas;
* ``gradient_flow``: ||dL_T/dh_k|| for every step k, the vanishing gradient and its fix;
* ``train_side_by_side``: a vanilla RNN, a GRU and an LSTM trained on the same batches
  of a memory task (``engine.memory_tasks``), as a throttled generator.
"""

from __future__ import annotations

import copy
import math
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.memory_tasks import ADDING_TOLERANCE, MemoryTask, SequenceBatch

MODEL_KINDS = ("rnn", "gru", "lstm")
MODEL_TITLES = {"rnn": "vanilla RNN", "gru": "GRU", "lstm": "LSTM"}
KEEP_BIAS = 3.0  # initial bias of the LSTM forget gate and the GRU update gate (see SequenceModel)
WRITE_BIAS = -3.0  # initial bias of the LSTM input gate (see SequenceModel)
GATE_BLOCKS = {"rnn": 1, "gru": 3, "lstm": 4}  # weight blocks of size H x (I + H) per cell


def sigmoid(x: np.ndarray) -> np.ndarray:
    # 1 / (1 + exp(-x)) written through tanh: the same function, without overflow warnings for large |x|.
    return 0.5 * np.tanh(0.5 * x) + 0.5


# ---------------------------------------------------------------- parameters

class _PackedLayer:
    """Sizes read off torch's packed weight matrices (shared by the LSTM and GRU parameters)."""

    w_ih: np.ndarray
    w_hh: np.ndarray

    @property
    def hidden_size(self) -> int:
        return self.w_hh.shape[1]

    @property
    def input_size(self) -> int:
        return self.w_ih.shape[1]


@dataclass(frozen=True, eq=False)
class LSTMParams(_PackedLayer):
    """One LSTM layer in torch's packed layout: rows are the gates in the order i, f, g, o."""
    w_ih: np.ndarray  # (4H, I) input -> gates
    w_hh: np.ndarray  # (4H, H) previous hidden state -> gates
    b_ih: np.ndarray  # (4H,)
    b_hh: np.ndarray  # (4H,)


@dataclass(frozen=True, eq=False)
class GRUParams(_PackedLayer):
    """One GRU layer in torch's packed layout: rows are the gates in the order r, z, n."""
    w_ih: np.ndarray  # (3H, I)
    w_hh: np.ndarray  # (3H, H)
    b_ih: np.ndarray  # (3H,)
    b_hh: np.ndarray  # (3H,)


def from_torch(module: nn.Module) -> LSTMParams | GRUParams:
    """float64 copies of the weights of a single-layer, one-directional ``nn.LSTM`` or ``nn.GRU``.

    ``batch_first`` only changes how the module reads its input, not its weights, so
    either setting works. A module built with ``bias=False`` gets zero biases.
    """
    if not isinstance(module, nn.LSTM | nn.GRU):
        raise TypeError(f"Expected torch.nn.LSTM or torch.nn.GRU, got {type(module).__name__}.")
    if module.num_layers != 1 or module.bidirectional:
        raise ValueError("Only a single-layer, one-directional LSTM or GRU can be inspected gate by gate.")
    if isinstance(module, nn.LSTM) and module.proj_size:
        raise ValueError("An LSTM with proj_size is not the plain cell of the lecture; use proj_size=0.")

    def numpy64(t: torch.Tensor) -> np.ndarray:
        return t.detach().to("cpu", torch.float64).numpy().copy()

    w_ih, w_hh = numpy64(module.weight_ih_l0), numpy64(module.weight_hh_l0)
    rows = w_ih.shape[0]
    b_ih = numpy64(module.bias_ih_l0) if module.bias else np.zeros(rows)
    b_hh = numpy64(module.bias_hh_l0) if module.bias else np.zeros(rows)
    cls = LSTMParams if isinstance(module, nn.LSTM) else GRUParams
    return cls(w_ih, w_hh, b_ih, b_hh)


# ---------------------------------------------------------------- the cells, step by step

@dataclass(frozen=True, eq=False)
class LSTMTrace:
    """Every gate of an LSTM at every step for one input sequence (initial h and c are zero)."""
    xs: np.ndarray  # (T, I) the inputs
    i: np.ndarray  # (T, H) input gate: how much of the candidate to write (selective write)
    f: np.ndarray  # (T, H) forget gate: how much of the old cell state to keep (selective forget)
    g: np.ndarray  # (T, H) candidate values that could be written
    o: np.ndarray  # (T, H) output gate: how much of the memory to expose as h (selective read)
    c: np.ndarray  # (T, H) cell state, the long-term memory
    h: np.ndarray  # (T, H) hidden state, what the next layer and the next step see

    def previous_state(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """(h_{t-1}, c_{t-1}), each (H,): zeros before the first step."""
        if t == 0:
            zero = np.zeros(self.h.shape[1])
            return zero, zero
        return self.h[t - 1], self.c[t - 1]


@dataclass(frozen=True, eq=False)
class GRUTrace:
    """Every gate of a GRU at every step for one input sequence (initial h is zero)."""
    xs: np.ndarray  # (T, I)
    z: np.ndarray  # (T, H) update gate: how much of the old state to keep (1 - z: how much to write)
    r: np.ndarray  # (T, H) reset gate: how much of the old state the candidate may read
    n: np.ndarray  # (T, H) candidate state
    h: np.ndarray  # (T, H) hidden state

    def previous_state(self, t: int) -> np.ndarray:
        """h_{t-1} (H,): zeros before the first step."""
        return np.zeros(self.h.shape[1]) if t == 0 else self.h[t - 1]


def _as_sequence(params, xs) -> np.ndarray:
    xs = np.asarray(xs, np.float64)
    if xs.ndim != 2 or xs.shape[1] != params.input_size:
        raise ValueError(f"Expected inputs of shape (T, {params.input_size}), got {xs.shape}.")
    return xs


def lstm_trace(params: LSTMParams, xs: np.ndarray) -> LSTMTrace:
    """Run the LSTM over ``xs`` (T, I) and keep every gate.

    For each step t, with [a; b] the four blocks of rows i, f, g, o:
        i_t = sigmoid(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)    (H,)  write gate
        f_t = sigmoid(W_if x_t + b_if + W_hf h_{t-1} + b_hf)    (H,)  forget gate
        g_t = tanh   (W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)    (H,)  candidate
        o_t = sigmoid(W_io x_t + b_io + W_ho h_{t-1} + b_ho)    (H,)  read gate
        c_t = f_t * c_{t-1} + i_t * g_t                          (H,)  keep some, write some
        h_t = o_t * tanh(c_t)                                    (H,)  read some out
    """
    xs = _as_sequence(params, xs)
    steps, hidden = xs.shape[0], params.hidden_size
    # sigmoid(a) = (1 + tanh(a / 2)) / 2, so one tanh call serves all four blocks when the rows of the
    # three sigmoid gates are pre-scaled by 1/2 (exact in floating point: a power of two).
    scale = np.full(4 * hidden, 0.5)  # (4H,)
    scale[2 * hidden: 3 * hidden] = 1.0  # g keeps its plain tanh
    shift = 1.0 - scale  # (4H,) 0.5 for i, f, o; 0 for g
    # The input terms do not depend on the recurrence: all T of them in one matrix product.
    x_part = (xs @ params.w_ih.T + (params.b_ih + params.b_hh)) * scale  # (T, 4H)
    w_hh = params.w_hh * scale[:, None]  # (4H, H)
    acts = np.empty((steps, 4 * hidden))  # (T, 4H) i, f, g, o side by side
    c_all, h_all = np.empty((steps, hidden)), np.empty((steps, hidden))
    h = np.zeros(hidden)  # (H,) h_0
    c = np.zeros(hidden)  # (H,) c_0
    for t in range(steps):
        act = np.tanh(x_part[t] + w_hh @ h) * scale + shift  # (4H,) sigmoid(i, f, o) and tanh(g)
        i, f, g, o = act[:hidden], act[hidden: 2 * hidden], act[2 * hidden: 3 * hidden], act[3 * hidden:]
        c = f * c + i * g  # keep part of the old memory, write part of the candidate
        h = o * np.tanh(c)  # read part of the memory out
        acts[t], c_all[t], h_all[t] = act, c, h
    i_all, f_all, g_all, o_all = (acts[:, k * hidden: (k + 1) * hidden].copy() for k in range(4))
    return LSTMTrace(xs, i_all, f_all, g_all, o_all, c_all, h_all)


def gru_trace(params: GRUParams, xs: np.ndarray) -> GRUTrace:
    """Run the GRU over ``xs`` (T, I) and keep every gate.

    With torch's row blocks r, z, n:
        r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)          (H,)  reset: what of h_{t-1} to read
        z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)          (H,)  update: what of h_{t-1} to keep
        n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))     (H,)  candidate
        h_t = (1 - z_t) * n_t + z_t * h_{t-1}                         (H,)  keep z, write 1 - z
    """
    xs = _as_sequence(params, xs)
    steps, hidden = xs.shape[0], params.hidden_size
    x_part = xs @ params.w_ih.T + params.b_ih  # (T, 3H) all input terms at once
    # b_hn stays inside the reset gate's product, so only the r and z hidden biases join the input part.
    x_part[:, : 2 * hidden] += params.b_hh[: 2 * hidden]
    # As in lstm_trace: r and z rows pre-scaled by 1/2 so that sigmoid(a) = (1 + tanh(a / 2)) / 2.
    x_part[:, : 2 * hidden] *= 0.5
    w_hh = params.w_hh.copy()  # (3H, H)
    w_hh[: 2 * hidden] *= 0.5
    b_hn = params.b_hh[2 * hidden:]  # (H,)
    rz_all, n_all, h_all = np.empty((steps, 2 * hidden)), np.empty((steps, hidden)), np.empty((steps, hidden))
    h = np.zeros(hidden)  # (H,) h_0
    for t in range(steps):
        h_part = w_hh @ h  # (3H,)
        rz = np.tanh(x_part[t, : 2 * hidden] + h_part[: 2 * hidden]) * 0.5 + 0.5  # (2H,) sigmoid(r), sigmoid(z)
        r, z = rz[:hidden], rz[hidden:]
        n = np.tanh(x_part[t, 2 * hidden:] + r * (h_part[2 * hidden:] + b_hn))
        h = (1.0 - z) * n + z * h  # keep z of the old state, write 1 - z of the candidate
        rz_all[t], n_all[t], h_all[t] = rz, n, h
    return GRUTrace(xs, rz_all[:, hidden:].copy(), rz_all[:, :hidden].copy(), n_all, h_all)


# ---------------------------------------------------------------- parameter counts

@dataclass(frozen=True)
class ParameterCount:
    kind: str  # "rnn", "gru" or "lstm"
    blocks: int  # weight blocks of size H x (I + H): 1, 3 or 4
    formula: str  # in symbols
    worked: str  # the same with the numbers filled in
    recurrent: int  # parameters of the recurrent layer
    output: int  # parameters of the linear read-out layer
    total: int


def parameter_counts(input_size: int, hidden_size: int, output_size: int) -> tuple[ParameterCount, ...]:
    """Parameters of RNN, GRU and LSTM layers (as torch builds them) plus a linear read-out.

    Each block has a matrix for the input (H x I), one for the previous state (H x H)
    and, in torch, two bias vectors (b_ih and b_hh; a single bias would give + 1
    instead of + 2). The GRU has 3 such blocks (r, z, n), the LSTM 4 (i, f, g, o).
    """
    i, h, o = input_size, hidden_size, output_size
    out = o * (h + 1)
    counts = []
    for kind in MODEL_KINDS:
        n = GATE_BLOCKS[kind]
        recurrent = n * h * (i + h + 2)
        lead = "" if n == 1 else f"{n}·"
        counts.append(ParameterCount(
            kind, n, f"{lead}H·(I + H + 2) + O·(H + 1)",
            f"{lead}{h}·({i} + {h} + 2) + {o}·({h} + 1) = {recurrent} + {out} = {recurrent + out}",
            recurrent, out, recurrent + out))
    return tuple(counts)


# ---------------------------------------------------------------- torch models for training

class SequenceModel(nn.Module):
    """A recurrent layer (vanilla RNN, GRU or LSTM) with a linear read-out at every step."""

    def __init__(self, kind: str, input_size: int, hidden_size: int, output_size: int):
        super().__init__()
        if kind not in MODEL_KINDS:
            raise ValueError(f"Unknown model {kind!r}; choose one of {', '.join(MODEL_KINDS)}.")
        self.kind = kind
        layer = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[kind]
        self.rnn = layer(input_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, output_size)
        if kind in ("lstm", "gru"):
            # Start the gated cells keeping most of their memory: with the keep gate's bias at KEEP_BIAS,
            # f (LSTM) or z (GRU) starts near sigmoid(3) = 0.95 instead of 0.5, so an untrained cell does not
            # halve its memory at every step and a training signal can reach the first steps at all (the
            # forget-bias trick of Gers et al. and Jozefowicz et al.). The LSTM's write gate i starts mostly
            # closed (sigmoid(-3) = 0.05), as the GRU's 1 - z does, so distractors do not pile noise into
            # the memory before the cell has learnt what to store. Training then moves every gate.
            rows = slice(hidden_size, 2 * hidden_size)  # the second block: f of (i, f, g, o), z of (r, z, n)
            with torch.no_grad():
                self.rnn.bias_ih_l0[rows].fill_(KEEP_BIAS)
                self.rnn.bias_hh_l0[rows].zero_()
                if kind == "lstm":
                    self.rnn.bias_ih_l0[:hidden_size].fill_(WRITE_BIAS)
                    self.rnn.bias_hh_l0[:hidden_size].zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, I) -> (B, T, O)
        states, _ = self.rnn(x)
        return self.head(states)

    def step_states(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The hidden states h_1..h_T of one sequence x (T, I), each (H,), computed one step at a time.

        nn.RNN/GRU/LSTM return all states in one tensor, but the gradient of a loss
        with respect to that tensor's k-th row is only the direct path through the
        read-out; the path through later steps needs h_k to be a node of the graph.
        """
        rnn = self.rnn
        hidden = rnn.hidden_size
        w_ih, w_hh, b_ih, b_hh = rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0
        h = x.new_zeros(hidden)
        c = x.new_zeros(hidden)
        states = []
        for x_t in x:
            if self.kind == "rnn":
                h = torch.tanh(w_ih @ x_t + b_ih + w_hh @ h + b_hh)
            elif self.kind == "lstm":
                pre = w_ih @ x_t + b_ih + w_hh @ h + b_hh
                i, f, g, o = pre.split(hidden)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
            else:
                x_r, x_z, x_n = (w_ih @ x_t + b_ih).split(hidden)
                h_r, h_z, h_n = (w_hh @ h + b_hh).split(hidden)
                r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
                h = (1 - z) * torch.tanh(x_n + r * h_n) + z * h
            states.append(h)
        return states


def build_models(task: MemoryTask, hidden_size: int, seed: int = 0,
                 kinds: tuple[str, ...] = MODEL_KINDS) -> dict[str, SequenceModel]:
    """Fresh models for ``task``; each kind gets its own seed-derived start, the same for a given seed."""
    models = {}
    for index, kind in enumerate(kinds):
        torch.manual_seed(seed * 101 + index)
        models[kind] = SequenceModel(kind, task.input_size, hidden_size, task.output_size)
    return models


def models_from_state(task: MemoryTask, hidden_size: int,
                      states: dict[str, dict[str, np.ndarray]]) -> dict[str, SequenceModel]:
    models = {}
    for kind, state in states.items():
        model = SequenceModel(kind, task.input_size, hidden_size, task.output_size)
        model.load_state_dict({k: torch.from_numpy(np.asarray(v).copy()) for k, v in state.items()})
        models[kind] = model.eval()
    return models


def _loss_and_correct(outputs: torch.Tensor, batch_targets: torch.Tensor, target_kind: str,
                      last_only: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss and the (count of correct answers, number of answers) of a batch."""
    if target_kind == "value_last":
        guess = outputs[:, -1, 0]  # (B,)
        loss = F.mse_loss(guess, batch_targets)
        correct = ((guess - batch_targets).abs() < ADDING_TOLERANCE).float()
    elif target_kind == "class_last" or last_only:
        logits = outputs[:, -1]  # (B, O)
        target = batch_targets if target_kind == "class_last" else batch_targets[:, -1]
        loss = F.cross_entropy(logits, target)
        correct = (logits.argmax(-1) == target).float()
    else:  # class_every: a prediction at every step
        loss = F.cross_entropy(outputs.flatten(0, 1), batch_targets.flatten())
        correct = (outputs.argmax(-1) == batch_targets).float()
    return loss, correct


def _to_torch(batch: SequenceBatch, device: torch.device, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.as_tensor(batch.inputs, dtype=dtype, device=device)
    if batch.target_kind == "value_last":
        y = torch.as_tensor(batch.targets, dtype=dtype, device=device)
    else:
        y = torch.as_tensor(batch.targets, dtype=torch.int64, device=device)
    return x, y


# ---------------------------------------------------------------- gradient flow

@dataclass(frozen=True, eq=False)
class GradientFlow:
    """||dL_T/dh_k|| for k = 0..T-1, per model, on one sequence (L_T: the loss read at the last step)."""
    models: tuple[str, ...]
    norms: tuple[np.ndarray, ...]  # each (T,)
    labels: tuple[str, ...]  # (T,) the input at each step

    def of(self, kind: str) -> np.ndarray:
        return self.norms[self.models.index(kind)]


def gradient_norms(model: SequenceModel, sequence: SequenceBatch) -> np.ndarray:  # -> (T,)
    """||dL_T/dh_k|| for every step k of the single sequence in ``sequence``, in float64.

    One backward pass: every h_k keeps its gradient (``retain_grad``), so a long
    chain of small Jacobians shows up as norms falling off towards early k.
    """
    model64 = copy.deepcopy(model).to("cpu", torch.float64)
    x, y = _to_torch(sequence.one(0), torch.device("cpu"), torch.float64)
    states = model64.step_states(x[0])  # T x (H,)
    for h in states:
        h.retain_grad()
    outputs = model64.head(torch.stack(states))[None]  # (1, T, O)
    loss, _ = _loss_and_correct(outputs, y, sequence.target_kind, last_only=True)
    loss.backward()
    return np.array([float(h.grad.norm()) for h in states])


def gradient_flow(models: dict[str, SequenceModel], sequence: SequenceBatch) -> GradientFlow:
    kinds = tuple(models)
    return GradientFlow(kinds, tuple(gradient_norms(models[k], sequence) for k in kinds), sequence.step_labels[0])


def traces(models: dict[str, SequenceModel], xs: np.ndarray) -> tuple[LSTMTrace | None, GRUTrace | None]:
    """Gate traces of the LSTM and GRU among ``models`` for one sequence xs (T, I)."""
    lstm = lstm_trace(from_torch(models["lstm"].rnn), xs) if "lstm" in models else None
    gru = gru_trace(from_torch(models["gru"].rnn), xs) if "gru" in models else None
    return lstm, gru


@torch.inference_mode()
def evaluate(model: SequenceModel, batch: SequenceBatch) -> tuple[float, float]:
    """(loss, accuracy) of ``model`` on ``batch``."""
    device = next(model.parameters()).device
    x, y = _to_torch(batch, device, next(model.parameters()).dtype)
    loss, correct = _loss_and_correct(model(x), y, batch.target_kind)
    return float(loss), float(correct.mean())


# ---------------------------------------------------------------- side-by-side training

@dataclass(frozen=True)
class SideBySideConfig:
    task: MemoryTask = field(default_factory=lambda: MemoryTask("first_symbol", 80))
    hidden_size: int = 32
    steps: int = 1000  # gradient steps, each on one batch that every model sees
    batch_size: int = 32
    lr: float = 3e-3  # Adam
    clip_norm: float = 1.0  # gradient clipping (the lecture's fix for exploding gradients)
    seed: int = 1  # seeds 0-4 measured: see tests/bench/bench_gates.py
    models: tuple[str, ...] = MODEL_KINDS
    device: str = "cpu"
    num_threads: int | None = None  # torch CPU threads; None leaves torch's default
    emit_every_s: float = 0.1  # throttle: at most one progress record per this many seconds
    smoothing: int = 25  # loss and accuracy are averaged over the last this many batches
    eval_size: int = 512  # held-out sequences scored at the end


@dataclass(frozen=True)
class SideBySideProgress:
    """One throttled record: per-model loss and accuracy, averaged over the last batches."""
    step: int
    steps_total: int
    models: tuple[str, ...]
    losses: tuple[float, ...]
    accuracies: tuple[float, ...]
    seconds: float

    @property
    def fraction(self) -> float:
        return self.step / max(1, self.steps_total)

    def loss_of(self, kind: str) -> float:
        return self.losses[self.models.index(kind)]

    def accuracy_of(self, kind: str) -> float:
        return self.accuracies[self.models.index(kind)]


@dataclass(frozen=True)
class SideBySideResult:
    """The trained weights (numpy copies) and each model's score on fresh sequences."""
    config: SideBySideConfig
    models: tuple[str, ...]
    state_dicts: tuple[dict[str, np.ndarray], ...] = field(repr=False)
    eval_losses: tuple[float, ...]
    eval_accuracies: tuple[float, ...]
    steps: int
    seconds: float

    def accuracy_of(self, kind: str) -> float:
        return self.eval_accuracies[self.models.index(kind)]

    def build_models(self) -> dict[str, SequenceModel]:
        return models_from_state(self.config.task, self.config.hidden_size, dict(zip(self.models, self.state_dicts)))


def train_side_by_side(config: SideBySideConfig) -> Iterator[SideBySideProgress | SideBySideResult]:
    """Train the chosen models on identical batches, yielding throttled progress, then the result."""
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    if config.hidden_size < 1 or config.steps < 1 or config.batch_size < 1:
        raise ValueError("Hidden size, steps and batch size must all be at least 1.")
    device = torch.device(config.device)
    models = {k: m.to(device) for k, m in build_models(config.task, config.hidden_size, config.seed,
                                                       config.models).items()}
    optimisers = {k: torch.optim.Adam(m.parameters(), lr=config.lr) for k, m in models.items()}
    recent = {k: (deque(maxlen=config.smoothing), deque(maxlen=config.smoothing)) for k in models}
    rng = np.random.default_rng(config.seed)
    start = last_emit = time.perf_counter()

    def progress(step: int) -> SideBySideProgress:
        return SideBySideProgress(
            step, config.steps, tuple(models),
            tuple(float(np.mean(recent[k][0])) for k in models),
            tuple(float(np.mean(recent[k][1])) for k in models), time.perf_counter() - start)

    for step in range(1, config.steps + 1):
        batch = config.task.sample(rng, config.batch_size)
        x, y = _to_torch(batch, device)
        for kind, model in models.items():
            loss, correct = _loss_and_correct(model(x), y, batch.target_kind)
            value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"The {MODEL_TITLES[kind]}'s loss became {value} at step {step}. Lower the learning rate "
                    f"(now {config.lr:g}) or keep gradient clipping on, and train again.")
            optimisers[kind].zero_grad(set_to_none=True)
            loss.backward()
            if config.clip_norm > 0:
                nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
            optimisers[kind].step()
            recent[kind][0].append(value)
            recent[kind][1].append(float(correct.mean()))
        now = time.perf_counter()
        if now - last_emit >= config.emit_every_s or step == config.steps:
            last_emit = now
            yield progress(step)

    held_out = config.task.sample(np.random.default_rng(config.seed + 10_000), config.eval_size)
    scores = [evaluate(m.eval(), held_out) for m in models.values()]
    yield SideBySideResult(
        config, tuple(models),
        tuple({k: v.detach().cpu().numpy().copy() for k, v in m.state_dict().items()} for m in models.values()),
        tuple(s[0] for s in scores), tuple(s[1] for s in scores), config.steps, time.perf_counter() - start)


@torch.inference_mode()
def answer(model: SequenceModel, sequence: SequenceBatch) -> np.ndarray:  # -> (O,)
    """What ``model`` answers at the last step of the first sequence: class probabilities, or the value."""
    device = next(model.parameters()).device
    x, _ = _to_torch(sequence.one(0), device, next(model.parameters()).dtype)
    last = model(x)[0, -1]  # (O,)
    out = last if sequence.target_kind == "value_last" else torch.softmax(last, dim=-1)
    return out.double().cpu().numpy()


def keep_gate_over_delay(lstm: LSTMTrace | None, gru: GRUTrace | None) -> dict[str, float]:
    """Mean of the LSTM forget gate f and the GRU update gate z between the first and the last step:
    near 1 means the cell carries what it read at the start across the delay."""
    means = {}
    if lstm is not None and len(lstm.f) > 2:
        means["lstm"] = float(lstm.f[1:-1].mean())
    if gru is not None and len(gru.z) > 2:
        means["gru"] = float(gru.z[1:-1].mean())
    return means
